// Package accountstest is the contract every provision.Accounts obeys:
// the DynamoDB store and the in-memory one run the same checks, so the
// domain's unit tests cannot drift from what production does.
package accountstest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// Contract checks a store; fresh returns an empty store each time.
func Contract(t *testing.T, fresh func(t *testing.T) provision.Accounts) {
	for _, c := range []struct {
		name string
		run  func(*testing.T, provision.Accounts)
	}{
		{"claim, finalize, release", claimFinalizeRelease},
		{"expired claims are taken over", takeOver},
		{"a delete is a claimed transition", claimedDelete},
		{"a delete claim holds off the others", deleteClaimHolds},
		{"an abandoned delete is taken over", abandonedDelete},
		{"a delete claim on nothing", purgeOfNothing},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, fresh(t)) })
	}
}

const sub = "0f8fad5b-d9cb-469f-a165-70867728950e"

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// claim is a claim made at now, expiring ttl later.
func claim(token string, now time.Time, ttl time.Duration) provision.Claim {
	return provision.Claim{Sub: sub, UserID: "u0f8fad5bd9cb469fa16570867728950e", Token: token, Now: now, ExpiresAt: now.Add(ttl)}
}

var creds = provision.Credentials{FullUserID: "u@d", DomainName: "d", UserAPIKey: "UAK1", UserAPISecret: "UAS1", UserPassword: "pw"}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func lost(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, provision.ErrClaimLost) {
		t.Fatalf("%s = %v, want ErrClaimLost", what, err)
	}
}

func get(t *testing.T, a provision.Accounts) provision.Record {
	t.Helper()
	rec, err := a.Get(context.Background(), sub)
	must(t, err)
	return rec
}

func claimFinalizeRelease(t *testing.T, a provision.Accounts) {
	ctx := context.Background()
	if _, err := a.Get(ctx, sub); !errors.Is(err, provision.ErrNotProvisioned) {
		t.Fatalf("Get of nothing = %v", err)
	}
	c1 := claim("t1", t0, time.Minute)
	if _, ok, err := a.Claim(ctx, c1); err != nil || !ok {
		t.Fatalf("first claim = %v, %v", ok, err)
	}
	if rec := get(t, a); rec.Status != provision.StatusPending || rec.ClaimToken != "t1" || !rec.ClaimExpiresAt.Equal(c1.ExpiresAt) {
		t.Fatalf("claimed record = %+v", rec)
	}
	existing, ok, err := a.Claim(ctx, claim("t2", t0.Add(time.Second), time.Minute))
	if err != nil || ok || existing.Status != provision.StatusPending || existing.ClaimToken != "t1" {
		t.Fatalf("claim of a live claim = %+v, %v, %v", existing, ok, err)
	}
	_, err = a.Finalize(ctx, claim("t2", t0, 0), creds)
	lost(t, "finalize under another claim", err)
	rec, err := a.Finalize(ctx, c1, creds)
	if err != nil || rec.Status != provision.StatusActive || rec.UserAPISecret != "UAS1" || rec.UserPassword != "pw" ||
		rec.ClaimToken != "" || !rec.ClaimExpiresAt.IsZero() || rec.Generation != "t1" {
		t.Fatalf("finalize = %+v, %v", rec, err)
	}
	if got := get(t, a); got.Status != provision.StatusActive || got.FullUserID != "u@d" || got.Generation != "t1" {
		t.Fatalf("get = %+v", got)
	}
	existing, ok, err = a.Claim(ctx, claim("t3", t0.Add(time.Hour), time.Minute))
	if err != nil || ok || existing.Status != provision.StatusActive {
		t.Fatalf("claim over ACTIVE = %+v, %v, %v", existing, ok, err)
	}
	lost(t, "release of an ACTIVE record", a.Release(ctx, c1))
	lost(t, "finish delete of an ACTIVE record", a.FinishDelete(ctx, c1))

	b := claim("b1", t0, time.Minute)
	b.Sub = "another"
	if _, ok, err := a.Claim(ctx, b); err != nil || !ok {
		t.Fatal(ok, err)
	}
	lost(t, "release under another claim", a.Release(ctx, provision.Claim{Sub: "another", Token: "x"}))
	must(t, a.Release(ctx, b))
	if _, err := a.Get(ctx, "another"); !errors.Is(err, provision.ErrNotProvisioned) {
		t.Fatalf("after release: %v", err)
	}
}

func takeOver(t *testing.T, a provision.Accounts) {
	ctx := context.Background()
	old := claim("old", t0, time.Second)
	if _, ok, err := a.Claim(ctx, old); err != nil || !ok {
		t.Fatal(ok, err)
	}
	fresh := claim("new", t0.Add(2*time.Second), time.Minute)
	if _, ok, err := a.Claim(ctx, fresh); err != nil || !ok {
		t.Fatalf("take-over = %v, %v", ok, err)
	}
	_, err := a.Finalize(ctx, old, creds)
	lost(t, "superseded finalize", err)
	lost(t, "superseded release", a.Release(ctx, old))
	if rec := get(t, a); rec.ClaimToken != "new" || rec.Status != provision.StatusPending {
		t.Fatalf("after take-over: %+v", rec)
	}
}

// activate makes the record ACTIVE under a claim made at t0.
func activate(t *testing.T, a provision.Accounts, token string) provision.Record {
	t.Helper()
	c := claim(token, t0, time.Minute)
	if _, ok, err := a.Claim(context.Background(), c); err != nil || !ok {
		t.Fatal(ok, err)
	}
	rec, err := a.Finalize(context.Background(), c, creds)
	must(t, err)
	return rec
}

func claimedDelete(t *testing.T, a provision.Accounts) {
	ctx := context.Background()
	seen := activate(t, a, "gen1")
	d := claim("del1", t0.Add(time.Hour), time.Minute)
	stale := seen
	stale.Generation = "gen0"
	lost(t, "delete claim on another generation", a.ClaimDelete(ctx, d, stale))
	must(t, a.ClaimDelete(ctx, d, seen))
	rec := get(t, a)
	if rec.Status != provision.StatusDeleting || rec.ClaimToken != "del1" || !rec.ClaimExpiresAt.Equal(d.ExpiresAt) || rec.UserID == "" {
		t.Fatalf("after the delete claim: %+v", rec)
	}
	lost(t, "a second delete claim on the same read", a.ClaimDelete(ctx, claim("del2", t0.Add(time.Hour), time.Minute), seen))
	lost(t, "finish delete under another claim", a.FinishDelete(ctx, claim("del2", t0, 0)))
	lost(t, "release of a DELETING record", a.Release(ctx, d))
	must(t, a.FinishDelete(ctx, d))
	if _, err := a.Get(ctx, sub); !errors.Is(err, provision.ErrNotProvisioned) {
		t.Fatalf("after the delete: %v", err)
	}
	lost(t, "finish delete of nothing", a.FinishDelete(ctx, d))
}

func deleteClaimHolds(t *testing.T, a provision.Accounts) {
	ctx := context.Background()
	seen := activate(t, a, "gen1")
	must(t, a.ClaimDelete(ctx, claim("del", t0.Add(time.Hour), time.Minute), seen))
	existing, ok, err := a.Claim(ctx, claim("create", t0.Add(time.Hour+time.Second), time.Minute))
	if err != nil || ok || existing.Status != provision.StatusDeleting || existing.ClaimToken != "del" {
		t.Fatalf("claim during a delete = %+v, %v, %v", existing, ok, err)
	}
	deleting := get(t, a)
	lost(t, "a delete claim on a live delete claim", a.ClaimDelete(ctx, claim("del2", t0.Add(time.Hour+time.Second), time.Minute), deleting))
}

func abandonedDelete(t *testing.T, a provision.Accounts) {
	ctx := context.Background()
	seen := activate(t, a, "gen1")
	d := claim("del", t0.Add(time.Hour), time.Second)
	must(t, a.ClaimDelete(ctx, d, seen))
	deleting := get(t, a)
	// Another delete takes over the expired delete claim.
	d2 := claim("del2", t0.Add(time.Hour+time.Minute), time.Minute)
	must(t, a.ClaimDelete(ctx, d2, deleting))
	lost(t, "the first deleter's finish", a.FinishDelete(ctx, d))
	// ... and a creation takes over that one once it expires in turn.
	c := claim("create", t0.Add(2*time.Hour), time.Minute)
	if _, ok, err := a.Claim(ctx, c); err != nil || !ok {
		t.Fatalf("claim over an expired delete = %v, %v", ok, err)
	}
	lost(t, "the second deleter's finish", a.FinishDelete(ctx, d2))
	rec, err := a.Finalize(ctx, c, creds)
	if err != nil || rec.Status != provision.StatusActive || rec.Generation != "create" {
		t.Fatalf("finalize after taking over a delete = %+v, %v", rec, err)
	}
	// An abandoned creation is taken over by a delete too.
	pending := claim("p", t0.Add(3*time.Hour), time.Second)
	pending.Sub = "other"
	if _, ok, err := a.Claim(ctx, pending); err != nil || !ok {
		t.Fatal(ok, err)
	}
	seenPending, err := a.Get(ctx, "other")
	must(t, err)
	early := claim("d3", t0.Add(3*time.Hour), time.Minute)
	early.Sub = "other"
	lost(t, "a delete claim on a live creation", a.ClaimDelete(ctx, early, seenPending))
	late := claim("d4", t0.Add(4*time.Hour), time.Minute)
	late.Sub = "other"
	must(t, a.ClaimDelete(ctx, late, seenPending))
	must(t, a.FinishDelete(ctx, late))
}

// A delete claim may be taken where there is no record (a Kandy user left
// without one), and then holds off creations like any other.
func purgeOfNothing(t *testing.T, a provision.Accounts) {
	ctx := context.Background()
	d := claim("purge", t0, time.Minute)
	must(t, a.ClaimDelete(ctx, d, provision.Record{Sub: sub}))
	rec := get(t, a)
	if rec.Status != provision.StatusDeleting || rec.ClaimToken != "purge" || rec.UserID != d.UserID {
		t.Fatalf("after a delete claim on nothing: %+v", rec)
	}
	if _, ok, err := a.Claim(ctx, claim("create", t0.Add(time.Second), time.Minute)); err != nil || ok {
		t.Fatalf("claim during the purge = %v, %v", ok, err)
	}
	lost(t, "a second delete claim on nothing", a.ClaimDelete(ctx, claim("purge2", t0, time.Minute), provision.Record{Sub: sub}))
	must(t, a.FinishDelete(ctx, d))
	activate(t, a, "gen1")
	lost(t, "a delete claim on nothing, over a record", a.ClaimDelete(ctx, claim("purge3", t0.Add(time.Hour), time.Minute), provision.Record{Sub: sub}))
	elsewhere := claim("p4", t0.Add(time.Hour), time.Minute)
	elsewhere.Sub = "elsewhere"
	lost(t, "a delete claim on a record that is not there", a.ClaimDelete(ctx, elsewhere,
		provision.Record{Sub: "elsewhere", Status: provision.StatusActive, Generation: "gen1"}))
}
