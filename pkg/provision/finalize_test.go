package provision_test

import (
	"context"
	"errors"
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
	if _, created, err := s.Ensure(context.Background(), sub, provision.EnsureOptions{}); err != nil || !created {
		t.Fatalf("Ensure = %v, %v", created, err)
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
	if created || acc.finalizeCalls != 3 {
		t.Fatalf("created %v after %d finalize calls", created, acc.finalizeCalls)
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
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("Ensure = %v after %v", err, time.Since(start))
	}
}

func TestLostAnswersFromTheStoreAreRecognised(t *testing.T) {
	for _, tt := range []struct{ claim, finalize bool }{{true, false}, {false, true}, {true, true}} {
		acc := &flakyStore{Accounts: memstore.New(), lostClaim: tt.claim, lostFin: tt.finalize}
		s := serviceOver(t, acc, newKandy())
		a, created, err := s.Ensure(context.Background(), sub, provision.EnsureOptions{})
		if err != nil || !created || a.UserID != uid {
			t.Fatalf("lost claim answer %v, lost finalize answer %v: Ensure = %+v, %v, %v", tt.claim, tt.finalize, a, created, err)
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
	if rec, _ := acc.Get(context.Background(), sub); created || rec.ClaimToken != "thief" {
		t.Fatalf("created %v, record %+v", created, rec)
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
	if rec.UserPassword != "sealed:"+sub || rec.UserAPISecret != "sealed:"+sub || rec.UserAPIKey == "" || calls != 2 {
		t.Fatalf("stored %q/%q after %d seals", rec.UserPassword, rec.UserAPISecret, calls)
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
	if rec, _ := w.record(t); rec.Status != provision.StatusPending || rec.UserPassword != "" {
		t.Fatalf("record %+v", rec)
	}
}
