package provision_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/memstore"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// expireLosing is the in-memory store whose Expire fails its condition:
// first plainly, as if the tombstone had changed, then once after it took
// effect, as an SDK retry of a write whose answer was lost does.
type expireLosing struct {
	*memstore.Accounts
	plain int // losses that change nothing, before the lost answer
	calls int
}

func (s *expireLosing) Expire(ctx context.Context, seen provision.Record, at, now time.Time) error {
	s.calls++
	if s.calls <= s.plain {
		return provision.ErrClaimLost
	}
	if err := s.Accounts.Expire(ctx, seen, at, now); err != nil {
		return err
	}
	return provision.ErrClaimLost
}

// TestALostExpiryThatTookEffectIsDone: when the user leaves the pool, a
// tombstone's expiry whose condition failed is read again: if the
// tombstone now expires, the work is done, on the last attempt too; if it
// does not, the expiry is tried again.
func TestALostExpiryThatTookEffectIsDone(t *testing.T) {
	w := newWorld(t)
	w.provisioned(t)
	if err := deleted(w.svc, context.Background(), sub); err != nil {
		t.Fatal(err)
	}
	store := &expireLosing{Accounts: w.store, plain: 2} // deleteAttempts is 3
	svc, err := provision.New(store, w.kandy, provision.Options{Logger: quiet, Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Deprovision(context.Background(), sub); err != nil {
		t.Fatalf("Deprovision = %v, want done", err)
	}
	rec, _ := w.record(t)
	if rec.Status != provision.StatusDeleted || rec.ExpiresAt.IsZero() {
		t.Errorf("record %+v, want an expiring tombstone", rec)
	}
	if store.calls != 3 {
		t.Errorf("%d expiries tried, want 3", store.calls)
	}

	// Lost every time, and never taken effect: the record is busy.
	w = newWorld(t)
	w.provisioned(t)
	if err := deleted(w.svc, context.Background(), sub); err != nil {
		t.Fatal(err)
	}
	store = &expireLosing{Accounts: w.store, plain: 100}
	svc, _ = provision.New(store, w.kandy, provision.Options{Logger: quiet, Now: w.clock.Now})
	if err := svc.Deprovision(context.Background(), sub); !errors.Is(err, provision.ErrInProgress) {
		t.Errorf("Deprovision = %v, want ErrInProgress", err)
	}
}

// TestOnlyAnAccountIsDecryptable: only an ACTIVE record holds credentials
// for the operators' decrypt.
func TestOnlyAnAccountIsDecryptable(t *testing.T) {
	for _, s := range []provision.Status{"", provision.StatusPending, provision.StatusActive, provision.StatusDeleting, provision.StatusDeleted} {
		if got := (provision.Record{Status: s}).Decryptable(); got != (s == provision.StatusActive) {
			t.Errorf("%q: Decryptable = %v", s, got)
		}
	}
}
