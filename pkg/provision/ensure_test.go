package provision_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/memstore"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

func TestNew(t *testing.T) {
	if _, err := provision.New(memstore.New(), newKandy(), provision.Options{DefaultCountry: "usa"}); !errors.Is(err, provision.ErrInvalidCountryCode) {
		t.Fatalf("bad default country: %v", err)
	}
	s, err := provision.New(memstore.New(), newKandy(), provision.Options{})
	if err != nil {
		t.Fatalf("New with defaults: %v", err)
	}
	if s.ClaimMargin() <= 0 {
		t.Errorf("default claim margin %v, want > 0", s.ClaimMargin())
	}
	if s.ClaimTTL() <= s.ClaimMargin() {
		t.Errorf("default claim TTL %v, want more than the margin %v", s.ClaimTTL(), s.ClaimMargin())
	}
	w := newWorld(t)
	w.provisioned(t)
	if calls, want := w.kandy.callList(), []string{"create " + uid + " US"}; !slices.Equal(calls, want) {
		t.Fatalf("default country: Kandy calls %q, want %q", calls, want)
	}
}

func TestValidCountryCode(t *testing.T) {
	for c, want := range map[string]bool{"US": true, "GB": true, "AQ": true, "SS": true, "ZW": true, "AD": true,
		"+1": true, "+44": true, "+123": true, "+1234": false, "us": false, "USA": false, "": false, "+": false, "U1": false,
		" US": false, "XX": false, "ZZ": false, "AA": false, "UK": false, "D ": false, "D AE": false} {
		if provision.ValidCountryCode(c) != want {
			t.Errorf("ValidCountryCode(%q) != %v", c, want)
		}
	}
}

func TestEnsureCreatesOnceAndStoresTheCredentials(t *testing.T) {
	w := newWorld(t)
	a, created, err := w.svc.Ensure(context.Background(), sub, provision.EnsureOptions{CountryCode: "+44"})
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if !created {
		t.Error("Ensure did not report that it created the account")
	}
	if a.UserID != uid {
		t.Errorf("user_id %q, want %q", a.UserID, uid)
	}
	if a.FullUserID != uid+"@d" {
		t.Errorf("full_user_id %q, want %q", a.FullUserID, uid+"@d")
	}
	if a.DomainName != "d" {
		t.Errorf("domain_name %q, want %q", a.DomainName, "d")
	}
	if !a.CreatedAt.Equal(w.clock.Now()) {
		t.Errorf("created_at %v, want %v", a.CreatedAt, w.clock.Now())
	}
	rec, _ := w.record(t)
	issued := w.kandy.users[uid]
	if rec.Status != provision.StatusActive {
		t.Errorf("stored status %q, want %q", rec.Status, provision.StatusActive)
	}
	if rec.UserAPIKey != issued.UserAPIKey {
		t.Errorf("stored UserAPIKey %q, Kandy issued %q", rec.UserAPIKey, issued.UserAPIKey)
	}
	if rec.UserAPISecret != issued.UserAPISecret {
		t.Errorf("stored UserAPISecret %q, Kandy issued %q", rec.UserAPISecret, issued.UserAPISecret)
	}
	if rec.UserPassword != issued.UserPassword {
		t.Errorf("stored UserPassword %q, Kandy issued %q", rec.UserPassword, issued.UserPassword)
	}
	if rec.Generation == "" {
		t.Error("stored record has no generation")
	}
	again, created, err := w.svc.Ensure(context.Background(), sub, provision.EnsureOptions{})
	if err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	if created {
		t.Error("second Ensure reported that it created the account")
	}
	if again != a {
		t.Errorf("second Ensure\n got %+v\nwant %+v", again, a)
	}
	if calls, want := w.kandy.callList(), []string{"create " + uid + " +44"}; !slices.Equal(calls, want) {
		t.Fatalf("Kandy calls %q, want %q", calls, want)
	}
}

func TestEnsureRefusesBadInputBeforeAnyWrite(t *testing.T) {
	w := newWorld(t)
	_, _, err := w.svc.Ensure(context.Background(), sub, provision.EnsureOptions{CountryCode: "usa"})
	wantCode(t, "bad country", err, provision.CodeInvalidRequest)
	_, _, err = w.svc.Ensure(context.Background(), "", provision.EnsureOptions{})
	wantCode(t, "empty sub", err, provision.CodeUnauthorized)
	if rec, ok := w.record(t); ok {
		t.Errorf("a refused request stored a record: %+v", rec)
	}
	if calls := w.kandy.callList(); len(calls) != 0 {
		t.Errorf("a refused request called Kandy: %v", calls)
	}
}

func TestEnsureAnswersInProgressToLiveClaims(t *testing.T) {
	for _, status := range []provision.Status{provision.StatusPending, provision.StatusDeleting} {
		w := newWorld(t)
		w.claimed(status, time.Second)
		_, _, err := w.svc.Ensure(context.Background(), sub, provision.EnsureOptions{})
		wantCode(t, string(status), err, provision.CodeInProgress)
		if len(w.kandy.callList()) != 0 {
			t.Fatalf("%s: Kandy called under another's claim", status)
		}
	}
}

// An expired claim of a creation is taken over by anyone, an expired
// delete by the user's own request only, and a Kandy user left behind is
// deleted and created again.
func TestEnsureTakesOverExpiredClaims(t *testing.T) {
	for _, tt := range []struct {
		status provision.Status
		byUser bool
	}{{provision.StatusPending, false}, {provision.StatusPending, true}, {provision.StatusDeleting, true}} {
		status := tt.status
		w := newWorld(t)
		w.claimed(status, -time.Millisecond)
		w.kandy.users[uid] = provision.Credentials{UserAPIKey: "UAKorphan"}
		a, created, err := w.svc.Ensure(context.Background(), sub, provision.EnsureOptions{ByUser: tt.byUser})
		if err != nil {
			t.Fatalf("%s: Ensure: %v", status, err)
		}
		if !created {
			t.Errorf("%s: Ensure did not report that it created the account", status)
		}
		if a.UserID != uid {
			t.Errorf("%s: user_id %q, want %q", status, a.UserID, uid)
		}
		rec, _ := w.record(t)
		if rec.Status != provision.StatusActive {
			t.Errorf("%s: stored status %q, want %q", status, rec.Status, provision.StatusActive)
		}
		if rec.UserAPIKey == "UAKorphan" {
			t.Errorf("%s: stored the orphan's UserAPIKey", status)
		}
		if want := w.kandy.users[uid].UserAPIKey; rec.UserAPIKey != want {
			t.Errorf("%s: stored UserAPIKey %q, Kandy issued %q", status, rec.UserAPIKey, want)
		}
		if calls := strings.Join(w.kandy.callList(), ","); calls != "create "+uid+" US,delete "+uid+",create "+uid+" US" {
			t.Fatalf("%s: calls %s", status, calls)
		}
	}
}

// When Kandy surely created nothing, the record goes: an automatic path
// may provision the user later.
func TestEnsureDropsTheRecordWhenKandyRefused(t *testing.T) {
	for _, kerr := range []error{provision.ErrQuotaExceeded, provision.ErrKandyCredentialsRefused, provision.ErrInvalidCountryCode, provision.ErrUnavailable} {
		w := newWorld(t)
		w.kandy.createErr = []error{fmt.Errorf("create user: %w", kerr)}
		_, created, err := w.svc.Ensure(context.Background(), sub, provision.EnsureOptions{})
		if !errors.Is(err, kerr) {
			t.Fatalf("err = %v, want %v", err, kerr)
		}
		if created {
			t.Errorf("%v: Ensure reported that it created the account", kerr)
		}
		if rec, ok := w.record(t); ok {
			t.Fatalf("%v: the record stays: %+v", kerr, rec)
		}
	}
}

// After an ambiguous failure Kandy may have created the user, so the
// record stays as evidence with its claim ended: the next request takes it
// over at once, and a Get answers that there is no account.
func TestEnsureKeepsEvidenceAfterAnAmbiguousFailure(t *testing.T) {
	for _, kerr := range []error{provision.ErrKandyUnavailable, context.DeadlineExceeded, errors.New("connection reset")} {
		w := newWorld(t)
		w.kandy.createErr = []error{fmt.Errorf("create user: %w", kerr)}
		if _, _, err := w.svc.Ensure(context.Background(), sub, provision.EnsureOptions{}); !errors.Is(err, kerr) {
			t.Fatalf("err = %v, want %v", err, kerr)
		}
		rec, ok := w.record(t)
		if !ok {
			t.Fatalf("%v: no record kept; want PENDING evidence", kerr)
		}
		if rec.Status != provision.StatusPending {
			t.Errorf("%v: status %q, want %q", kerr, rec.Status, provision.StatusPending)
		}
		if rec.Held(w.clock.Now()) {
			t.Errorf("%v: the claim is still held (expires %v, now %v); want it ended", kerr, rec.ClaimExpiresAt, w.clock.Now())
		}
		_, err := w.svc.Get(context.Background(), sub)
		wantCode(t, "Get of evidence", err, provision.CodeNotProvisioned)
		_, created, err := w.svc.Ensure(context.Background(), sub, provision.EnsureOptions{})
		if err != nil {
			t.Fatalf("%v: the next Ensure: %v", kerr, err)
		}
		if !created {
			t.Errorf("%v: the next Ensure did not report that it created the account", kerr)
		}
	}
}

// A tombstone answers every automatic path with ErrAccountDeleted and
// calls no Kandy; the user's own request revives it with a new account.
func TestOnlyTheUserRevivesADeletedAccount(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.provisioned(t)
	if err := deleted(w.svc, ctx, sub); err != nil {
		t.Fatal(err)
	}
	calls := len(w.kandy.callList())
	_, created, err := w.svc.Ensure(ctx, sub, provision.EnsureOptions{})
	if !errors.Is(err, provision.ErrAccountDeleted) {
		t.Fatalf("automatic Ensure of a tombstone: err %v, want %v", err, provision.ErrAccountDeleted)
	}
	if created {
		t.Error("automatic Ensure of a tombstone reported that it created an account")
	}
	wantCode(t, "automatic Ensure of a tombstone", err, provision.CodeNotProvisioned)
	if len(w.kandy.callList()) != calls {
		t.Fatalf("Kandy called for a tombstone: %v", w.kandy.callList())
	}
	a, created, err := w.svc.Ensure(ctx, sub, provision.EnsureOptions{ByUser: true})
	if err != nil {
		t.Fatalf("the user's Ensure: %v", err)
	}
	if !created {
		t.Error("the user's Ensure did not report that it created the account")
	}
	if a.UserID != uid {
		t.Errorf("the user's Ensure: user_id %q, want %q", a.UserID, uid)
	}
	rec, _ := w.record(t)
	if rec.Status != provision.StatusActive {
		t.Errorf("after the revival: status %q, want %q", rec.Status, provision.StatusActive)
	}
	if want := w.kandy.users[uid].UserAPIKey; rec.UserAPIKey != want {
		t.Errorf("after the revival: stored UserAPIKey %q, Kandy issued %q", rec.UserAPIKey, want)
	}
	if len(w.kandy.users) != 1 {
		t.Errorf("after the revival: %d Kandy users %v, want 1", len(w.kandy.users), w.kandy.users)
	}
	// An abandoned delete is the user's wish too.
	w2 := newWorld(t)
	w2.claimed(provision.StatusDeleting, -time.Millisecond)
	_, _, err = w2.svc.Ensure(ctx, sub, provision.EnsureOptions{})
	if !errors.Is(err, provision.ErrAccountDeleted) {
		t.Fatalf("automatic Ensure of an abandoned delete = %v", err)
	}
}

func TestOrphanRecoveryFailures(t *testing.T) {
	w := newWorld(t)
	w.kandy.users[uid] = provision.Credentials{}
	w.kandy.deleteErr = provision.ErrKandyUnavailable
	_, _, err := w.svc.Ensure(context.Background(), sub, provision.EnsureOptions{})
	wantCode(t, "orphan delete fails", err, provision.CodeKandyUnavailable)
	rec, ok := w.record(t)
	if !ok {
		t.Error("after a failed recovery: no record; want it kept as evidence")
	} else if rec.Status != provision.StatusPending {
		t.Errorf("after a failed recovery: status %q, want %q", rec.Status, provision.StatusPending)
	}
	if calls := w.kandy.callList(); len(calls) != 2 {
		t.Errorf("after a failed recovery: Kandy calls %v, want 2", calls)
	}
	w2 := newWorld(t)
	w2.kandy.createErr = []error{provision.ErrKandyUserExists, provision.ErrKandyUserExists}
	_, _, err = w2.svc.Ensure(context.Background(), sub, provision.EnsureOptions{})
	wantCode(t, "exists twice", err, provision.CodeKandyUnavailable)
	if calls := strings.Join(w2.kandy.callList(), ","); calls != "create "+uid+" US,delete "+uid+",create "+uid+" US" {
		t.Fatalf("calls %s", calls)
	}
}

// Kandy is called only while the claim is surely held: its context ends
// a margin before the claim does.
func TestKandyIsCalledWithinTheClaim(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(time.Hour))
	defer cancel()
	if _, _, err := w.svc.Ensure(ctx, sub, provision.EnsureOptions{}); err != nil {
		t.Fatal(err)
	}
	dl, _ := ctx.Deadline()
	if got := w.kandy.deadlines[0]; got.IsZero() {
		t.Error("create was called with no deadline")
	} else if got.After(dl) {
		t.Errorf("create's deadline %v is after the caller's %v", got, dl)
	}
	w2 := newWorld(t)
	if _, _, err := w2.svc.Ensure(context.Background(), sub, provision.EnsureOptions{}); err != nil {
		t.Fatal(err)
	}
	want := w2.clock.Now().Add(w2.svc.ClaimTTL() - w2.svc.ClaimMargin())
	if got := w2.kandy.deadlines[0]; !got.Equal(want) {
		t.Fatalf("without a caller's deadline, create's deadline is %v, want %v", got, want)
	}
}

func TestEnsureOutcomesAreCounted(t *testing.T) {
	m := &countingMetrics{}
	w := newWorld(t, func(o *provision.Options) { o.Metrics = m })
	ctx := context.Background()
	for _, s := range []string{sub, sub, "s2", sub} {
		if _, _, err := w.svc.Ensure(ctx, s, provision.EnsureOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	w.kandy.createErr = []error{provision.ErrQuotaExceeded}
	if _, _, err := w.svc.Ensure(ctx, "s3", provision.EnsureOptions{}); !errors.Is(err, provision.ErrQuotaExceeded) {
		t.Fatal(err)
	}
	w.kandy.createErr = []error{provision.ErrKandyUnavailable}
	if _, _, err := w.svc.Ensure(ctx, "s4", provision.EnsureOptions{}); err == nil {
		t.Fatal("Kandy down accepted")
	}
	if m.created != 2 {
		t.Errorf("counted %d created, want 2", m.created)
	}
	if m.present != 2 {
		t.Errorf("counted %d already present, want 2", m.present)
	}
	if m.quota != 1 {
		t.Errorf("counted %d quota exceeded, want 1", m.quota)
	}
	if len(m.dependencies) != 0 {
		t.Errorf("counted dependency failures %v, want none", m.dependencies)
	}
}

type countingMetrics struct {
	created, present, quota, rebuilt, refused int
	dependencies                              []string
}

func (m *countingMetrics) AccountRebuilt(context.Context)     { m.rebuilt++ }
func (m *countingMetrics) CredentialsRefused(context.Context) { m.refused++ }

func (m *countingMetrics) UserCreated(context.Context)        { m.created++ }
func (m *countingMetrics) UserAlreadyPresent(context.Context) { m.present++ }
func (m *countingMetrics) QuotaExceeded(context.Context)      { m.quota++ }
func (m *countingMetrics) DependencyFailed(_ context.Context, d string) {
	m.dependencies = append(m.dependencies, d)
}

// failingStore fails every read and write as a dependency that is down.
type failingStore struct{ *memstore.Accounts }

var dynamoDown = &provision.DependencyError{Dependency: "dynamodb", Err: errors.New("ThrottlingException")}

func (failingStore) Get(context.Context, string) (provision.Record, error) {
	return provision.Record{}, dynamoDown
}
func (failingStore) Claim(context.Context, provision.Claim) (provision.Record, bool, error) {
	return provision.Record{}, false, dynamoDown
}

// Every operation that fails because an AWS dependency did answers
// unavailable, and counts once, by the dependency.
func TestDependencyFailuresAreCountedOnce(t *testing.T) {
	m := &countingMetrics{}
	s := serviceOver(t, failingStore{memstore.New()}, newKandy(), func(o *provision.Options) { o.Metrics = m })
	ctx := context.Background()
	_, _, err := s.Ensure(ctx, sub, provision.EnsureOptions{})
	wantCode(t, "Ensure", err, provision.CodeUnavailable)
	_, err = s.Get(ctx, sub)
	wantCode(t, "Get", err, provision.CodeUnavailable)
	_, err = s.UserToken(ctx, sub)
	wantCode(t, "UserToken", err, provision.CodeUnavailable)
	wantCode(t, "Delete", deleted(s, ctx, sub), provision.CodeUnavailable)
	wantCode(t, "Deprovision", s.Deprovision(ctx, sub), provision.CodeUnavailable)
	if fmt.Sprint(m.dependencies) != "[dynamodb dynamodb dynamodb dynamodb dynamodb]" {
		t.Fatalf("counted %v", m.dependencies)
	}
}

// BenchmarkEnsureNew measures the domain's own cost of creating an account:
// ids, claim, finalize, with in-memory adapters.
func BenchmarkEnsureNew(b *testing.B) {
	w := newWorld(b)
	ctx := context.Background()
	subs := make([]string, b.N)
	for i := range subs {
		subs[i] = fmt.Sprintf("0f8fad5b-d9cb-469f-a165-%012d", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := w.svc.Ensure(ctx, subs[i], provision.EnsureOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnsureExisting measures a repeated POST /users.
func BenchmarkEnsureExisting(b *testing.B) {
	w := newWorld(b)
	w.provisioned(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, created, err := w.svc.Ensure(ctx, sub, provision.EnsureOptions{}); err != nil || created {
			b.Fatal(created, err)
		}
	}
}

// releaseFailing cannot end a claim; the claim is left to expire.
type releaseFailing struct{ *memstore.Accounts }

func (releaseFailing) Release(context.Context, provision.Claim) error {
	return errors.New("dynamodb: timeout")
}

func TestAClaimThatCannotBeEndedIsLogged(t *testing.T) {
	var logs strings.Builder
	k := newKandy()
	k.createErr = []error{provision.ErrKandyUnavailable, provision.ErrKandyUnavailable}
	s := serviceOver(t, releaseFailing{memstore.New()}, k, func(o *provision.Options) { o.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	_, _, _ = s.Ensure(context.Background(), sub, provision.EnsureOptions{})
	if !strings.Contains(logs.String(), "ending the claim failed") {
		t.Fatalf("logs:\n%s", logs.String())
	}
	logs.Reset()
	good := serviceOver(t, memstore.New(), k, func(o *provision.Options) { o.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	_, _, _ = good.Ensure(context.Background(), sub, provision.EnsureOptions{})
	if strings.Contains(logs.String(), "ending the claim failed") {
		t.Fatalf("a released claim is logged as failed:\n%s", logs.String())
	}
}

// A service built with no logger logs to the default one.
func TestNoLoggerGiven(t *testing.T) {
	k := newKandy()
	k.users[uid] = provision.Credentials{}
	s, err := provision.New(memstore.New(), k, provision.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, created, err := s.Ensure(context.Background(), sub, provision.EnsureOptions{})
	if err != nil {
		t.Fatalf("orphan recovery, which logs: %v", err)
	}
	if !created {
		t.Error("orphan recovery did not report that it created the account")
	}
}

// A user's POST /users that loses its claim to a delete whose claim
// expires while the POST is answered is told to retry, never that the
// account is deleted: the answer is judged at the instant the store
// judged the claim.
func TestEnsureByUserIsJudgedAtItsClaimsInstant(t *testing.T) {
	start := time.Now().Truncate(time.Millisecond)
	var reads atomic.Int32
	// The first reading of the clock is the claim's; every later one is
	// past the delete's claim.
	now := func() time.Time {
		if reads.Add(1) == 1 {
			return start
		}
		return start.Add(time.Second)
	}
	w := newWorld(t, func(o *provision.Options) { o.Now = now })
	w.store.Put(provision.Record{Sub: sub, UserID: uid, Status: provision.StatusDeleting, ClaimToken: "held", Generation: "held",
		ClaimExpiresAt: start.Add(time.Millisecond), CreatedAt: start, UpdatedAt: start})
	_, _, err := w.svc.Ensure(context.Background(), sub, provision.EnsureOptions{ByUser: true})
	wantCode(t, "POST /users as a delete's claim expires", err, provision.CodeInProgress)
}
