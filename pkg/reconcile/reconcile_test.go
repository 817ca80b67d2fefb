package reconcile_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/memstore"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/kandy"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/reconcile"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/userid"
)

// fakeKandy is a Kandy that lists its users, for the domain and for
// Compare alike.
type fakeKandy struct {
	mu       sync.Mutex
	users    map[string]string // id -> user API key
	quota    int
	creates  int
	inFlight int
	most     int
}

func (k *fakeKandy) CreateUser(_ context.Context, id, _ string) (provision.Credentials, error) {
	k.mu.Lock()
	k.inFlight++
	k.most = max(k.most, k.inFlight)
	k.mu.Unlock()
	time.Sleep(2 * time.Millisecond)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.inFlight--
	if _, ok := k.users[id]; ok {
		return provision.Credentials{}, provision.ErrKandyUserExists
	}
	if k.quota > 0 && len(k.users) >= k.quota {
		return provision.Credentials{}, fmt.Errorf("create user: %w", provision.ErrQuotaExceeded)
	}
	k.creates++
	key := fmt.Sprintf("UAK%d", k.creates)
	k.users[id] = key
	return provision.Credentials{FullUserID: id + "@d", DomainName: "d", UserAPIKey: key, UserAPISecret: "UAS", UserPassword: "pw"}, nil
}

func (k *fakeKandy) DeleteUser(_ context.Context, id string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.users[id]; !ok {
		return provision.ErrKandyNoSuchUser
	}
	delete(k.users, id)
	return nil
}

func (k *fakeKandy) UserAccessToken(context.Context, string) (string, error) { return "UAT", nil }

func (k *fakeKandy) ListUsers(context.Context) ([]kandy.ListedUser, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []kandy.ListedUser
	for id, key := range k.users {
		out = append(out, kandy.ListedUser{UserID: id, UserAPIKey: key})
	}
	return out, nil
}

// world is a pool, a table and Kandy, with the domain over the latter two.
type world struct {
	pool  map[string]bool // sub -> confirmed
	store *memstore.Accounts
	kandy *fakeKandy
	svc   *provision.Service
	now   time.Time
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{pool: map[string]bool{}, store: memstore.New(), kandy: &fakeKandy{users: map[string]string{}}, now: time.Now()}
	svc, err := provision.New(w.store, w.kandy, provision.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	w.svc = svc
	return w
}

func sub(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }
func uid(n int) string { id, _ := userid.FromSub(sub(n)); return id }

func (w *world) sources() reconcile.Sources {
	return reconcile.Sources{
		Records: func(ctx context.Context, fn func(provision.Record) error) error {
			for s := range w.pool {
				if r, err := w.store.Get(ctx, s); err == nil {
					if err := fn(r); err != nil {
						return err
					}
				}
			}
			for _, extra := range []int{90, 91, 92} { // records of users not in the pool
				if r, err := w.store.Get(ctx, sub(extra)); err == nil {
					_ = fn(r)
				}
			}
			return nil
		},
		KandyUsers: func(ctx context.Context) ([]reconcile.KandyUser, error) {
			listed, _ := w.kandy.ListUsers(ctx)
			var out []reconcile.KandyUser
			for _, u := range listed {
				out = append(out, reconcile.KandyUser{UserID: u.UserID, APIKey: u.UserAPIKey})
			}
			return out, nil
		},
		CognitoUsers: func(_ context.Context, fn func([]reconcile.CognitoUser) error) error {
			var page []reconcile.CognitoUser
			for s, c := range w.pool {
				page = append(page, reconcile.CognitoUser{Username: s, Sub: s, Confirmed: c})
			}
			return fn(page)
		},
	}
}

func (w *world) compare(t *testing.T) reconcile.Report {
	t.Helper()
	rep, err := reconcile.Compare(context.Background(), w.sources(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// seed makes one user in agreement and one of each kind of drift, plus a
// Kandy user outside our scheme and an account being created now.
func (w *world) seed(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	ensure := func(n int) {
		if _, _, err := w.svc.Ensure(ctx, sub(n), provision.EnsureOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	w.pool[sub(1)] = true // in agreement
	ensure(1)
	w.pool[sub(2)] = true // missing: nothing anywhere
	w.pool[sub(3)] = true // missing: a Kandy user left behind
	w.kandy.users[uid(3)] = "UAKleft"
	ensure(90)                         // gone: a record and a Kandy user, no Cognito user
	w.kandy.users[uid(91)] = "UAKgone" // gone: only a Kandy user
	w.pool[sub(4)] = false             // orphan: never confirmed, Kandy user without record
	w.kandy.users[uid(4)] = "UAKorphan"
	w.pool[sub(5)] = true // stale PENDING of a confirmed user
	w.store.Put(provision.Record{Sub: sub(5), UserID: uid(5), Status: provision.StatusPending, ClaimToken: "t5", Generation: "t5", ClaimExpiresAt: w.now.Add(-time.Minute)})
	w.pool[sub(6)] = true // stale DELETING
	w.store.Put(provision.Record{Sub: sub(6), UserID: uid(6), Status: provision.StatusDeleting, ClaimToken: "t6", Generation: "t6", ClaimExpiresAt: w.now.Add(-time.Minute)})
	w.kandy.users[uid(6)] = "UAKhalfdeleted"
	w.pool[sub(7)] = true // broken: Kandy user missing
	ensure(7)
	delete(w.kandy.users, uid(7))
	w.pool[sub(8)] = true // broken: restored from a backup, other credentials
	ensure(8)
	w.kandy.users[uid(8)] = "UAKnewer"
	w.pool[sub(9)] = true // in progress: a live claim
	w.store.Put(provision.Record{Sub: sub(9), UserID: uid(9), Status: provision.StatusPending, ClaimToken: "t9", Generation: "t9", ClaimExpiresAt: w.now.Add(time.Hour)})
	w.pool[sub(10)] = false // unconfirmed, nothing yet: not drift
	w.kandy.users["bob"] = "UAKforeign"
	w.pool[sub(11)] = true // deleted their account, and stays: a choice, not drift
	ensure(11)
	if _, err := w.svc.Delete(ctx, sub(11)); err != nil {
		t.Fatal(err)
	}
	w.pool[sub(12)] = true // orphan: a Kandy user under a tombstone
	ensure(12)
	if _, err := w.svc.Delete(ctx, sub(12)); err != nil {
		t.Fatal(err)
	}
	w.kandy.users[uid(12)] = "UAKundead"
	ensure(92) // left the pool: a tombstone that expires, in agreement
	if err := w.svc.Deprovision(ctx, sub(92)); err != nil {
		t.Fatal(err)
	}
}

func TestCompareClassifiesEveryDifference(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	rep := w.compare(t)
	got := map[string]string{}
	for _, it := range rep.Items {
		got[it.Sub] = string(it.Class)
		if it.UserID == "" {
			t.Errorf("item %+v lacks its user id", it)
		}
		if it.Why == "" {
			t.Errorf("item %+v lacks its reason", it)
		}
	}
	want := map[string]string{sub(2): "missing", sub(3): "missing", sub(90): "gone", sub(91): "gone", sub(4): "orphan",
		sub(5): "stale", sub(6): "stale", sub(7): "broken", sub(8): "broken", sub(11): "deleted_by_user", sub(12): "orphan"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("classes %v\nwant    %v", got, want)
	}
	if rep.InAgreement != 2 {
		t.Errorf("%d in agreement, want 2", rep.InAgreement)
	}
	if rep.InProgress != 1 {
		t.Errorf("%d in progress, want 1", rep.InProgress)
	}
	if got := strings.Join(rep.Foreign, ","); got != "bob" {
		t.Errorf("foreign Kandy users %q, want %q", got, "bob")
	}
	if rep.CognitoUsers != 12 {
		t.Errorf("read %d Cognito users, want 12", rep.CognitoUsers)
	}
	if rep.Records != 10 {
		t.Errorf("read %d records, want 10", rep.Records)
	}
	if rep.KandyUsers != 9 {
		t.Errorf("read %d Kandy users, want 9", rep.KandyUsers)
	}
	counts := map[reconcile.Class]int{}
	for _, c := range reconcile.Classes {
		counts[c] = rep.Count(c)
	}
	if fmt.Sprint(counts) != "map[broken:2 deleted_by_user:1 gone:2 missing:2 orphan:2 stale:2]" {
		t.Fatalf("counts %v", counts)
	}
}

func all(classes ...reconcile.Class) map[reconcile.Class]bool {
	m := map[reconcile.Class]bool{}
	for _, c := range classes {
		m[c] = true
	}
	return m
}

func stillGone(w *world) func(context.Context, string) (bool, error) {
	return func(_ context.Context, s string) (bool, error) { _, ok := w.pool[s]; return !ok, nil }
}

// Each class alone: its items are repaired and nothing else changes, but
// that a stale delete, once finished, and a tombstone rid of a Kandy user
// under it, are the user's choice; a user who
// deleted their account is never repaired. All of them together: a second
// comparison finds nothing but those choices, and the Kandy user outside
// our scheme is untouched.
func TestFixRepairsExactlyTheNamedClasses(t *testing.T) {
	for _, c := range reconcile.Classes {
		w := newWorld(t)
		w.seed(t)
		before := w.compare(t)
		sum, err := reconcile.Fix(context.Background(), before, w.svc, reconcile.FixOptions{Classes: all(c), MaxDeletes: 10, StillGone: stillGone(w)})
		repaired := before.Count(c)
		if !c.IsDrift() {
			repaired = 0
		}
		if err != nil {
			t.Fatalf("%s: Fix: %v", c, err)
		}
		if sum.Repaired[c] != repaired {
			t.Errorf("%s: repaired %d, want %d", c, sum.Repaired[c], repaired)
		}
		if len(sum.Failures) != 0 {
			t.Errorf("%s: failures %+v, want none", c, sum.Failures)
		}
		if sum.Skipped != 0 {
			t.Errorf("%s: skipped %d, want 0", c, sum.Skipped)
		}
		after := w.compare(t)
		for _, other := range reconcile.Classes {
			want := before.Count(other)
			switch {
			case other == c && c.IsDrift():
				want = 0
			case c == reconcile.Stale && other == reconcile.DeletedByUser:
				want++ // sub 6's delete, finished
			case c == reconcile.Orphan && other == reconcile.DeletedByUser:
				want++ // sub 12's tombstone, rid of the Kandy user under it
			}
			if after.Count(other) != want {
				t.Errorf("fixing %s: %s went %d -> %d", c, other, before.Count(other), after.Count(other))
			}
		}
	}
	w := newWorld(t)
	w.seed(t)
	if _, err := reconcile.Fix(context.Background(), w.compare(t), w.svc, reconcile.FixOptions{Classes: all(reconcile.Classes...), MaxDeletes: 10, StillGone: stillGone(w)}); err != nil {
		t.Fatal(err)
	}
	after := w.compare(t)
	if n := after.Count(reconcile.DeletedByUser); n != 3 {
		t.Errorf("after fixing everything: %d deleted by the user, want 3", n)
	}
	if len(after.Items) != 3 {
		t.Errorf("after fixing everything: items %+v, want 3", after.Items)
	}
	if after.InAgreement != 9 {
		t.Errorf("after fixing everything: %d in agreement, want 9", after.InAgreement)
	}
	if w.kandy.users["bob"] != "UAKforeign" {
		t.Fatal("the foreign Kandy user was touched")
	}
	for _, n := range []int{6, 11, 12} {
		if _, ok := w.kandy.users[uid(n)]; ok {
			t.Errorf("sub %d deleted their account and has a Kandy user", n)
		}
	}
}

// A user who deleted their account is never provisioned by --fix missing,
// not even if the comparison is run with that class alone.
func TestFixNeverProvisionsATombstone(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	rep := w.compare(t)
	for _, it := range rep.Items {
		if it.Sub == sub(11) && it.Class == reconcile.Missing {
			t.Fatal("a deleted account is reported missing")
		}
	}
	if _, err := reconcile.Fix(context.Background(), rep, w.svc, reconcile.FixOptions{Classes: all(reconcile.Missing, reconcile.DeletedByUser), MaxDeletes: 10}); err != nil {
		t.Fatal(err)
	}
	if rec, _ := w.store.Get(context.Background(), sub(11)); rec.Status != provision.StatusDeleted {
		t.Fatalf("sub 11 after --fix missing: %+v", rec)
	}
}

func TestCheckRefusesBulkDeletes(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	rep := w.compare(t)
	for _, tt := range []struct {
		name    string
		mutate  func(*reconcile.Report, *reconcile.FixOptions)
		refused bool
	}{
		{"within the limit", func(*reconcile.Report, *reconcile.FixOptions) {}, false},
		{"over the limit", func(_ *reconcile.Report, o *reconcile.FixOptions) { o.MaxDeletes = 5 }, true},
		{"over the limit, forced", func(_ *reconcile.Report, o *reconcile.FixOptions) { o.MaxDeletes, o.Force = 5, true }, false},
		{"no Cognito users", func(r *reconcile.Report, _ *reconcile.FixOptions) { r.CognitoUsers = 0 }, true},
		{"no Cognito users, forced", func(r *reconcile.Report, o *reconcile.FixOptions) { r.CognitoUsers, o.Force = 0, true }, false},
		{"no Cognito users, creations only", func(r *reconcile.Report, o *reconcile.FixOptions) {
			r.CognitoUsers, o.Classes = 0, all(reconcile.Missing, reconcile.Stale)
		}, false},
	} {
		r, o := rep, reconcile.FixOptions{Classes: all(reconcile.Gone, reconcile.Orphan, reconcile.Broken), MaxDeletes: 6}
		tt.mutate(&r, &o)
		if err := reconcile.Check(r, o); errors.Is(err, reconcile.ErrRefused) != tt.refused {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

// A gone user who came back, and a record that changed since it was read,
// are left alone.
func TestFixSkipsWhatChangedMeanwhile(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	rep := w.compare(t)
	w.pool[sub(90)] = true // signed up again
	if _, _, err := w.svc.Ensure(context.Background(), sub(2), provision.EnsureOptions{}); err != nil {
		t.Fatal(err)
	}
	_, _ = w.svc.Delete(context.Background(), sub(7)) // the user deleted the broken account
	sum, err := reconcile.Fix(context.Background(), rep, w.svc, reconcile.FixOptions{Classes: all(reconcile.Gone, reconcile.Broken, reconcile.Missing), MaxDeletes: 10, StillGone: stillGone(w)})
	if err != nil {
		t.Fatalf("Fix: %v", err)
	}
	if sum.Skipped != 2 {
		t.Errorf("skipped %d, want 2", sum.Skipped)
	}
	for c, want := range map[reconcile.Class]int{reconcile.Gone: 1, reconcile.Broken: 1, reconcile.Missing: 2} {
		if sum.Repaired[c] != want {
			t.Errorf("repaired %d %s, want %d", sum.Repaired[c], c, want)
		}
	}
	if _, err := w.store.Get(context.Background(), sub(90)); err != nil {
		t.Fatal("the account of a user who came back was deleted")
	}
}

func TestFixStopsOnQuotaAndHonoursItsBounds(t *testing.T) {
	w := newWorld(t)
	for n := 1; n <= 40; n++ {
		w.pool[sub(n)] = true
	}
	w.kandy.quota = 25
	start := time.Now()
	sum, err := reconcile.Fix(context.Background(), w.compare(t), w.svc, reconcile.FixOptions{Classes: all(reconcile.Missing), Concurrency: 3, Rate: 400})
	if err != nil {
		t.Fatalf("Fix: %v", err)
	}
	if n := sum.Repaired[reconcile.Missing]; n != 25 {
		t.Errorf("repaired %d missing, want the quota's 25", n)
	}
	if !errors.Is(sum.Stopped, provision.ErrQuotaExceeded) {
		t.Errorf("stopped %v, want the user limit", sum.Stopped)
	}
	if raw, _ := json.Marshal(sum); !strings.Contains(string(raw), `"stopped":"stopped: create user: Kandy refused: the account's user limit is reached"`) {
		t.Errorf("the report's JSON: %s, want the refusal's text under stopped", raw)
	}
	if len(sum.Failures) > 3 {
		t.Errorf("%d failures %+v, want at most 3, one per worker", len(sum.Failures), sum.Failures)
	}
	if w.kandy.most > 3 || w.kandy.most < 2 {
		t.Fatalf("%d repairs at once, bound 3", w.kandy.most)
	}
	if d := time.Since(start); d < 25*time.Second/400 {
		t.Fatalf("25 repairs at 400/s took %v", d)
	}
}

func TestFixReportsProgressOneAtATime(t *testing.T) {
	w := newWorld(t)
	for n := 1; n <= 40; n++ {
		w.pool[sub(n)] = true
	}
	var inReport, reports, overlaps atomic.Int32
	progress := func(reconcile.FixSummary) {
		if inReport.Add(1) > 1 {
			overlaps.Add(1)
		}
		time.Sleep(time.Millisecond)
		reports.Add(1)
		inReport.Add(-1)
	}
	sum, err := reconcile.Fix(context.Background(), w.compare(t), w.svc, reconcile.FixOptions{Classes: all(reconcile.Missing), Concurrency: 4, Progress: progress})
	if err != nil {
		t.Fatalf("Fix: %v", err)
	}
	if n := sum.Repaired[reconcile.Missing]; n != 40 {
		t.Errorf("repaired %d missing, want 40", n)
	}
	if n := reports.Load(); n != 40 {
		t.Errorf("%d progress reports, want 40", n)
	}
	if n := overlaps.Load(); n != 0 {
		t.Errorf("%d progress reports overlapping, want none", n)
	}
}

type driftCounts map[string]int

func (d driftCounts) Drift(_ context.Context, class string, n int) { d[class] += n }
func (d driftCounts) Deleted(_ context.Context, n int)             { d["deleted"] += n }

// The scheduled reconcile publishes every class's count, zeros included,
// and changes nothing.
func TestReporter(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	before := len(w.kandy.users)
	var logs strings.Builder
	d := driftCounts{}
	r := reconcile.NewReporter(w.sources(), d, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err := r.Handle(context.Background(), events.EventBridgeEvent{}); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(d), "map[broken:2 deleted:1 gone:2 missing:2 orphan:2 stale:2]"; got != want {
		t.Errorf("published %s, want %s", got, want)
	}
	if len(w.kandy.users) != before {
		t.Errorf("Kandy users %d -> %d, want unchanged", before, len(w.kandy.users))
	}
	if !strings.Contains(logs.String(), `"msg":"reconcile: report"`) {
		t.Errorf("logs lack the report:\n%s", logs.String())
	}
	if n := strings.Count(logs.String(), `"msg":"reconcile: drift"`); n != 10 {
		t.Errorf("%d drift lines, want 10:\n%s", n, logs.String())
	}
	failing := reconcile.NewReporter(reconcile.Sources{Records: func(context.Context, func(provision.Record) error) error {
		return errors.New("AccessDenied")
	}}, d, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err := failing.Handle(context.Background(), events.EventBridgeEvent{}); err == nil {
		t.Fatal("a failed comparison reported no error")
	}
}
