package provision_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/memstore"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// flakyStore fails Finalize a number of times before passing it on, and
// can replay a write as the SDK does when its answer was lost.
type flakyStore struct {
	*memstore.Accounts
	finalizeFails      int
	finalizeCalls      int
	lostClaim, lostFin bool
}

func (f *flakyStore) Finalize(ctx context.Context, c provision.Claim, cr provision.Credentials) (provision.Record, error) {
	f.finalizeCalls++
	if f.finalizeCalls <= f.finalizeFails {
		return provision.Record{}, errors.New("throttled")
	}
	r, err := f.Accounts.Finalize(ctx, c, cr)
	if f.lostFin && err == nil {
		f.lostFin = false
		return f.Accounts.Finalize(ctx, c, cr) // the SDK's retry of the same request
	}
	return r, err
}

func (f *flakyStore) Claim(ctx context.Context, c provision.Claim) (provision.Record, bool, error) {
	r, ok, err := f.Accounts.Claim(ctx, c)
	if f.lostClaim && ok {
		f.lostClaim = false
		return f.Accounts.Claim(ctx, c)
	}
	return r, ok, err
}

func serviceOver(t *testing.T, acc provision.Accounts, k provision.Kandy, opts ...func(*provision.Options)) *provision.Service {
	t.Helper()
	o := provision.Options{Logger: quiet}
	for _, f := range opts {
		f(&o)
	}
	s, err := provision.New(acc, k, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFinalizeRetriesTransientFailures(t *testing.T) {
	acc := &flakyStore{Accounts: memstore.New(), finalizeFails: 2}
	s := serviceOver(t, acc, newKandy())
	_, created, err := s.Ensure(context.Background(), sub, provision.EnsureOptions{})
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if !created {
		t.Error("Ensure did not report that it created the account")
	}
	if acc.finalizeCalls != 3 {
		t.Fatalf("finalize calls = %d, want 3", acc.finalizeCalls)
	}
}

func TestFinalizeGivesUpAfterItsTries(t *testing.T) {
	acc := &flakyStore{Accounts: memstore.New(), finalizeFails: 100}
	s := serviceOver(t, acc, newKandy())
	s.SetFinalizeTries(3)
	_, created, err := s.Ensure(context.Background(), sub, provision.EnsureOptions{})
	wantCode(t, "finalize always failing", err, provision.CodeInternal)
	if created {
		t.Error("Ensure reported that it created the account though finalize always failed")
	}
	if acc.finalizeCalls != 3 {
		t.Errorf("finalize calls = %d, want 3", acc.finalizeCalls)
	}
	rec, _ := acc.Get(context.Background(), sub)
	if rec.Status != provision.StatusPending {
		t.Fatalf("the claim must stay for the next attempt to recover: %+v", rec)
	}
}

// The retries stop when the claim ends: after that the record is someone
// else's to finish.
func TestFinalizeStopsWhenTheClaimEnds(t *testing.T) {
	acc := &flakyStore{Accounts: memstore.New(), finalizeFails: 1 << 30}
	s := serviceOver(t, acc, newKandy())
	s.SetFinalizeTries(1 << 30)
	s.SetClaimMargin(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := s.Ensure(ctx, sub, provision.EnsureOptions{})
	took := time.Since(start)
	if err == nil {
		t.Error("Ensure succeeded though every finalize failed")
	}
	if took > 2*time.Second {
		t.Errorf("Ensure took %v, want it to stop with the claim, within 2s", took)
	}
}

func TestLostAnswersFromTheStoreAreRecognised(t *testing.T) {
	for _, tt := range []struct{ claim, finalize bool }{{true, false}, {false, true}, {true, true}} {
		acc := &flakyStore{Accounts: memstore.New(), lostClaim: tt.claim, lostFin: tt.finalize}
		s := serviceOver(t, acc, newKandy())
		a, created, err := s.Ensure(context.Background(), sub, provision.EnsureOptions{})
		what := fmt.Sprintf("lost claim answer %v, lost finalize answer %v", tt.claim, tt.finalize)
		if err != nil {
			t.Fatalf("%s: Ensure: %v", what, err)
		}
		if !created {
			t.Errorf("%s: Ensure did not report that it created the account", what)
		}
		if a.UserID != uid {
			t.Errorf("%s: user_id %q, want %q", what, a.UserID, uid)
		}
	}
}

// stealing has another holder take the claim over while Kandy creates.
type stealing struct{ *memstore.Accounts }

func (s stealing) Finalize(ctx context.Context, c provision.Claim, cr provision.Credentials) (provision.Record, error) {
	thief := c
	thief.Token, thief.Now = "thief", c.ExpiresAt.Add(time.Second)
	if _, ok, err := s.Claim(ctx, thief); err != nil || !ok {
		return provision.Record{}, errors.New("the thief could not take the claim")
	}
	return s.Accounts.Finalize(ctx, c, cr)
}

func TestAClaimTakenOverBeforeTheFinalizeIsInProgress(t *testing.T) {
	acc := stealing{memstore.New()}
	s := serviceOver(t, acc, newKandy())
	_, created, err := s.Ensure(context.Background(), sub, provision.EnsureOptions{})
	wantCode(t, "claim taken over", err, provision.CodeInProgress)
	if created {
		t.Error("Ensure reported that it created the account under a claim taken over")
	}
	if rec, _ := acc.Get(context.Background(), sub); rec.ClaimToken != "thief" {
		t.Errorf("claim token %q, want the thief's %q", rec.ClaimToken, "thief")
	}
}

type sealerFunc func(ctx context.Context, sub string, c provision.Credentials) (provision.Credentials, error)

func (f sealerFunc) Seal(ctx context.Context, sub string, c provision.Credentials) (provision.Credentials, error) {
	return f(ctx, sub, c)
}

func TestCredentialsAreSealedBeforeTheyAreStored(t *testing.T) {
	calls := 0
	w := newWorld(t, func(o *provision.Options) {
		o.Sealer = sealerFunc(func(_ context.Context, s string, c provision.Credentials) (provision.Credentials, error) {
			calls++
			if calls == 1 {
				return provision.Credentials{}, errors.New("kms throttled")
			}
			c.UserPassword, c.UserAPISecret = "sealed:"+s, "sealed:"+s
			return c, nil
		})
	})
	w.provisioned(t)
	rec, _ := w.record(t)
	if want := "sealed:" + sub; rec.UserPassword != want {
		t.Errorf("stored UserPassword %q, want %q", rec.UserPassword, want)
	}
	if want := "sealed:" + sub; rec.UserAPISecret != want {
		t.Errorf("stored UserAPISecret %q, want %q", rec.UserAPISecret, want)
	}
	if rec.UserAPIKey == "" {
		t.Error("stored no UserAPIKey")
	}
	if calls != 2 {
		t.Errorf("%d seals, want 2: one failing, one retried", calls)
	}
}

func TestASealerThatAlwaysFailsStoresNothingInTheClear(t *testing.T) {
	w := newWorld(t, func(o *provision.Options) {
		o.Sealer = sealerFunc(func(context.Context, string, provision.Credentials) (provision.Credentials, error) {
			return provision.Credentials{}, errors.New("kms down")
		})
	})
	_, _, err := w.svc.Ensure(context.Background(), sub, provision.EnsureOptions{})
	wantCode(t, "sealer down", err, provision.CodeInternal)
	rec, _ := w.record(t)
	if rec.Status != provision.StatusPending {
		t.Errorf("status %q, want %q", rec.Status, provision.StatusPending)
	}
	if rec.UserPassword != "" {
		t.Errorf("stored UserPassword %q, want none", rec.UserPassword)
	}
}
