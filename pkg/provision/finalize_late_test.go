package provision_test

import (
	"context"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/memstore"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// lateKandy answers a create only after a pause, whatever the deadline:
// an answer that arrived in time but was read late (a paused process).
type lateKandy struct {
	*fakeKandy
	pause time.Duration
}

func (k lateKandy) CreateUser(ctx context.Context, id, country string) (provision.Credentials, error) {
	time.Sleep(k.pause)
	return k.fakeKandy.CreateUser(ctx, id, country)
}

// TestAnAnswerReadAfterTheClaimEndedIsStillStored: the credentials exist
// nowhere else, so they are written at least once even when the claim
// ended while Kandy answered; nobody took the record over, so the write
// holds.
func TestAnAnswerReadAfterTheClaimEndedIsStillStored(t *testing.T) {
	// Several times: a finalize that waited before its first write would
	// race the ended claim, and lose some of them.
	for range 5 {
		acc := memstore.New()
		s := serviceOver(t, acc, lateKandy{newKandy(), 80 * time.Millisecond})
		s.SetClaimMargin(10 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, created, err := s.Ensure(ctx, sub, provision.EnsureOptions{})
		cancel()
		if err != nil || !created {
			t.Fatalf("Ensure = %v, %v; want the late answer stored", created, err)
		}
		if rec, _ := acc.Get(context.Background(), sub); rec.Status != provision.StatusActive {
			t.Fatalf("record %+v, want ACTIVE", rec)
		}
	}
}
