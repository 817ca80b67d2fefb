package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/accountstest"
	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/kandysim"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/kandy"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/store"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/userid"
)

var db *dynamodb.Client

var tables atomic.Int32

func newAccounts(t *testing.T) *store.Accounts {
	t.Helper()
	return store.NewAccounts(db, newTable(t))
}

func newTable(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("accounts-%d", tables.Add(1))
	if err := processes.CreateTable(context.Background(), db, name); err != nil {
		t.Fatal(err)
	}
	return name
}

type keys kandy.ProjectKey

func (k keys) ProjectKey(context.Context) (kandy.ProjectKey, error) { return kandy.ProjectKey(k), nil }

type fixture struct {
	accounts *store.Accounts
	sim      *kandysim.Sim
	kandy    *kandy.Client
	svc      *provision.Service
}

func newFixture(t *testing.T, quota int) *fixture {
	t.Helper()
	sim := kandysim.New(kandysim.Options{Quota: quota})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	k, s := sim.ProjectKey()
	kc, err := kandy.New(kandy.Options{BaseURL: srv.URL, Keys: keys{APIKey: k, APISecret: s}, CallTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	acc := newAccounts(t)
	svc, err := provision.New(acc, kc, provision.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{accounts: acc, sim: sim, kandy: kc, svc: svc}
}

const sub = "0f8fad5b-d9cb-469f-a165-70867728950e"

func claim(token string, now, expires time.Time) provision.Claim {
	uid, _ := userid.FromSub(sub)
	return provision.Claim{Sub: sub, UserID: uid, Token: token, Now: now, ExpiresAt: expires}
}

func TestClaimFinalize(t *testing.T) {
	ctx := context.Background()
	a := newAccounts(t)
	now := time.Now()
	c1 := claim("t1", now, now.Add(time.Minute))
	accountstest.Claimed(t, a, c1)
	existing, ok, err := a.Claim(ctx, claim("t2", now, now.Add(time.Minute)))
	if err != nil {
		t.Fatalf("second claim: %v", err)
	}
	if ok {
		t.Error("second claim granted over a live one")
	}
	if existing.Status != provision.StatusPending {
		t.Errorf("second claim: existing status %q, want %q", existing.Status, provision.StatusPending)
	}
	if existing.ClaimToken != "t1" {
		t.Errorf("second claim: existing claim token %q, want %q", existing.ClaimToken, "t1")
	}
	creds := provision.Credentials{FullUserID: "u@d", DomainName: "d", UserAPIKey: "UAK1", UserAPISecret: "UAS1", UserPassword: "pw"}
	if _, err := a.Finalize(ctx, claim("t2", now, now), creds); !errors.Is(err, provision.ErrClaimLost) {
		t.Fatalf("finalize with another token = %v", err)
	}
	rec, err := a.Finalize(ctx, c1, creds)
	if err != nil {
		t.Fatalf("finalize: %v", err)
	}
	if rec.Status != provision.StatusActive {
		t.Errorf("finalize: status %q, want %q", rec.Status, provision.StatusActive)
	}
	if rec.UserAPISecret != "UAS1" {
		t.Errorf("finalize: UserAPISecret %q, want %q", rec.UserAPISecret, "UAS1")
	}
	if rec.UserPassword != "pw" {
		t.Errorf("finalize: UserPassword %q, want %q", rec.UserPassword, "pw")
	}
	if rec.ClaimToken != "" {
		t.Errorf("finalize: claim token %q, want none", rec.ClaimToken)
	}
	got, err := a.Get(ctx, sub)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Status != provision.StatusActive {
		t.Errorf("get: status %q, want %q", got.Status, provision.StatusActive)
	}
	if got.FullUserID != "u@d" {
		t.Errorf("get: full_user_id %q, want %q", got.FullUserID, "u@d")
	}
	if got.CreatedAt.IsZero() {
		t.Error("get: no created_at")
	}
	existing, ok, err = a.Claim(ctx, claim("t3", now.Add(time.Hour), now.Add(2*time.Hour)))
	if err != nil {
		t.Fatalf("claim over ACTIVE: %v", err)
	}
	if ok {
		t.Error("claim over ACTIVE granted")
	}
	if existing.Status != provision.StatusActive {
		t.Errorf("claim over ACTIVE: existing status %q, want %q", existing.Status, provision.StatusActive)
	}
	if err := a.Drop(ctx, c1); !errors.Is(err, provision.ErrClaimLost) {
		t.Fatalf("drop of an ACTIVE record = %v", err)
	}
}

func TestStaleClaimIsTakenOver(t *testing.T) {
	ctx := context.Background()
	a := newAccounts(t)
	now := time.Now()
	old := claim("old", now.Add(-time.Minute), now.Add(-time.Second))
	accountstest.Claimed(t, a, old)
	fresh := claim("new", now, now.Add(time.Minute))
	accountstest.Claimed(t, a, fresh)
	if _, err := a.Finalize(ctx, old, provision.Credentials{}); !errors.Is(err, provision.ErrClaimLost) {
		t.Fatalf("superseded finalize = %v", err)
	}
	if err := a.Drop(ctx, old); !errors.Is(err, provision.ErrClaimLost) {
		t.Fatalf("superseded drop = %v", err)
	}
	if err := a.Drop(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, sub); !errors.Is(err, provision.ErrNotProvisioned) {
		t.Fatalf("after drop: %v", err)
	}
}

func TestConcurrentEnsureCreatesOneKandyUser(t *testing.T) {
	f := newFixture(t, 5)
	f.sim.SetLatency(30 * time.Millisecond)
	var wg sync.WaitGroup
	var created, existing, inProgress atomic.Int32
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			acc, isNew, err := f.svc.Ensure(ctx, sub, provision.EnsureOptions{})
			switch {
			case errors.Is(err, provision.ErrInProgress):
				inProgress.Add(1)
			case err != nil:
				t.Error(err)
			case isNew:
				created.Add(1)
			case acc.UserID != "":
				existing.Add(1)
			}
		}()
	}
	wg.Wait()
	if created.Load() != 1 {
		t.Errorf("created=%d, want 1 (existing=%d in-progress=%d)", created.Load(), existing.Load(), inProgress.Load())
	}
	if sum := created.Load() + existing.Load() + inProgress.Load(); sum != 50 {
		t.Errorf("created=%d existing=%d in-progress=%d: %d answers, want 50", created.Load(), existing.Load(), inProgress.Load(), sum)
	}
	if n := f.sim.Calls(kandysim.EndpointCreateUser); n != 1 {
		t.Fatalf("Kandy creates = %d, want 1", n)
	}
	acc, isNew, err := f.svc.Ensure(context.Background(), sub, provision.EnsureOptions{})
	if err != nil {
		t.Fatalf("later Ensure: %v", err)
	}
	if isNew {
		t.Error("later Ensure reported that it created the account")
	}
	if want := "u0f8fad5bd9cb469fa16570867728950e"; acc.UserID != want {
		t.Errorf("later Ensure: user_id %q, want %q", acc.UserID, want)
	}
	assertOneStoredUser(t, f)
}

// A claim holder crashed after Kandy created the user and before the
// credentials were stored; its claim has expired.
func TestCrashAfterKandyCreateIsRecovered(t *testing.T) {
	f := newFixture(t, 5)
	ctx := context.Background()
	now := time.Now()
	c := claim("crashed", now.Add(-time.Minute), now.Add(-time.Second))
	accountstest.Claimed(t, f.accounts, c)
	orphan, err := f.kandy.CreateUser(ctx, c.UserID, "US")
	if err != nil {
		t.Fatal(err)
	}
	acc, isNew, err := f.svc.Ensure(ctx, sub, provision.EnsureOptions{})
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if !isNew {
		t.Error("Ensure did not report that it created the account")
	}
	if acc.UserID != c.UserID {
		t.Errorf("user_id %q, want %q", acc.UserID, c.UserID)
	}
	rec := assertOneStoredUser(t, f)
	if rec.UserAPIKey == orphan.UserAPIKey {
		t.Fatal("the orphan's credentials were kept; nobody knows its password")
	}
	if n := f.sim.Calls(kandysim.EndpointDeleteUser); n != 1 {
		t.Fatalf("orphan deletes = %d, want 1", n)
	}
}

// Kandy created the user but its answer was lost: the record stays as
// evidence, its claim ended, and the next attempt recovers the orphan.
func TestLostCreateAnswerIsRecovered(t *testing.T) {
	f := newFixture(t, 5)
	ctx := context.Background()
	f.sim.Inject(kandysim.EndpointCreateUser, kandysim.FaultLostAnswer, 1)
	if _, _, err := f.svc.Ensure(ctx, sub, provision.EnsureOptions{}); !errors.Is(err, provision.ErrKandyUnavailable) {
		t.Fatalf("first Ensure = %v, want ErrKandyUnavailable", err)
	}
	rec, err := f.accounts.Get(ctx, sub)
	if err != nil {
		t.Fatalf("after the lost answer: %v; want PENDING evidence", err)
	}
	if rec.Status != provision.StatusPending {
		t.Errorf("after the lost answer: status %q, want %q", rec.Status, provision.StatusPending)
	}
	if now := time.Now(); rec.Held(now) {
		t.Errorf("after the lost answer: the claim is still held (expires %v, now %v); want it ended", rec.ClaimExpiresAt, now)
	}
	_, isNew, err := f.svc.Ensure(ctx, sub, provision.EnsureOptions{})
	if err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	if !isNew {
		t.Error("second Ensure did not report that it created the account")
	}
	assertOneStoredUser(t, f)
}

func TestQuotaExceededLeavesNothingBehind(t *testing.T) {
	f := newFixture(t, 1)
	ctx := context.Background()
	if _, _, err := f.svc.Ensure(ctx, "other-user", provision.EnsureOptions{}); err != nil {
		t.Fatal(err)
	}
	_, _, err := f.svc.Ensure(ctx, sub, provision.EnsureOptions{})
	if !errors.Is(err, provision.ErrQuotaExceeded) {
		t.Fatalf("err = %v, want quota", err)
	}
	if _, err := f.accounts.Get(ctx, sub); !errors.Is(err, provision.ErrNotProvisioned) {
		t.Fatalf("record left behind: %v", err)
	}
	uid, _ := userid.FromSub(sub)
	for _, id := range f.sim.UserIDs() {
		if id == uid {
			t.Fatal("Kandy user left behind")
		}
	}
}

func TestInvalidCountryCode(t *testing.T) {
	f := newFixture(t, 5)
	if _, _, err := f.svc.Ensure(context.Background(), sub, provision.EnsureOptions{CountryCode: "usa"}); !errors.Is(err, provision.ErrInvalidCountryCode) {
		t.Fatalf("err = %v", err)
	}
	if n := f.sim.Calls(kandysim.EndpointCreateUser); n != 0 {
		t.Fatalf("Kandy called %d times for a bad country code", n)
	}
}

func TestGetTokenDelete(t *testing.T) {
	f := newFixture(t, 5)
	ctx := context.Background()
	if _, err := f.svc.Get(ctx, sub); !errors.Is(err, provision.ErrNotProvisioned) {
		t.Fatalf("Get before Ensure = %v", err)
	}
	if _, err := f.svc.UserToken(ctx, sub); !errors.Is(err, provision.ErrNotProvisioned) {
		t.Fatalf("UserToken before Ensure = %v", err)
	}
	created, _, err := f.svc.Ensure(ctx, sub, provision.EnsureOptions{CountryCode: "+44"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.svc.Get(ctx, sub)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got != created {
		t.Errorf("Get\n got %+v\nwant %+v", got, created)
	}
	tok, err := f.svc.UserToken(ctx, sub)
	if err != nil {
		t.Fatalf("UserToken: %v", err)
	}
	if len(tok) < 4 || tok[:3] != "UAT" {
		t.Errorf("UserToken = %q, want UAT and at least one more character", tok)
	}
	if err := deleted(f.svc, ctx, sub); err != nil {
		t.Fatal(err)
	}
	if ids := f.sim.UserIDs(); len(ids) != 0 {
		t.Fatalf("Kandy users after delete: %v", ids)
	}
	if err := deleted(f.svc, ctx, sub); !errors.Is(err, provision.ErrNotProvisioned) {
		t.Fatalf("second Delete = %v", err)
	}
	if _, _, err := f.svc.Ensure(ctx, sub, provision.EnsureOptions{}); !errors.Is(err, provision.ErrAccountDeleted) {
		t.Fatalf("automatic Ensure after Delete = %v, want ErrAccountDeleted", err)
	}
	_, isNew, err := f.svc.Ensure(ctx, sub, provision.EnsureOptions{ByUser: true})
	if err != nil {
		t.Fatalf("the user's own Ensure after Delete: %v", err)
	}
	if !isNew {
		t.Error("the user's own Ensure after Delete did not report that it created the account")
	}
	assertOneStoredUser(t, f)
}

// A Delete that failed after Kandy deleted the user is finished by a retry.
func TestDeleteRetryAfterPartialFailure(t *testing.T) {
	f := newFixture(t, 5)
	ctx := context.Background()
	if _, _, err := f.svc.Ensure(ctx, sub, provision.EnsureOptions{}); err != nil {
		t.Fatal(err)
	}
	uid, _ := userid.FromSub(sub)
	if err := f.kandy.DeleteUser(ctx, uid); err != nil {
		t.Fatal(err)
	}
	if err := deleted(f.svc, ctx, sub); err != nil {
		t.Fatalf("Delete with the Kandy user already gone = %v", err)
	}
	rec, err := f.accounts.Get(ctx, sub)
	if err != nil {
		t.Fatalf("after the delete: %v; want a tombstone", err)
	}
	if rec.Status != provision.StatusDeleted {
		t.Errorf("after the delete: status %q, want a tombstone, %q", rec.Status, provision.StatusDeleted)
	}
}

func assertOneStoredUser(t *testing.T, f *fixture) provision.Record {
	t.Helper()
	ctx := context.Background()
	rec, err := f.accounts.Get(ctx, sub)
	if err != nil {
		t.Fatalf("stored: %v", err)
	}
	if rec.Status != provision.StatusActive {
		t.Fatalf("stored status %q, want %q", rec.Status, provision.StatusActive)
	}
	if rec.UserPassword == "" {
		t.Fatal("stored no UserPassword")
	}
	if rec.UserAPISecret == "" {
		t.Fatal("stored no UserAPISecret")
	}
	users, err := f.kandy.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var matches int
	for _, u := range users {
		if u.UserID == rec.UserID {
			matches++
			if u.UserAPIKey != rec.UserAPIKey {
				t.Fatal("stored credentials are not the live Kandy user's")
			}
		}
	}
	if matches != 1 {
		t.Fatalf("Kandy users for %s = %d, want 1", rec.UserID, matches)
	}
	return rec
}

// The same contract as the in-memory store the domain's tests use.
func TestContract(t *testing.T) {
	accountstest.Contract(t, func(t *testing.T) provision.Accounts { return newAccounts(t) })
}

// Scan reads every record once, whichever segment holds it, and stops on
// the first error its callback returns.
func TestScan(t *testing.T) {
	ctx := context.Background()
	name := newTable(t)
	a := store.NewAccounts(db, name)
	now := time.Now()
	want := map[string]bool{}
	for i := 0; i < 40; i++ {
		s := fmt.Sprintf("scan-%02d", i)
		accountstest.Claimed(t, a, provision.Claim{Sub: s, UserID: "x" + s, Token: "t", Now: now, ExpiresAt: now.Add(time.Minute)})
		want[s] = true
	}
	for _, segments := range []int{0, 1, 3, 8} {
		got := map[string]int{}
		err := store.Scan(ctx, db, name, segments, func(r provision.Record) error {
			got[r.Sub]++
			if r.Status != provision.StatusPending {
				t.Errorf("scanned %s: status %q, want %q", r.Sub, r.Status, provision.StatusPending)
			}
			if r.ClaimToken != "t" {
				t.Errorf("scanned %s: claim token %q, want %q", r.Sub, r.ClaimToken, "t")
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%d segments: %v", segments, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%d segments: %d records, want %d", segments, len(got), len(want))
		}
		for s, n := range got {
			if !want[s] {
				t.Fatalf("%d segments: read %s, which was never written", segments, s)
			}
			if n != 1 {
				t.Fatalf("%d segments: %s read %d times, want once", segments, s, n)
			}
		}
	}
	stop := errors.New("enough")
	n := 0
	err := store.Scan(ctx, db, name, 4, func(provision.Record) error { n++; return stop })
	if !errors.Is(err, stop) {
		t.Errorf("a failing callback: Scan = %v, want %v", err, stop)
	}
	if n > 4 {
		t.Errorf("a failing callback: called for %d records, want at most 4, one per segment", n)
	}
	if err := store.Scan(ctx, db, "no-such-table", 2, func(provision.Record) error { return nil }); err == nil {
		t.Fatal("scanning a missing table succeeded")
	}
}

// deleted is Service.Delete as the API answers it: no account to delete
// is ErrNotProvisioned.
func deleted(s *provision.Service, ctx context.Context, sub string) error {
	had, err := s.Delete(ctx, sub)
	if err == nil && !had {
		return provision.ErrNotProvisioned
	}
	return err
}
