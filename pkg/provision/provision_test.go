package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// memAccounts is an in-memory Accounts with DynamoDB's conditions.
type memAccounts struct {
	mu   sync.Mutex
	recs map[string]Record
}

func newMem() *memAccounts { return &memAccounts{recs: map[string]Record{}} }

func (m *memAccounts) Claim(_ context.Context, c Claim) (Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.recs[c.Sub]; ok && !(r.Status == StatusPending && r.ClaimExpiresAt.Before(c.Now)) {
		return r, false, nil
	}
	m.recs[c.Sub] = Record{Sub: c.Sub, UserID: c.UserID, Status: StatusPending, ClaimToken: c.Token, ClaimExpiresAt: c.ExpiresAt, CreatedAt: c.Now}
	return Record{}, true, nil
}

func (m *memAccounts) Finalize(_ context.Context, c Claim, cr Credentials) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[c.Sub]
	if !ok || r.Status != StatusPending || r.ClaimToken != c.Token {
		return Record{}, ErrClaimLost
	}
	r.Status, r.ClaimToken, r.FullUserID, r.DomainName = StatusActive, "", cr.FullUserID, cr.DomainName
	r.UserAPIKey, r.UserAPISecret, r.UserPassword, r.CreatedAt = cr.UserAPIKey, cr.UserAPISecret, cr.UserPassword, c.Now
	m.recs[c.Sub] = r
	return r, nil
}

func (m *memAccounts) Release(_ context.Context, c Claim) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.recs[c.Sub]; !ok || r.ClaimToken != c.Token {
		return ErrClaimLost
	}
	delete(m.recs, c.Sub)
	return nil
}

func (m *memAccounts) Get(_ context.Context, sub string) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[sub]
	if !ok {
		return Record{}, ErrNotProvisioned
	}
	return r, nil
}

func (m *memAccounts) DeleteActive(_ context.Context, sub, userID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.recs[sub]; !ok || r.Status != StatusActive || r.UserID != userID {
		return ErrClaimLost
	}
	delete(m.recs, sub)
	return nil
}

// fakeKandy is a func-per-operation fake.
type fakeKandy struct {
	create func(userID string) (Credentials, error)
	del    func(string) error
}

func (f fakeKandy) CreateUser(_ context.Context, userID, _ string) (Credentials, error) {
	return f.create(userID)
}
func (f fakeKandy) DeleteUser(_ context.Context, id string) error { return f.del(id) }
func (f fakeKandy) UserAccessToken(context.Context, string) (string, error) {
	return "UATx", nil
}

func okCreate(userID string) (Credentials, error) {
	return Credentials{UserPassword: "p4ss12", FullUserID: userID + "@d", DomainName: "d", UserAPIKey: "UAK", UserAPISecret: "UAS"}, nil
}

func newService(t testing.TB, acc Accounts, k Kandy) *Service {
	s, err := New(acc, k, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewRejectsBadDefaultCountry(t *testing.T) {
	if _, err := New(newMem(), fakeKandy{}, Options{DefaultCountry: "usa"}); !errors.Is(err, ErrInvalidCountryCode) {
		t.Fatalf("err = %v", err)
	}
}

func TestClaimExpiryFollowsTheDeadline(t *testing.T) {
	s := newService(t, newMem(), fakeKandy{})
	now := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), now.Add(3*time.Second))
	defer cancel()
	if got := s.claimExpiry(ctx, now); !got.Equal(now.Add(3*time.Second + s.claimMargin)) {
		t.Fatalf("expiry = %v", got.Sub(now))
	}
	if got := s.claimExpiry(context.Background(), now); !got.Equal(now.Add(s.claimTTL)) || s.claimTTL <= 0 {
		t.Fatalf("expiry without deadline = %v", got.Sub(now))
	}
}

func TestFinalizeRetriesTransientFailures(t *testing.T) {
	acc := &flakyFinalize{memAccounts: newMem(), fails: 2}
	s := newService(t, acc, fakeKandy{create: okCreate})
	if _, created, err := s.Ensure(context.Background(), "s1", EnsureOptions{}); err != nil || !created {
		t.Fatalf("Ensure = %v, %v", created, err)
	}
	if acc.calls != 3 {
		t.Fatalf("finalize calls = %d, want 3", acc.calls)
	}
}

func TestSecondCreateFailureAfterOrphanIsReported(t *testing.T) {
	calls := 0
	s := newService(t, newMem(), fakeKandy{
		create: func(string) (Credentials, error) {
			calls++
			return Credentials{}, fmt.Errorf("create user: %w", ErrKandyUserExists)
		},
		del: func(string) error { return nil },
	})
	_, _, err := s.Ensure(context.Background(), "s1", EnsureOptions{})
	if CodeOf(err) != CodeKandyUnavailable || calls != 2 {
		t.Fatalf("err = %v after %d creates", err, calls)
	}
	if _, err := s.accounts.Get(context.Background(), "s1"); !errors.Is(err, ErrNotProvisioned) {
		t.Fatalf("claim left behind: %v", err)
	}
}

type flakyFinalize struct {
	*memAccounts
	fails, calls int
}

func (f *flakyFinalize) Finalize(ctx context.Context, c Claim, cr Credentials) (Record, error) {
	f.calls++
	if f.calls <= f.fails {
		return Record{}, errors.New("throttled")
	}
	return f.memAccounts.Finalize(ctx, c, cr)
}

// BenchmarkEnsureNew measures the domain's own cost of creating an account:
// ids, claim, finalize, with in-memory adapters.
func BenchmarkEnsureNew(b *testing.B) {
	s := newService(b, newMem(), fakeKandy{create: okCreate})
	ctx := context.Background()
	subs := make([]string, b.N)
	for i := range subs {
		subs[i] = "0f8fad5b-d9cb-469f-a165-" + string(rune('a'+i%26)) + time.Duration(i).String()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := s.Ensure(ctx, subs[i], EnsureOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnsureExisting measures a repeated POST /users.
func BenchmarkEnsureExisting(b *testing.B) {
	s := newService(b, newMem(), fakeKandy{create: okCreate})
	ctx := context.Background()
	const sub = "0f8fad5b-d9cb-469f-a165-70867728950e"
	if _, _, err := s.Ensure(ctx, sub, EnsureOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, created, err := s.Ensure(ctx, sub, EnsureOptions{}); err != nil || created {
			b.Fatal(created, err)
		}
	}
}

type sealerFunc func(ctx context.Context, sub string, c Credentials) (Credentials, error)

func (f sealerFunc) Seal(ctx context.Context, sub string, c Credentials) (Credentials, error) {
	return f(ctx, sub, c)
}

func TestCredentialsAreSealedBeforeTheyAreStored(t *testing.T) {
	mem := newMem()
	calls := 0
	s, err := New(mem, fakeKandy{create: okCreate}, Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Sealer: sealerFunc(func(_ context.Context, sub string, c Credentials) (Credentials, error) {
			calls++
			if calls == 1 {
				return Credentials{}, errors.New("kms throttled")
			}
			c.UserPassword, c.UserAPISecret = "sealed:"+sub, "sealed:"+sub
			return c, nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, created, err := s.Ensure(context.Background(), "s1", EnsureOptions{}); err != nil || !created {
		t.Fatalf("Ensure = %v, %v", created, err)
	}
	rec, _ := mem.Get(context.Background(), "s1")
	if rec.UserPassword != "sealed:s1" || rec.UserAPISecret != "sealed:s1" || calls != 2 {
		t.Fatalf("stored %q/%q after %d seals", rec.UserPassword, rec.UserAPISecret, calls)
	}
}

// lostAnswers applies a write, then reports the failure a retry sees when
// the first answer was lost.
type lostAnswers struct {
	*memAccounts
	claim, finalize bool
}

func (l *lostAnswers) Claim(ctx context.Context, c Claim) (Record, bool, error) {
	r, ok, err := l.memAccounts.Claim(ctx, c)
	if l.claim && ok {
		l.claim = false
		return l.memAccounts.Claim(ctx, c) // the SDK's retry of the same request
	}
	return r, ok, err
}

func (l *lostAnswers) Finalize(ctx context.Context, c Claim, cr Credentials) (Record, error) {
	r, err := l.memAccounts.Finalize(ctx, c, cr)
	if l.finalize && err == nil {
		l.finalize = false
		return l.memAccounts.Finalize(ctx, c, cr)
	}
	return r, err
}

func TestLostAnswersFromTheStoreAreRecognised(t *testing.T) {
	for _, tt := range []struct{ claim, finalize bool }{{true, false}, {false, true}, {true, true}} {
		acc := &lostAnswers{memAccounts: newMem(), claim: tt.claim, finalize: tt.finalize}
		s := newService(t, acc, fakeKandy{create: okCreate})
		acct, created, err := s.Ensure(context.Background(), "s1", EnsureOptions{})
		if err != nil || !created || acct.UserID == "" {
			t.Fatalf("lost claim answer %v, lost finalize answer %v: Ensure = %+v, %v, %v", tt.claim, tt.finalize, acct, created, err)
		}
	}
}

type countingMetrics struct{ created, present, quota int }

func (m *countingMetrics) UserCreated(context.Context)        { m.created++ }
func (m *countingMetrics) UserAlreadyPresent(context.Context) { m.present++ }
func (m *countingMetrics) QuotaExceeded(context.Context)      { m.quota++ }

func TestEnsureOutcomesAreCounted(t *testing.T) {
	m := &countingMetrics{}
	quota := false
	s, err := New(newMem(), fakeKandy{create: func(id string) (Credentials, error) {
		if quota {
			return Credentials{}, fmt.Errorf("create user: %w", ErrQuotaExceeded)
		}
		return okCreate(id)
	}}, Options{Metrics: m, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, sub := range []string{"s1", "s1", "s2", "s1"} {
		if _, _, err := s.Ensure(ctx, sub, EnsureOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	quota = true
	if _, _, err := s.Ensure(ctx, "s3", EnsureOptions{}); !errors.Is(err, ErrQuotaExceeded) {
		t.Fatal(err)
	}
	if _, _, err := s.Ensure(ctx, "s4", EnsureOptions{CountryCode: "nope"}); err == nil {
		t.Fatal("bad country accepted")
	}
	if *m != (countingMetrics{created: 2, present: 2, quota: 1}) {
		t.Fatalf("counted %+v", *m)
	}
}
