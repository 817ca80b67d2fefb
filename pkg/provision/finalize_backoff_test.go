package provision_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/memstore"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// timedStore fails Finalize a number of times, noting when each came.
type timedStore struct {
	*memstore.Accounts
	fails int
	at    []time.Time
}

func (s *timedStore) Finalize(ctx context.Context, c provision.Claim, cr provision.Credentials) (provision.Record, error) {
	s.at = append(s.at, time.Now())
	if len(s.at) <= s.fails {
		return provision.Record{}, errors.New("throttled")
	}
	return s.Accounts.Finalize(ctx, c, cr)
}

// TestFinalizeBacksOffQuadratically: the retries of the write that saves
// Kandy's answer wait 50 ms, 200 ms, then 450 ms, so a throttled table
// gets time to recover within the claim.
func TestFinalizeBacksOffQuadratically(t *testing.T) {
	acc := &timedStore{Accounts: memstore.New(), fails: 3}
	s := serviceOver(t, acc, newKandy())
	if _, created, err := s.Ensure(context.Background(), sub, provision.EnsureOptions{}); err != nil || !created {
		t.Fatalf("Ensure = %v, %v; want created on the fourth try", created, err)
	}
	if len(acc.at) != 4 {
		t.Fatalf("%d finalize calls, want 4", len(acc.at))
	}
	for i, least := range []time.Duration{50 * time.Millisecond, 200 * time.Millisecond, 450 * time.Millisecond} {
		if gap := acc.at[i+1].Sub(acc.at[i]); gap < least {
			t.Errorf("retry %d after %v, want %v", i+1, gap, least)
		}
	}
}
