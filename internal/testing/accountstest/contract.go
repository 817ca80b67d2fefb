// Package accountstest is the contract every provision.Accounts obeys:
// the DynamoDB store and the in-memory one run the same checks, so the
// domain's unit tests cannot drift from what production does. Each check
// is a transition of provision's state machine (pkg/provision/state.go),
// tried where its rule holds and where it does not, at the exact instant
// a claim expires too.
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
		{"claim, finalize, drop", claimFinalizeDrop},
		{"expired claims are taken over, from their instant of expiry", takeOver},
		{"a released claim keeps its record", release},
		{"a delete is a claimed transition", claimedDelete},
		{"a delete claim holds off the others", deleteClaimHolds},
		{"an abandoned delete is taken over, by the user only", abandonedDelete},
		{"a delete claim on nothing", purgeOfNothing},
		{"a tombstone has no credentials and only the user revives it", tombstone},
		{"a repair leaves no record", repairLeavesNothing},
		{"a kept tombstone is given an expiry once", expire},
		{"a user who left the pool is never revived", leftThePool},
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

// byUser is claim for the user's own request.
func byUser(token string, now time.Time, ttl time.Duration) provision.Claim {
	c := claim(token, now, ttl)
	c.ByUser = true
	return c
}

var creds = provision.Credentials{FullUserID: "u@d", DomainName: "d", UserAPIKey: "UAK1", UserAPISecret: "UAS1", UserPassword: "pw"}

var (
	kept     = provision.Ending{Tombstone: true}
	expiring = provision.Ending{Tombstone: true, ExpiresAt: t0.Add(provision.TombstoneTTL)}
	nothing  = provision.Ending{}
)

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

func absent(t *testing.T, a provision.Accounts, what string) {
	t.Helper()
	if rec, err := a.Get(context.Background(), sub); !errors.Is(err, provision.ErrNotProvisioned) {
		t.Fatalf("%s: Get = %+v, %v; want no record", what, rec, err)
	}
}

// claimed claims, or fails the test.
func Claimed(t *testing.T, a provision.Accounts, c provision.Claim) {
	t.Helper()
	if existing, ok, err := a.Claim(context.Background(), c); err != nil || !ok {
		t.Fatalf("claim %s = %+v, %v, %v; want it taken", c.Token, existing, ok, err)
	}
}

// refused tries a claim that must not be taken, and returns what it found.
func refused(t *testing.T, a provision.Accounts, c provision.Claim) provision.Record {
	t.Helper()
	existing, ok, err := a.Claim(context.Background(), c)
	if err != nil || ok {
		t.Fatalf("claim %s = %v, %v; want it refused", c.Token, ok, err)
	}
	return existing
}

func claimFinalizeDrop(t *testing.T, a provision.Accounts) {
	ctx := context.Background()
	absent(t, a, "a new store")
	c1 := claim("t1", t0, time.Minute)
	Claimed(t, a, c1)
	rec := get(t, a)
	if rec.Status != provision.StatusPending || rec.ClaimToken != "t1" || rec.Generation != "t1" || !rec.ClaimExpiresAt.Equal(c1.ExpiresAt) {
		t.Fatalf("claimed record = %+v", rec)
	}
	if existing := refused(t, a, claim("t2", t0.Add(time.Second), time.Minute)); existing.ClaimToken != "t1" {
		t.Fatalf("a live claim answered %+v", existing)
	}
	_, err := a.Finalize(ctx, claim("t2", t0, 0), creds)
	lost(t, "finalize under another claim", err)
	rec, err = a.Finalize(ctx, c1, creds)
	must(t, err)
	if rec.Status != provision.StatusActive || rec.UserAPISecret != "UAS1" || rec.UserPassword != "pw" {
		t.Fatalf("finalize = %+v", rec)
	}
	if rec.ClaimToken != "" || !rec.ClaimExpiresAt.IsZero() || rec.Generation != "t1" {
		t.Fatalf("finalize claim fields = %+v", rec)
	}
	if got := get(t, a); got.Status != provision.StatusActive || got.FullUserID != "u@d" || got.Generation != "t1" {
		t.Fatalf("get = %+v", got)
	}
	for _, c := range []provision.Claim{claim("t3", t0.Add(time.Hour), time.Minute), byUser("t4", t0.Add(time.Hour), time.Minute)} {
		if existing := refused(t, a, c); existing.Status != provision.StatusActive {
			t.Fatalf("claim over ACTIVE answered %+v", existing)
		}
	}
	lost(t, "drop of an ACTIVE record", a.Drop(ctx, c1))
	lost(t, "release of an ACTIVE record", a.Release(ctx, c1))
	lost(t, "finish delete of an ACTIVE record", a.FinishDelete(ctx, c1, kept))

	b := claim("b1", t0, time.Minute)
	b.Sub = "another"
	if _, ok, err := a.Claim(ctx, b); err != nil || !ok {
		t.Fatal(ok, err)
	}
	lost(t, "drop under another claim", a.Drop(ctx, provision.Claim{Sub: "another", Token: "x"}))
	must(t, a.Drop(ctx, b))
	if _, err := a.Get(ctx, "another"); !errors.Is(err, provision.ErrNotProvisioned) {
		t.Fatalf("after drop: %v", err)
	}
}

func takeOver(t *testing.T, a provision.Accounts) {
	ctx := context.Background()
	old := claim("old", t0, time.Second)
	Claimed(t, a, old)
	// One millisecond before the instant of expiry the claim holds; at
	// that instant it is expired, for every store alike.
	refused(t, a, claim("early", t0.Add(time.Second-time.Millisecond), time.Minute))
	Claimed(t, a, claim("new", t0.Add(time.Second), time.Minute))
	_, err := a.Finalize(ctx, old, creds)
	lost(t, "superseded finalize", err)
	lost(t, "superseded drop", a.Drop(ctx, old))
	lost(t, "superseded release", a.Release(ctx, old))
	if rec := get(t, a); rec.ClaimToken != "new" || rec.Status != provision.StatusPending {
		t.Fatalf("after take-over: %+v", rec)
	}
}

func release(t *testing.T, a provision.Accounts) {
	ctx := context.Background()
	c := claim("gone", t0, time.Minute)
	Claimed(t, a, c)
	c.Now = t0.Add(5 * time.Second)
	must(t, a.Release(ctx, c))
	rec := get(t, a)
	if rec.Status != provision.StatusPending || rec.Generation != "gone" || !rec.ClaimExpiresAt.Equal(c.Now) || rec.Held(c.Now) {
		t.Fatalf("released record = %+v", rec)
	}
	// The next request takes it over at once, automatic or not.
	Claimed(t, a, claim("next", c.Now, time.Minute))
}

// activate makes the record ACTIVE under a claim made at t0.
func activate(t *testing.T, a provision.Accounts, token string) provision.Record {
	t.Helper()
	c := claim(token, t0, time.Minute)
	Claimed(t, a, c)
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
	lost(t, "delete claim on another generation", a.ClaimDelete(ctx, d, stale, provision.Ending{}))
	must(t, a.ClaimDelete(ctx, d, seen, provision.Ending{}))
	rec := get(t, a)
	if rec.Status != provision.StatusDeleting || rec.ClaimToken != "del1" || rec.Generation != "del1" || !rec.ClaimExpiresAt.Equal(d.ExpiresAt) || rec.UserID == "" {
		t.Fatalf("after the delete claim: %+v", rec)
	}
	lost(t, "a second delete claim on the same read", a.ClaimDelete(ctx, claim("del2", t0.Add(time.Hour), time.Minute), seen, provision.Ending{}))
	lost(t, "finish delete under another claim", a.FinishDelete(ctx, claim("del2", t0, 0), kept))
	lost(t, "drop of a DELETING record", a.Drop(ctx, d))
	d.Now = t0.Add(time.Hour + time.Second)
	must(t, a.FinishDelete(ctx, d, kept))
	tomb := get(t, a)
	if tomb.Status != provision.StatusDeleted || tomb.Generation != "del1" || !tomb.DeletedAt.Equal(d.Now) || !tomb.ExpiresAt.IsZero() {
		t.Fatalf("tombstone = %+v", tomb)
	}
	lost(t, "finish delete of a tombstone", a.FinishDelete(ctx, d, kept))
}

func deleteClaimHolds(t *testing.T, a provision.Accounts) {
	ctx := context.Background()
	seen := activate(t, a, "gen1")
	must(t, a.ClaimDelete(ctx, claim("del", t0.Add(time.Hour), time.Minute), seen, provision.Ending{}))
	for _, c := range []provision.Claim{claim("create", t0.Add(time.Hour+time.Second), time.Minute), byUser("mine", t0.Add(time.Hour+time.Second), time.Minute)} {
		if existing := refused(t, a, c); existing.Status != provision.StatusDeleting || existing.ClaimToken != "del" {
			t.Fatalf("claim during a delete answered %+v", existing)
		}
	}
	deleting := get(t, a)
	lost(t, "a delete claim on a live delete claim", a.ClaimDelete(ctx, claim("del2", t0.Add(time.Hour+time.Minute-time.Millisecond), time.Minute), deleting, provision.Ending{}))
	must(t, a.ClaimDelete(ctx, claim("del3", t0.Add(time.Hour+time.Minute), time.Minute), deleting, provision.Ending{}))
}

func abandonedDelete(t *testing.T, a provision.Accounts) {
	ctx := context.Background()
	seen := activate(t, a, "gen1")
	d := claim("del", t0.Add(time.Hour), time.Second)
	must(t, a.ClaimDelete(ctx, d, seen, provision.Ending{}))
	deleting := get(t, a)
	// Another delete takes over the expired delete claim.
	d2 := claim("del2", t0.Add(time.Hour+time.Minute), time.Minute)
	must(t, a.ClaimDelete(ctx, d2, deleting, provision.Ending{}))
	lost(t, "the first deleter's finish", a.FinishDelete(ctx, d, kept))
	// An automatic creation may not take over an abandoned delete: the
	// user asked for it. The user's own request may.
	later := t0.Add(2 * time.Hour)
	if existing := refused(t, a, claim("auto", later, time.Minute)); existing.Status != provision.StatusDeleting {
		t.Fatalf("automatic claim over an expired delete answered %+v", existing)
	}
	c := byUser("mine", later, time.Minute)
	Claimed(t, a, c)
	lost(t, "the second deleter's finish", a.FinishDelete(ctx, d2, kept))
	rec, err := a.Finalize(ctx, c, creds)
	if err != nil || rec.Status != provision.StatusActive || rec.Generation != "mine" {
		t.Fatalf("finalize after taking over a delete = %+v, %v", rec, err)
	}
	// An abandoned creation is taken over by a delete from its instant of expiry.
	pending := claim("p", t0.Add(3*time.Hour), time.Second)
	pending.Sub = "other"
	if _, ok, err := a.Claim(ctx, pending); err != nil || !ok {
		t.Fatal(ok, err)
	}
	seenPending, err := a.Get(ctx, "other")
	must(t, err)
	early := claim("d3", pending.ExpiresAt.Add(-time.Millisecond), time.Minute)
	early.Sub = "other"
	lost(t, "a delete claim on a live creation", a.ClaimDelete(ctx, early, seenPending, provision.Ending{}))
	onTime := claim("d4", pending.ExpiresAt, time.Minute)
	onTime.Sub = "other"
	must(t, a.ClaimDelete(ctx, onTime, seenPending, provision.Ending{}))
	must(t, a.FinishDelete(ctx, onTime, nothing))
}

// A delete claim may be taken where there is no record (a Kandy user left
// without one), and then holds off creations like any other.
func purgeOfNothing(t *testing.T, a provision.Accounts) {
	ctx := context.Background()
	d := claim("purge", t0, time.Minute)
	must(t, a.ClaimDelete(ctx, d, provision.Record{Sub: sub}, provision.Ending{}))
	rec := get(t, a)
	if rec.Status != provision.StatusDeleting || rec.ClaimToken != "purge" || rec.UserID != d.UserID {
		t.Fatalf("after a delete claim on nothing: %+v", rec)
	}
	refused(t, a, claim("create", t0.Add(time.Second), time.Minute))
	lost(t, "a second delete claim on nothing", a.ClaimDelete(ctx, claim("purge2", t0, time.Minute), provision.Record{Sub: sub}, provision.Ending{}))
	must(t, a.FinishDelete(ctx, d, nothing))
	absent(t, a, "after the purge")
	activate(t, a, "gen1")
	lost(t, "a delete claim on nothing, over a record", a.ClaimDelete(ctx, claim("purge3", t0.Add(time.Hour), time.Minute), provision.Record{Sub: sub}, provision.Ending{}))
	elsewhere := claim("p4", t0.Add(time.Hour), time.Minute)
	elsewhere.Sub = "elsewhere"
	lost(t, "a delete claim on a record that is not there", a.ClaimDelete(ctx, elsewhere,
		provision.Record{Sub: "elsewhere", Status: provision.StatusActive, Generation: "gen1"}, provision.Ending{}))
}

// bury deletes an ACTIVE record into a tombstone ending as end says.
func bury(t *testing.T, a provision.Accounts, end provision.Ending) provision.Record {
	t.Helper()
	seen := activate(t, a, "gen1")
	d := claim("del", t0.Add(time.Hour), time.Minute)
	must(t, a.ClaimDelete(context.Background(), d, seen, provision.Ending{}))
	must(t, a.FinishDelete(context.Background(), d, end))
	return get(t, a)
}

func tombstone(t *testing.T, a provision.Accounts) {
	ctx := context.Background()
	tomb := bury(t, a, kept)
	if tomb.UserAPIKey != "" || tomb.UserAPISecret != "" || tomb.UserPassword != "" || tomb.FullUserID != "" || tomb.DomainName != "" {
		t.Fatalf("a tombstone holds credentials: %+v", tomb)
	}
	if tomb.ClaimToken != "" || !tomb.ClaimExpiresAt.IsZero() || tomb.Held(t0.Add(time.Hour)) {
		t.Fatalf("a tombstone holds a claim: %+v", tomb)
	}
	later := t0.Add(2 * time.Hour)
	if existing := refused(t, a, claim("retry", later, time.Minute)); existing.Status != provision.StatusDeleted || existing.Generation != "del" {
		t.Fatalf("automatic claim over a tombstone answered %+v", existing)
	}
	c := byUser("mine", later, time.Minute)
	Claimed(t, a, c)
	rec := get(t, a)
	if rec.Status != provision.StatusPending || !rec.ExpiresAt.IsZero() || !rec.DeletedAt.IsZero() || rec.Generation != "mine" {
		t.Fatalf("a revived tombstone = %+v; want PENDING with no expiry", rec)
	}
	active, err := a.Finalize(ctx, c, creds)
	must(t, err)
	d := claim("del2", later, time.Minute)
	must(t, a.ClaimDelete(ctx, d, active, provision.Ending{}))
	must(t, a.FinishDelete(ctx, d, kept))
	// A tombstone may be taken to delete again (a Kandy user found under
	// it), and stays a tombstone, of a new generation.
	p := claim("purge", later.Add(time.Hour), time.Minute)
	must(t, a.ClaimDelete(ctx, p, get(t, a), provision.Ending{}))
	must(t, a.FinishDelete(ctx, p, kept))
	if got := get(t, a); got.Status != provision.StatusDeleted || got.Generation != "purge" {
		t.Fatalf("a tombstone purged again = %+v", got)
	}
}

func repairLeavesNothing(t *testing.T, a provision.Accounts) {
	seen := activate(t, a, "gen1")
	d := claim("repair", t0.Add(time.Hour), time.Minute)
	must(t, a.ClaimDelete(context.Background(), d, seen, provision.Ending{}))
	must(t, a.FinishDelete(context.Background(), d, nothing))
	absent(t, a, "after a repair")
}

func expire(t *testing.T, a provision.Accounts) {
	ctx := context.Background()
	tomb := bury(t, a, kept)
	if !tomb.ExpiresAt.IsZero() {
		t.Fatalf("a kept tombstone expires: %+v", tomb)
	}
	stale := tomb
	stale.Generation = "other"
	at := t0.Add(provision.TombstoneTTL)
	lost(t, "expiry of another tombstone", a.Expire(ctx, stale, at, t0.Add(3*time.Hour)))
	must(t, a.Expire(ctx, tomb, at, t0.Add(3*time.Hour)))
	if got := get(t, a); !got.UpdatedAt.Equal(t0.Add(3 * time.Hour)) {
		t.Fatalf("an expiry stamped %v, want the caller's clock %v", got.UpdatedAt, t0.Add(3*time.Hour))
	}
	if got := get(t, a); !got.ExpiresAt.Equal(at) || got.Status != provision.StatusDeleted {
		t.Fatalf("expired tombstone = %+v", got)
	}
	lost(t, "a second expiry", a.Expire(ctx, tomb, at.Add(time.Hour), t0.Add(3*time.Hour)))
	// A tombstone taken to delete a Kandy user under it loses its expiry
	// until the delete says again.
	d := claim("purge", t0.Add(2*time.Hour), time.Minute)
	must(t, a.ClaimDelete(ctx, d, get(t, a), provision.Ending{}))
	if got := get(t, a); !got.ExpiresAt.IsZero() || got.Status != provision.StatusDeleting {
		t.Fatalf("delete claim on a tombstone = %+v", got)
	}
	activeSeen := provision.Record{Sub: sub, Status: provision.StatusActive, Generation: "purge"}
	lost(t, "expiry of a record that is no tombstone", a.Expire(ctx, activeSeen, at, t0.Add(3*time.Hour)))
}

// The delete claim of a user leaving the pool carries the tombstone's
// expiry, so neither it, abandoned, nor the tombstone is ever taken by
// the user's own claim; and a tombstone given an expiry since it was read
// is not the one seen.
func leftThePool(t *testing.T, a provision.Accounts) {
	ctx := context.Background()
	seen := activate(t, a, "gen1")
	d := claim("leave", t0.Add(time.Hour), time.Minute)
	must(t, a.ClaimDelete(ctx, d, seen, expiring))
	if rec := get(t, a); rec.Status != provision.StatusDeleting || !rec.ExpiresAt.Equal(expiring.ExpiresAt) || !rec.LeftPool() {
		t.Fatalf("the delete claim of a user leaving = %+v; want DELETING, expiring", rec)
	}
	later := t0.Add(2 * time.Hour)
	if existing := refused(t, a, byUser("mine", later, time.Minute)); existing.Generation != "leave" {
		t.Fatalf("the user's claim over an abandoned departure answered %+v", existing)
	}
	must(t, a.FinishDelete(ctx, d, expiring))
	tomb := get(t, a)
	if tomb.Status != provision.StatusDeleted || !tomb.ExpiresAt.Equal(expiring.ExpiresAt) {
		t.Fatalf("the tombstone of a user who left = %+v", tomb)
	}
	if existing := refused(t, a, byUser("mine2", later, time.Minute)); existing.Generation != "leave" {
		t.Fatalf("the user's claim over their departure's tombstone answered %+v", existing)
	}
	// A kept tombstone, read, then expired as the user leaves.
	p := claim("purge", later, time.Minute)
	must(t, a.ClaimDelete(ctx, p, tomb, kept))
	must(t, a.FinishDelete(ctx, p, kept))
	read := get(t, a)
	must(t, a.Expire(ctx, read, expiring.ExpiresAt, t0.Add(3*time.Hour)))
	lost(t, "a delete claim on a tombstone given an expiry since it was read",
		a.ClaimDelete(ctx, claim("late", later.Add(time.Hour), time.Minute), read, kept))
}
