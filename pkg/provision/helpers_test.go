package provision_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/memstore"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/userid"
)

const sub = "0f8fad5b-d9cb-469f-a165-70867728950e"

var uid, _ = userid.FromSub(sub)

// fakeKandy is a Kandy with a user table and a switch per failure; it
// records every call and the deadline it was made under.
type fakeKandy struct {
	mu        sync.Mutex
	users     map[string]provision.Credentials
	createErr []error // taken one per create, before the create is done
	deleteErr error
	tokenErr  []error
	calls     []string
	deadlines []time.Time
}

func newKandy() *fakeKandy { return &fakeKandy{users: map[string]provision.Credentials{}} }

func (k *fakeKandy) note(ctx context.Context, call string) {
	k.calls = append(k.calls, call)
	dl, _ := ctx.Deadline()
	k.deadlines = append(k.deadlines, dl)
}

func (k *fakeKandy) CreateUser(ctx context.Context, id, country string) (provision.Credentials, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.note(ctx, "create "+id+" "+country)
	if len(k.createErr) > 0 {
		err := k.createErr[0]
		k.createErr = k.createErr[1:]
		if err != nil {
			return provision.Credentials{}, err
		}
	}
	if _, ok := k.users[id]; ok {
		return provision.Credentials{}, fmt.Errorf("create user: %w", provision.ErrKandyUserExists)
	}
	n := len(k.calls)
	c := provision.Credentials{FullUserID: id + "@d", DomainName: "d", UserAPIKey: fmt.Sprintf("UAK%d", n),
		UserAPISecret: fmt.Sprintf("UAS%d", n), UserPassword: fmt.Sprintf("pw%d", n)}
	k.users[id] = c
	return c, nil
}

func (k *fakeKandy) DeleteUser(ctx context.Context, id string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.note(ctx, "delete "+id)
	if k.deleteErr != nil {
		return k.deleteErr
	}
	if _, ok := k.users[id]; !ok {
		return fmt.Errorf("delete user: %w", provision.ErrKandyNoSuchUser)
	}
	delete(k.users, id)
	return nil
}

func (k *fakeKandy) UserAccessToken(ctx context.Context, id string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.note(ctx, "token "+id)
	if len(k.tokenErr) > 0 {
		err := k.tokenErr[0]
		k.tokenErr = k.tokenErr[1:]
		return "", err
	}
	if _, ok := k.users[id]; !ok {
		return "", fmt.Errorf("user token: %w", provision.ErrKandyNoSuchUser)
	}
	return "UAT" + id, nil
}

func (k *fakeKandy) callList() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.calls...)
}

// clock is a settable time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// world is a service over an in-memory store, a fake Kandy and a clock.
type world struct {
	svc   *provision.Service
	store *memstore.Accounts
	kandy *fakeKandy
	clock *clock
}

func newWorld(t testing.TB, opts ...func(*provision.Options)) *world {
	t.Helper()
	w := &world{store: memstore.New(), kandy: newKandy(), clock: &clock{now: time.Now().Truncate(time.Millisecond)}}
	o := provision.Options{Logger: quiet, Now: w.clock.Now}
	for _, f := range opts {
		f(&o)
	}
	svc, err := provision.New(w.store, w.kandy, o)
	if err != nil {
		t.Fatal(err)
	}
	w.svc = svc
	return w
}

// record reads the stored record; ok is false when there is none.
func (w *world) record(t testing.TB) (provision.Record, bool) {
	t.Helper()
	rec, err := w.store.Get(context.Background(), sub)
	if errors.Is(err, provision.ErrNotProvisioned) {
		return provision.Record{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return rec, true
}

// provisioned makes sub ACTIVE.
func (w *world) provisioned(t testing.TB) provision.Account {
	t.Helper()
	a, created, err := w.svc.Ensure(context.Background(), sub, provision.EnsureOptions{})
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if !created {
		t.Fatal("Ensure did not report that it created the account")
	}
	return a
}

// claimed stores a record of status under a claim that expires in ttl.
func (w *world) claimed(status provision.Status, ttl time.Duration) provision.Record {
	rec := provision.Record{Sub: sub, UserID: uid, Status: status, ClaimToken: "held", Generation: "held",
		ClaimExpiresAt: w.clock.Now().Add(ttl), CreatedAt: w.clock.Now(), UpdatedAt: w.clock.Now()}
	w.store.Put(rec)
	return rec
}

func wantCode(t *testing.T, what string, err error, want provision.Code) {
	t.Helper()
	if got := provision.CodeOf(err); got != want {
		t.Fatalf("%s: err %v is %q, want %q", what, err, got, want)
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
