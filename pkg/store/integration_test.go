package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/kandy-provisioner/kandy-provisioner/internal/local/kandysim"
	"github.com/kandy-provisioner/kandy-provisioner/internal/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/accountstest"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/kandy"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/store"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/userid"
)

var db *dynamodb.Client

func TestMain(m *testing.M) {
	p, err := processes.StartDynalite(0, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration tests need dynalite:", err)
		os.Exit(1)
	}
	db = processes.DynamoDB("http://" + p.Addr)
	code := m.Run()
	p.Stop()
	os.Exit(code)
}

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
	if _, ok, err := a.Claim(ctx, c1); err != nil || !ok {
		t.Fatalf("first claim = %v, %v", ok, err)
	}
	existing, ok, err := a.Claim(ctx, claim("t2", now, now.Add(time.Minute)))
	if err != nil || ok || existing.Status != provision.StatusPending || existing.ClaimToken != "t1" {
		t.Fatalf("second claim = %+v, %v, %v", existing, ok, err)
	}
	creds := provision.Credentials{FullUserID: "u@d", DomainName: "d", UserAPIKey: "UAK1", UserAPISecret: "UAS1", UserPassword: "pw"}
	if _, err := a.Finalize(ctx, claim("t2", now, now), creds); !errors.Is(err, provision.ErrClaimLost) {
		t.Fatalf("finalize with another token = %v", err)
	}
	rec, err := a.Finalize(ctx, c1, creds)
	if err != nil || rec.Status != provision.StatusActive || rec.UserAPISecret != "UAS1" || rec.UserPassword != "pw" || rec.ClaimToken != "" {
		t.Fatalf("finalize = %+v, %v", rec, err)
	}
	got, err := a.Get(ctx, sub)
	if err != nil || got.Status != provision.StatusActive || got.FullUserID != "u@d" || got.CreatedAt.IsZero() {
		t.Fatalf("get = %+v, %v", got, err)
	}
	existing, ok, err = a.Claim(ctx, claim("t3", now.Add(time.Hour), now.Add(2*time.Hour)))
	if err != nil || ok || existing.Status != provision.StatusActive {
		t.Fatalf("claim over ACTIVE = %+v, %v, %v", existing, ok, err)
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
	if _, ok, err := a.Claim(ctx, old); err != nil || !ok {
		t.Fatal(ok, err)
	}
	fresh := claim("new", now, now.Add(time.Minute))
	if _, ok, err := a.Claim(ctx, fresh); err != nil || !ok {
		t.Fatalf("take-over = %v, %v", ok, err)
	}
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
	if created.Load() != 1 || created.Load()+existing.Load()+inProgress.Load() != 50 {
		t.Fatalf("created=%d existing=%d in-progress=%d", created.Load(), existing.Load(), inProgress.Load())
	}
	if n := f.sim.Calls(kandysim.EndpointCreateUser); n != 1 {
		t.Fatalf("Kandy creates = %d, want 1", n)
	}
	acc, isNew, err := f.svc.Ensure(context.Background(), sub, provision.EnsureOptions{})
	if err != nil || isNew || acc.UserID != "u0f8fad5bd9cb469fa16570867728950e" {
		t.Fatalf("later Ensure = %+v, %v, %v", acc, isNew, err)
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
	if _, ok, err := f.accounts.Claim(ctx, c); err != nil || !ok {
		t.Fatal(ok, err)
	}
	orphan, err := f.kandy.CreateUser(ctx, c.UserID, "US")
	if err != nil {
		t.Fatal(err)
	}
	acc, isNew, err := f.svc.Ensure(ctx, sub, provision.EnsureOptions{})
	if err != nil || !isNew || acc.UserID != c.UserID {
		t.Fatalf("Ensure = %+v, %v, %v", acc, isNew, err)
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
	if rec, err := f.accounts.Get(ctx, sub); err != nil || rec.Status != provision.StatusPending || rec.Held(time.Now()) {
		t.Fatalf("after the lost answer: %+v, %v; want PENDING evidence, its claim ended", rec, err)
	}
	if _, isNew, err := f.svc.Ensure(ctx, sub, provision.EnsureOptions{}); err != nil || !isNew {
		t.Fatalf("second Ensure = %v, %v", isNew, err)
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
	if err != nil || got != created {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, created)
	}
	tok, err := f.svc.UserToken(ctx, sub)
	if err != nil || len(tok) < 4 || tok[:3] != "UAT" {
		t.Fatalf("UserToken = %q, %v", tok, err)
	}
	if err := f.svc.Delete(ctx, sub); err != nil {
		t.Fatal(err)
	}
	if ids := f.sim.UserIDs(); len(ids) != 0 {
		t.Fatalf("Kandy users after delete: %v", ids)
	}
	if err := f.svc.Delete(ctx, sub); !errors.Is(err, provision.ErrNotProvisioned) {
		t.Fatalf("second Delete = %v", err)
	}
	if _, _, err := f.svc.Ensure(ctx, sub, provision.EnsureOptions{}); !errors.Is(err, provision.ErrAccountDeleted) {
		t.Fatalf("automatic Ensure after Delete = %v, want ErrAccountDeleted", err)
	}
	if _, isNew, err := f.svc.Ensure(ctx, sub, provision.EnsureOptions{ByUser: true}); err != nil || !isNew {
		t.Fatalf("the user's own Ensure after Delete = %v, %v", isNew, err)
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
	if err := f.svc.Delete(ctx, sub); err != nil {
		t.Fatalf("Delete with the Kandy user already gone = %v", err)
	}
	if rec, err := f.accounts.Get(ctx, sub); err != nil || rec.Status != provision.StatusDeleted {
		t.Fatalf("after the delete: %+v, %v; want a tombstone", rec, err)
	}
}

func assertOneStoredUser(t *testing.T, f *fixture) provision.Record {
	t.Helper()
	ctx := context.Background()
	rec, err := f.accounts.Get(ctx, sub)
	if err != nil || rec.Status != provision.StatusActive || rec.UserPassword == "" || rec.UserAPISecret == "" {
		t.Fatalf("stored = %+v, %v", rec, err)
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
		if _, ok, err := a.Claim(ctx, provision.Claim{Sub: s, UserID: "x" + s, Token: "t", Now: now, ExpiresAt: now.Add(time.Minute)}); err != nil || !ok {
			t.Fatal(ok, err)
		}
		want[s] = true
	}
	for _, segments := range []int{0, 1, 3, 8} {
		got := map[string]int{}
		err := store.Scan(ctx, db, name, segments, func(r provision.Record) error {
			got[r.Sub]++
			if r.Status != provision.StatusPending || r.ClaimToken != "t" {
				t.Errorf("scanned %+v", r)
			}
			return nil
		})
		if err != nil || len(got) != len(want) {
			t.Fatalf("%d segments: %d records, %v", segments, len(got), err)
		}
		for s, n := range got {
			if !want[s] || n != 1 {
				t.Fatalf("%d segments: %s read %d times", segments, s, n)
			}
		}
	}
	stop := errors.New("enough")
	n := 0
	if err := store.Scan(ctx, db, name, 4, func(provision.Record) error { n++; return stop }); !errors.Is(err, stop) || n > 4 {
		t.Fatalf("a failing callback: %v after %d records", err, n)
	}
	if err := store.Scan(ctx, db, "no-such-table", 2, func(provision.Record) error { return nil }); err == nil {
		t.Fatal("scanning a missing table succeeded")
	}
}
