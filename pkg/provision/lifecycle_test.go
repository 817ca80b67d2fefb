package provision_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/memstore"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

func TestGet(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.svc.Get(ctx, sub)
	wantCode(t, "nothing", err, provision.CodeNotProvisioned)
	created := w.provisioned(t)
	got, err := w.svc.Get(ctx, sub)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got != created {
		t.Errorf("Get\n got %+v\nwant %+v", got, created)
	}
	_, err = w.svc.Get(ctx, "")
	wantCode(t, "empty sub", err, provision.CodeUnauthorized)
	if n := len(w.kandy.callList()); n != 1 {
		t.Fatalf("Get called Kandy: %v", w.kandy.callList())
	}
}

// How each state reads: a live creation is in progress; a delete under
// way, or any claim left to expire, is no account.
func TestReadsOfClaimedRecords(t *testing.T) {
	for _, tt := range []struct {
		status provision.Status
		ttl    time.Duration
		want   provision.Code
	}{
		{provision.StatusPending, time.Second, provision.CodeInProgress},
		{provision.StatusPending, -time.Millisecond, provision.CodeNotProvisioned},
		{provision.StatusPending, 0, provision.CodeNotProvisioned},
		{provision.StatusDeleting, time.Second, provision.CodeNotProvisioned},
		{provision.StatusDeleting, -time.Millisecond, provision.CodeNotProvisioned},
	} {
		w := newWorld(t)
		w.claimed(tt.status, tt.ttl)
		_, err := w.svc.Get(context.Background(), sub)
		wantCode(t, fmt.Sprintf("Get of %s %v", tt.status, tt.ttl), err, tt.want)
		_, err = w.svc.UserToken(context.Background(), sub)
		wantCode(t, fmt.Sprintf("UserToken of %s %v", tt.status, tt.ttl), err, tt.want)
		if len(w.kandy.callList()) != 0 {
			t.Fatalf("Kandy called for a %s record", tt.status)
		}
	}
}

type brokenStore struct{ *memstore.Accounts }

func (brokenStore) Get(context.Context, string) (provision.Record, error) {
	return provision.Record{}, errors.New("dynamodb: ProvisionedThroughputExceededException")
}

func TestStoreFailuresAreInternal(t *testing.T) {
	s := serviceOver(t, brokenStore{memstore.New()}, newKandy())
	ctx := context.Background()
	_, err := s.Get(ctx, sub)
	wantCode(t, "Get", err, provision.CodeInternal)
	_, err = s.UserToken(ctx, sub)
	wantCode(t, "UserToken", err, provision.CodeInternal)
	wantCode(t, "Delete", deleted(s, ctx, sub), provision.CodeInternal)
	if !strings.Contains(err.Error(), "reading record") {
		t.Fatalf("err = %v", err)
	}
}

func TestUserToken(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.svc.UserToken(ctx, sub)
	wantCode(t, "nothing", err, provision.CodeNotProvisioned)
	w.provisioned(t)
	tok, err := w.svc.UserToken(ctx, sub)
	if err != nil {
		t.Fatalf("UserToken: %v", err)
	}
	if tok != "UAT"+uid {
		t.Errorf("UserToken = %q, want %q", tok, "UAT"+uid)
	}
	w.kandy.tokenErr = []error{provision.ErrKandyUnavailable}
	_, err = w.svc.UserToken(ctx, sub)
	wantCode(t, "Kandy down", err, provision.CodeKandyUnavailable)
	_, err = w.svc.UserToken(ctx, "")
	wantCode(t, "empty sub", err, provision.CodeUnauthorized)
}

// racingKandy runs actions around one token request's call to Kandy: as
// if other requests ran between its read and its call, and between its
// call and whatever it does next.
type racingKandy struct {
	*fakeKandy
	before, after func()
}

func (r *racingKandy) UserAccessToken(ctx context.Context, id string) (string, error) {
	run := func(f *func()) {
		if g := *f; g != nil {
			*f = nil
			g()
		}
	}
	run(&r.before)
	defer run(&r.after)
	return r.fakeKandy.UserAccessToken(ctx, id)
}

// A token request that races a delete answers as if it came after it, and
// one that races a delete and a new creation gets the new user's token.
func TestUserTokenRacingADelete(t *testing.T) {
	ctx := context.Background()
	acc := memstore.New()
	k := &racingKandy{fakeKandy: newKandy()}
	s := serviceOver(t, acc, k.fakeKandy)
	racer := serviceOver(t, acc, k)
	if _, _, err := s.Ensure(ctx, sub, provision.EnsureOptions{}); err != nil {
		t.Fatal(err)
	}
	k.before = func() { _ = deleted(s, ctx, sub) }
	_, err := racer.UserToken(ctx, sub)
	wantCode(t, "token racing a delete", err, provision.CodeNotProvisioned)

	if _, _, err := s.Ensure(ctx, sub, provision.EnsureOptions{ByUser: true}); err != nil {
		t.Fatal(err)
	}
	tokens := func() int { return strings.Count(strings.Join(k.callList(), ","), "token ") }
	before := tokens()
	k.before = func() { _ = deleted(s, ctx, sub) }
	k.after = func() { _, _, _ = s.Ensure(ctx, sub, provision.EnsureOptions{ByUser: true}) }
	tok, err := racer.UserToken(ctx, sub)
	if err != nil {
		t.Fatalf("token racing a delete and a creation: %v", err)
	}
	if tok != "UAT"+uid {
		t.Errorf("token racing a delete and a creation = %q, want the new user's %q", tok, "UAT"+uid)
	}
	if calls := tokens() - before; calls != 2 {
		t.Fatalf("%d token calls, want 2: the first found the user gone, the second asked the new one", calls)
	}
}

// An ACTIVE record whose Kandy user is gone, with no request racing it,
// is rebuilt: the user's own request proves they are in the pool. The
// token is the new user's, the record holds its credentials, and the
// rebuild is counted.
func TestUserTokenRebuildsAVanishedKandyUser(t *testing.T) {
	m := &countingMetrics{}
	w := newWorld(t, func(o *provision.Options) { o.Metrics = m })
	w.provisioned(t)
	before, _ := w.record(t)
	delete(w.kandy.users, uid)
	tok, err := w.svc.UserToken(context.Background(), sub)
	if err != nil {
		t.Fatalf("token of a vanished Kandy user: %v", err)
	}
	if tok != "UAT"+uid {
		t.Errorf("token %q, want %q", tok, "UAT"+uid)
	}
	after, _ := w.record(t)
	if after.Generation == before.Generation || after.UserAPIKey != w.kandy.users[uid].UserAPIKey {
		t.Errorf("record after the rebuild %+v, want a new generation with the new user's key %s", after, w.kandy.users[uid].UserAPIKey)
	}
	want := []string{"create " + uid + " US", "token " + uid, "delete " + uid, "create " + uid + " US", "token " + uid}
	if calls := w.kandy.callList(); fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("calls %v, want %v", calls, want)
	}
	if m.rebuilt != 1 {
		t.Errorf("rebuilds counted %d, want 1", m.rebuilt)
	}
}

// A rebuild yields to what another request did since the read: a record
// changed under it is ErrInProgress, and a user who deleted their account
// meanwhile is not provisioned again.
func TestRebuildYields(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.provisioned(t)
	seen, _ := w.record(t)
	if err := deleted(w.svc, ctx, sub); err != nil {
		t.Fatal(err)
	}
	_, err := w.svc.Rebuild(ctx, seen)
	wantCode(t, "rebuild of a record deleted since", err, provision.CodeInProgress)
	if rec, _ := w.record(t); rec.Status != provision.StatusDeleted {
		t.Errorf("record %s after the rebuild yielded, want the tombstone", rec.Status)
	}
	if _, ok := w.kandy.users[uid]; ok {
		t.Error("the rebuild created a Kandy user for a user who deleted their account")
	}
}

func TestDelete(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	wantCode(t, "empty sub", deleted(w.svc, ctx, ""), provision.CodeUnauthorized)
	w.provisioned(t)
	if err := deleted(w.svc, ctx, sub); err != nil {
		t.Fatal(err)
	}
	rec, ok := w.record(t)
	if !ok {
		t.Fatal("after Delete: no record; want a kept tombstone")
	}
	if rec.Status != provision.StatusDeleted {
		t.Errorf("after Delete: status %q, want %q", rec.Status, provision.StatusDeleted)
	}
	if !rec.ExpiresAt.IsZero() {
		t.Errorf("after Delete: the tombstone expires at %v; want it kept", rec.ExpiresAt)
	}
	if rec.DeletedAt.IsZero() {
		t.Error("after Delete: the tombstone has no deleted_at")
	}
	if len(w.kandy.users) != 0 {
		t.Errorf("after Delete: Kandy users %v, want none", w.kandy.users)
	}
	wantCode(t, "second Delete", deleted(w.svc, ctx, sub), provision.CodeNotProvisioned)
	_, err := w.svc.Get(ctx, sub)
	wantCode(t, "Get of a tombstone", err, provision.CodeNotProvisioned)
	_, err = w.svc.UserToken(ctx, sub)
	wantCode(t, "UserToken of a tombstone", err, provision.CodeNotProvisioned)
	if calls := strings.Join(w.kandy.callList(), ","); calls != "create "+uid+" US,delete "+uid {
		t.Fatalf("calls %s", calls)
	}
}

// A Delete where there was no account leaves a tombstone all the same,
// with no Kandy call: the user asked for no account.
func TestDeleteOfNothingLeavesATombstone(t *testing.T) {
	w := newWorld(t)
	wantCode(t, "nothing", deleted(w.svc, context.Background(), sub), provision.CodeNotProvisioned)
	if rec, ok := w.record(t); !ok {
		t.Error("no record; want a tombstone")
	} else if rec.Status != provision.StatusDeleted {
		t.Errorf("status %q, want a tombstone, %q", rec.Status, provision.StatusDeleted)
	}
	if calls := w.kandy.callList(); len(calls) != 0 {
		t.Fatalf("Kandy called: %v", calls)
	}
}

// A delete whose Kandy user is already gone finishes with the record.
func TestDeleteWithTheKandyUserGone(t *testing.T) {
	w := newWorld(t)
	w.provisioned(t)
	delete(w.kandy.users, uid)
	if err := deleted(w.svc, context.Background(), sub); err != nil {
		t.Fatal(err)
	}
	if rec, _ := w.record(t); rec.Status != provision.StatusDeleted {
		t.Fatalf("record %+v, want a tombstone", rec)
	}
}

func TestDeleteOfLiveClaimsIsInProgress(t *testing.T) {
	for _, status := range []provision.Status{provision.StatusPending, provision.StatusDeleting} {
		w := newWorld(t)
		w.claimed(status, time.Second)
		wantCode(t, string(status), deleted(w.svc, context.Background(), sub), provision.CodeInProgress)
		if rec, _ := w.record(t); rec.ClaimToken != "held" {
			t.Errorf("%s: claim token %q, want the other's %q", status, rec.ClaimToken, "held")
		}
		if calls := w.kandy.callList(); len(calls) != 0 {
			t.Errorf("%s: Kandy called under another's claim: %v", status, calls)
		}
	}
}

// A delete left half done (Kandy failed) keeps its claim; when it expires,
// the next Delete takes it over and finishes, and an Ensure waits for it.
func TestAFailedDeleteIsFinishedLater(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.provisioned(t)
	w.kandy.deleteErr = provision.ErrKandyUnavailable
	wantCode(t, "Kandy down", deleted(w.svc, ctx, sub), provision.CodeKandyUnavailable)
	rec, _ := w.record(t)
	if rec.Status != provision.StatusDeleting {
		t.Errorf("after a failed delete: status %q, want %q", rec.Status, provision.StatusDeleting)
	}
	if !rec.Held(w.clock.Now()) {
		t.Errorf("after a failed delete: the claim is not held (expires %v, now %v)", rec.ClaimExpiresAt, w.clock.Now())
	}
	_, _, err := w.svc.Ensure(ctx, sub, provision.EnsureOptions{})
	wantCode(t, "Ensure during the delete", err, provision.CodeInProgress)
	wantCode(t, "Delete during the delete", deleted(w.svc, ctx, sub), provision.CodeInProgress)
	w.kandy.deleteErr = nil
	w.clock.Add(w.svc.ClaimTTL() + time.Second)
	if err := deleted(w.svc, ctx, sub); err != nil {
		t.Fatalf("Delete after the claim expired = %v", err)
	}
	if rec, _ := w.record(t); rec.Status != provision.StatusDeleted {
		t.Errorf("not finished: status %q, want %q", rec.Status, provision.StatusDeleted)
	}
	if len(w.kandy.users) != 0 {
		t.Errorf("not finished: Kandy users %v, want none", w.kandy.users)
	}
}

// An abandoned creation is cleaned up by a delete, which answers that
// there was no account.
func TestDeleteOfAnAbandonedCreation(t *testing.T) {
	w := newWorld(t)
	w.claimed(provision.StatusPending, -time.Second)
	w.kandy.users[uid] = provision.Credentials{UserAPIKey: "UAKorphan"}
	wantCode(t, "abandoned", deleted(w.svc, context.Background(), sub), provision.CodeNotProvisioned)
	if rec, _ := w.record(t); rec.Status != provision.StatusDeleted {
		t.Errorf("not cleaned up: status %q, want %q", rec.Status, provision.StatusDeleted)
	}
	if len(w.kandy.users) != 0 {
		t.Errorf("not cleaned up: Kandy users %v, want none", w.kandy.users)
	}
}

// changingStore makes the record change between a delete's read and its
// claim, a given number of times.
type changingStore struct {
	*memstore.Accounts
	changes int
	claims  int
}

func (c *changingStore) ClaimDelete(ctx context.Context, cl provision.Claim, seen provision.Record, end provision.Ending) error {
	c.claims++
	if c.changes > 0 {
		c.changes--
		return fmt.Errorf("claiming: %w", provision.ErrClaimLost)
	}
	return c.Accounts.ClaimDelete(ctx, cl, seen, end)
}

func TestDeleteReadsAgainWhenTheRecordChanged(t *testing.T) {
	for _, tt := range []struct {
		changes, claims int
		want            provision.Code
	}{{1, 2, ""}, {2, 3, ""}, {3, 3, provision.CodeInProgress}} {
		acc := &changingStore{Accounts: memstore.New(), changes: tt.changes}
		s := serviceOver(t, acc, newKandy())
		if _, _, err := s.Ensure(context.Background(), sub, provision.EnsureOptions{}); err != nil {
			t.Fatal(err)
		}
		err := deleted(s, context.Background(), sub)
		wantCode(t, fmt.Sprintf("%d changes", tt.changes), err, tt.want)
		if acc.claims != tt.claims {
			t.Fatalf("%d changes: %d delete claims, want %d", tt.changes, acc.claims, tt.claims)
		}
	}
}

// finishing fails the last step of a delete.
type finishing struct {
	*memstore.Accounts
	err error
}

func (f finishing) FinishDelete(context.Context, provision.Claim, provision.Ending) error {
	return f.err
}

func TestDeleteFinishFailures(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want provision.Code
	}{
		{fmt.Errorf("deleting: %w", provision.ErrClaimLost), ""},
		{errors.New("dynamodb: InternalServerError"), provision.CodeInternal},
	} {
		acc := finishing{Accounts: memstore.New(), err: tt.err}
		s := serviceOver(t, acc, newKandy())
		if _, _, err := s.Ensure(context.Background(), sub, provision.EnsureOptions{}); err != nil {
			t.Fatal(err)
		}
		wantCode(t, tt.err.Error(), deleted(s, context.Background(), sub), tt.want)
	}
}

// The Kandy delete is made only while the delete claim is surely held.
func TestDeleteCallsKandyWithinTheClaim(t *testing.T) {
	w := newWorld(t)
	w.provisioned(t)
	if err := deleted(w.svc, context.Background(), sub); err != nil {
		t.Fatal(err)
	}
	want := w.clock.Now().Add(w.svc.ClaimTTL() - w.svc.ClaimMargin())
	if got := w.kandy.deadlines[1]; !got.Equal(want) {
		t.Fatalf("delete's deadline %v, want %v", got, want)
	}
}

// Purge is the operators' delete: on condition that the record is still
// as they saw it, including no record at all, leaving what they say.
func TestPurge(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.kandy.users[uid] = provision.Credentials{UserAPIKey: "UAKorphan"}
	if err := w.svc.Purge(ctx, provision.Record{Sub: sub}, provision.Ending{}); err != nil {
		t.Fatalf("purge of an orphan = %v", err)
	}
	if rec, ok := w.record(t); ok {
		t.Errorf("purge of an orphan left the record %+v", rec)
	}
	if len(w.kandy.users) != 0 {
		t.Errorf("purge of an orphan left Kandy users %v", w.kandy.users)
	}
	w.provisioned(t)
	seen, _ := w.record(t)
	if err := w.svc.Purge(ctx, provision.Record{Sub: sub}, provision.Ending{}); !errors.Is(err, provision.ErrClaimLost) {
		t.Fatalf("purge of nothing over an account = %v", err)
	}
	stale := seen
	stale.Generation = "older"
	if err := w.svc.Purge(ctx, stale, provision.Ending{}); !errors.Is(err, provision.ErrClaimLost) {
		t.Fatalf("purge of another generation = %v", err)
	}
	if len(w.kandy.users) != 1 {
		t.Fatal("a refused purge reached Kandy")
	}
	gone := provision.Ending{Tombstone: true, ExpiresAt: w.clock.Now().Add(provision.TombstoneTTL)}
	if err := w.svc.Purge(ctx, seen, gone); err != nil {
		t.Fatalf("purge of the account seen = %v", err)
	}
	rec, _ := w.record(t)
	if rec.Status != provision.StatusDeleted {
		t.Errorf("after the purge: status %q, want %q", rec.Status, provision.StatusDeleted)
	}
	if !rec.ExpiresAt.Equal(gone.ExpiresAt) {
		t.Errorf("after the purge: expires at %v, want %v", rec.ExpiresAt, gone.ExpiresAt)
	}
	if len(w.kandy.users) != 0 {
		t.Errorf("after the purge: Kandy users %v, want none", w.kandy.users)
	}
	w2 := newWorld(t)
	live := w2.claimed(provision.StatusPending, time.Second)
	wantCode(t, "purge of a live claim", w2.svc.Purge(ctx, live, provision.Ending{}), provision.CodeInProgress)
	wantCode(t, "purge of an invalid sub", w2.svc.Purge(ctx, provision.Record{}, provision.Ending{}), provision.CodeUnauthorized)
}

// Deprovision, for a user who left the pool, leaves a tombstone that
// expires, whatever it finds; duplicates change nothing.
func TestDeprovision(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name      string
		given     func(*world)
		kandyCall bool
	}{
		{"an account", func(w *world) { w.provisioned(t) }, true},
		{"no record", func(*world) {}, false},
		{"evidence of a creation given up", func(w *world) { w.claimed(provision.StatusPending, -time.Millisecond) }, true},
		{"an abandoned delete", func(w *world) { w.claimed(provision.StatusDeleting, -time.Millisecond) }, true},
		{"a kept tombstone", func(w *world) {
			w.provisioned(t)
			if err := deleted(w.svc, ctx, sub); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			tt.given(w)
			before := len(w.kandy.callList())
			if err := w.svc.Deprovision(ctx, sub); err != nil {
				t.Fatal(err)
			}
			rec, _ := w.record(t)
			want := w.clock.Now().Truncate(time.Millisecond).Add(provision.TombstoneTTL)
			if rec.Status != provision.StatusDeleted {
				t.Errorf("after Deprovision: status %q, want %q", rec.Status, provision.StatusDeleted)
			}
			if !rec.ExpiresAt.Equal(want) {
				t.Errorf("after Deprovision: the tombstone expires at %v, want %v", rec.ExpiresAt, want)
			}
			if len(w.kandy.users) != 0 {
				t.Errorf("after Deprovision: Kandy users %v, want none", w.kandy.users)
			}
			if called := len(w.kandy.callList()) > before; called != tt.kandyCall {
				t.Fatalf("Kandy called = %v, want %v: %v", called, tt.kandyCall, w.kandy.callList())
			}
			w.clock.Add(time.Hour)
			calls := len(w.kandy.callList())
			if err := w.svc.Deprovision(ctx, sub); err != nil {
				t.Fatalf("a duplicate = %v", err)
			}
			again, _ := w.record(t)
			if !again.ExpiresAt.Equal(want) {
				t.Errorf("a duplicate moved the expiry to %v, want %v", again.ExpiresAt, want)
			}
			if again.Generation != rec.Generation {
				t.Errorf("a duplicate changed the generation to %q, want %q", again.Generation, rec.Generation)
			}
			if n := len(w.kandy.callList()); n != calls {
				t.Errorf("a duplicate called Kandy: %d calls, want %d: %v", n, calls, w.kandy.callList())
			}
		})
	}
	w := newWorld(t)
	w.claimed(provision.StatusPending, time.Second)
	wantCode(t, "Deprovision during a creation", w.svc.Deprovision(ctx, sub), provision.CodeInProgress)
	w.kandy.deleteErr = fmt.Errorf("delete user: %w", provision.ErrKandyUnavailable)
	w.clock.Add(2 * time.Second)
	wantCode(t, "Deprovision with Kandy down", w.svc.Deprovision(ctx, sub), provision.CodeKandyUnavailable)
	wantCode(t, "Deprovision of an invalid sub", w.svc.Deprovision(ctx, ""), provision.CodeUnauthorized)
}

// claimFailing fails the delete claim with an error of the store's own.
type claimFailing struct{ *memstore.Accounts }

func (claimFailing) ClaimDelete(context.Context, provision.Claim, provision.Record, provision.Ending) error {
	return errors.New("dynamodb: InternalServerError")
}

func TestDeleteClaimFailures(t *testing.T) {
	acc := claimFailing{memstore.New()}
	s := serviceOver(t, acc, newKandy())
	if _, _, err := s.Ensure(context.Background(), sub, provision.EnsureOptions{}); err != nil {
		t.Fatal(err)
	}
	err := deleted(s, context.Background(), sub)
	wantCode(t, "store failure", err, provision.CodeInternal)
	if !strings.Contains(err.Error(), "claiming the delete") {
		t.Fatalf("err = %v", err)
	}
}

// Leaving the pool is final for every path: after the deletion event, or
// while its delete is left half-way, the user's own POST /users is refused
// as closed and calls nothing at Kandy, as is every automatic path; reads
// and the user's own DELETE answer as for any tombstone, and keep it
// expiring.
func TestLeavingThePoolIsFinal(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		leave func(*world)
	}{
		{"left", func(w *world) {
			if err := w.svc.Deprovision(ctx, sub); err != nil {
				t.Fatal(err)
			}
		}},
		{"left after deleting the account", func(w *world) {
			if err := deleted(w.svc, ctx, sub); err != nil {
				t.Fatal(err)
			}
			if err := w.svc.Deprovision(ctx, sub); err != nil {
				t.Fatal(err)
			}
		}},
		{"leaving, the delete left half-way", func(w *world) {
			w.kandy.deleteErr = fmt.Errorf("delete user: %w", provision.ErrKandyUnavailable)
			wantCode(t, "Deprovision with Kandy down", w.svc.Deprovision(ctx, sub), provision.CodeKandyUnavailable)
			w.kandy.deleteErr = nil
			w.clock.Add(2 * time.Minute) // the delete's claim expires
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.provisioned(t)
			tt.leave(w)
			before := len(w.kandy.callList())
			_, _, err := w.svc.Ensure(ctx, sub, provision.EnsureOptions{ByUser: true})
			wantCode(t, "the user's own POST", err, provision.CodeAccountClosed)
			_, _, err = w.svc.Ensure(ctx, sub, provision.EnsureOptions{})
			if !errors.Is(err, provision.ErrAccountDeleted) {
				t.Errorf("an automatic path = %v, want ErrAccountDeleted", err)
			}
			if calls := w.kandy.callList()[before:]; len(calls) != 0 {
				t.Errorf("Kandy called %v for a user who left", calls)
			}
			_, err = w.svc.Get(ctx, sub)
			wantCode(t, "GET", err, provision.CodeNotProvisioned)
			_, err = w.svc.UserToken(ctx, sub)
			wantCode(t, "token", err, provision.CodeNotProvisioned)
			_ = deleted(w.svc, ctx, sub)
			rec, _ := w.record(t)
			if !rec.LeftPool() {
				t.Errorf("after the user's DELETE: %+v, want the expiring tombstone of a user who left", rec)
			}
			_, _, err = w.svc.Ensure(ctx, sub, provision.EnsureOptions{ByUser: true})
			wantCode(t, "the user's POST after their DELETE", err, provision.CodeAccountClosed)
			if len(w.kandy.users) != 0 {
				t.Errorf("Kandy holds %v", w.kandy.users)
			}
		})
	}
}
