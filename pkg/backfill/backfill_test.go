package backfill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/userpool"
)

// pool pages its users as Cognito does, with opaque tokens.
type pool struct {
	users []ciptypes.UserType
	calls []string // the token of each call
}

func newPool(n int, status func(i int) ciptypes.UserStatusType) *pool {
	p := &pool{}
	for i := 0; i < n; i++ {
		p.users = append(p.users, ciptypes.UserType{
			Username:   aws.String(fmt.Sprintf("user%d", i)),
			UserStatus: status(i),
			Attributes: []ciptypes.AttributeType{{Name: aws.String("email"), Value: aws.String("x@example.com")}, {Name: aws.String("sub"), Value: aws.String(fmt.Sprintf("sub-%04d", i))}},
		})
	}
	return p
}

func confirmed(int) ciptypes.UserStatusType { return ciptypes.UserStatusTypeConfirmed }

func (p *pool) ListUsers(_ context.Context, in *cip.ListUsersInput, _ ...func(*cip.Options)) (*cip.ListUsersOutput, error) {
	tok := aws.ToString(in.PaginationToken)
	p.calls = append(p.calls, tok)
	if in.Filter != nil || aws.ToInt32(in.Limit) != userpool.PageSize {
		return nil, errors.New("unexpected request")
	}
	start := 0
	if tok != "" {
		n, err := strconv.Atoi(tok[len("page-"):])
		if err != nil {
			return nil, errors.New("bad token")
		}
		start = n
	}
	end := min(start+userpool.PageSize, len(p.users))
	out := &cip.ListUsersOutput{Users: p.users[start:end]}
	if end < len(p.users) {
		out.PaginationToken = aws.String(fmt.Sprintf("page-%d", end))
	}
	return out, nil
}

// accounts is an in-memory provisioning service.
type accounts struct {
	mu       sync.Mutex
	have     map[string]bool
	deleted  map[string]bool // tombstones: Get and Ensure say so
	ensures  atomic.Int32
	inFlight atomic.Int32
	maxSeen  atomic.Int32
	fail     func(sub string) error
}

func newAccounts() *accounts { return &accounts{have: map[string]bool{}, deleted: map[string]bool{}} }

func (a *accounts) Get(_ context.Context, sub string) (provision.Account, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.have[sub] {
		return provision.Account{UserID: sub}, nil
	}
	if a.deleted[sub] {
		return provision.Account{}, provision.ErrAccountDeleted
	}
	return provision.Account{}, provision.ErrNotProvisioned
}

func (a *accounts) Ensure(ctx context.Context, sub string, _ provision.EnsureOptions) (provision.Account, bool, error) {
	a.ensures.Add(1)
	n := a.inFlight.Add(1)
	defer a.inFlight.Add(-1)
	for {
		m := a.maxSeen.Load()
		if n <= m || a.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(time.Millisecond)
	if err := ctx.Err(); err != nil {
		return provision.Account{}, false, err // abandoned halfway, as the real store would be
	}
	if a.fail != nil {
		if err := a.fail(sub); err != nil {
			return provision.Account{}, false, err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.have[sub] {
		return provision.Account{UserID: sub}, false, nil
	}
	if a.deleted[sub] {
		return provision.Account{}, false, provision.ErrAccountDeleted
	}
	a.have[sub] = true
	return provision.Account{UserID: sub}, true, nil
}

// wantN reports a count that is not the one wanted.
func wantN(t *testing.T, what string, got, want int) {
	t.Helper()
	if got != want {
		t.Errorf("%s %d, want %d", what, got, want)
	}
}

func TestRunWalksEveryPageOnce(t *testing.T) {
	p := newPool(200, func(i int) ciptypes.UserStatusType {
		if i%10 == 0 {
			return ciptypes.UserStatusTypeUnconfirmed
		}
		return ciptypes.UserStatusTypeConfirmed
	})
	acc := newAccounts()
	acc.have["sub-0001"] = true
	var checkpoints []string
	var inReport, reports, overlaps atomic.Int32
	s, err := Run(context.Background(), p, acc, Options{
		UserPoolID: "pool", Concurrency: 8,
		Checkpoint: func(next string) error { checkpoints = append(checkpoints, next); return nil },
		Progress: func(Summary) {
			if inReport.Add(1) > 1 {
				overlaps.Add(1)
			}
			time.Sleep(100 * time.Microsecond)
			reports.Add(1)
			inReport.Add(-1)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantN(t, "progress reports", int(reports.Load()), 200)
	wantN(t, "overlapping progress reports", int(overlaps.Load()), 0)
	wantN(t, "seen", s.Seen, 200)
	wantN(t, "created", s.Created, 179)
	wantN(t, "already present", s.AlreadyPresent, 1)
	wantN(t, "not confirmed", s.NotConfirmed, 20)
	if len(s.Failures) != 0 {
		t.Errorf("failures %+v, want none", s.Failures)
	}
	if s.Stopped != nil {
		t.Errorf("stopped: %v, want a full run", s.Stopped)
	}
	if got, want := fmt.Sprint(p.calls), "[ page-60 page-120 page-180]"; got != want {
		t.Errorf("pages asked %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(checkpoints), "[page-60 page-120 page-180 ]"; got != want {
		t.Errorf("checkpoints %s, want %s", got, want)
	}
	if acc.maxSeen.Load() > 8 {
		t.Fatalf("%d users at once, over the concurrency of 8", acc.maxSeen.Load())
	}
	// Idempotent: a second run creates nothing and calls Ensure for no one.
	before := acc.ensures.Load()
	s, err = Run(context.Background(), p, acc, Options{UserPoolID: "pool"})
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	wantN(t, "second run: created", s.Created, 0)
	wantN(t, "second run: already present", s.AlreadyPresent, 180)
	wantN(t, "second run: Ensure calls", int(acc.ensures.Load()-before), 0)
}

func TestResumeStartsAtTheCheckpoint(t *testing.T) {
	p := newPool(130, confirmed)
	acc := newAccounts()
	s, err := Run(context.Background(), p, acc, Options{UserPoolID: "pool", StartToken: "page-120"})
	if err != nil {
		t.Fatal(err)
	}
	wantN(t, "seen", s.Seen, 10)
	wantN(t, "created", s.Created, 10)
	if got := fmt.Sprint(p.calls); got != "[page-120]" {
		t.Errorf("pages asked %s, want [page-120]", got)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	p := newPool(70, confirmed)
	acc := newAccounts()
	acc.have["sub-0003"] = true
	s, err := Run(context.Background(), p, acc, Options{UserPoolID: "pool", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	wantN(t, "would create", s.WouldCreate, 69)
	wantN(t, "already present", s.AlreadyPresent, 1)
	wantN(t, "created", s.Created, 0)
	wantN(t, "Ensure calls", int(acc.ensures.Load()), 0)
}

// A user who deleted their account is never provisioned, in a dry run or
// not, whether the read or the Ensure finds the tombstone; each is logged.
func TestDeletedAccountsAreLeftAlone(t *testing.T) {
	p := newPool(20, confirmed)
	acc := newAccounts()
	acc.deleted["sub-0004"] = true
	acc.fail = func(sub string) error {
		if sub == "sub-0009" { // deleted between the read and the Ensure
			return fmt.Errorf("claiming: %w", provision.ErrAccountDeleted)
		}
		return nil
	}
	var logs strings.Builder
	s, err := Run(context.Background(), p, acc, Options{UserPoolID: "pool", Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	wantN(t, "deleted", s.Deleted, 2)
	wantN(t, "created", s.Created, 18)
	if len(s.Failures) != 0 {
		t.Errorf("failures %+v, want none", s.Failures)
	}
	for _, sub := range []string{"sub-0004", "sub-0009"} {
		if acc.have[sub] {
			t.Errorf("the deleted account %s was provisioned", sub)
		}
	}
	if n := strings.Count(logs.String(), "the user deleted their account"); n != 2 {
		t.Fatalf("%d log lines, want 2:\n%s", n, logs.String())
	}
	dry, err := Run(context.Background(), newPool(20, confirmed), newAccountsWithDeleted("sub-0004"), Options{UserPoolID: "pool", DryRun: true})
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	wantN(t, "dry run: deleted", dry.Deleted, 1)
	wantN(t, "dry run: would create", dry.WouldCreate, 19)
}

func newAccountsWithDeleted(subs ...string) *accounts {
	a := newAccounts()
	for _, s := range subs {
		a.deleted[s] = true
	}
	return a
}

func TestFailuresAreReportedAndTheRunGoesOn(t *testing.T) {
	p := newPool(50, confirmed)
	p.users[7].Attributes = nil
	acc := newAccounts()
	acc.fail = func(sub string) error {
		if sub == "sub-0011" {
			return fmt.Errorf("create user: %w", provision.ErrKandyUnavailable)
		}
		return nil
	}
	s, err := Run(context.Background(), p, acc, Options{UserPoolID: "pool"})
	if err != nil {
		t.Fatal(err)
	}
	wantN(t, "created", s.Created, 48)
	if len(s.Failures) != 2 {
		t.Errorf("failures %+v, want 2", s.Failures)
	}
	if s.Stopped != nil {
		t.Errorf("stopped: %v, want the run to go on", s.Stopped)
	}
	reasons := map[string]string{}
	for _, f := range s.Failures {
		reasons[f.Username] = f.Reason
	}
	for user, want := range map[string]string{"user7": "the user has no sub attribute", "user11": "create user: Kandy failed or timed out"} {
		if reasons[user] != want {
			t.Errorf("%s failed for %q, want %q", user, reasons[user], want)
		}
	}
}

func TestQuotaStopsTheRun(t *testing.T) {
	p := newPool(300, confirmed)
	acc := newAccounts()
	var created atomic.Int32
	acc.fail = func(string) error {
		if created.Add(1) > 25 {
			return fmt.Errorf("create user: %w", provision.ErrQuotaExceeded)
		}
		return nil
	}
	var checkpoints []string
	s, err := Run(context.Background(), p, acc, Options{UserPoolID: "pool", Concurrency: 4,
		Checkpoint: func(next string) error { checkpoints = append(checkpoints, next); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(s.Stopped, provision.ErrQuotaExceeded) {
		t.Errorf("stopped: %v, want %v", s.Stopped, provision.ErrQuotaExceeded)
	}
	wantN(t, "created", s.Created, 25)
	if n := len(s.Failures); n == 0 || n > 4 {
		t.Errorf("%d failures %+v, want 1 to 4, those in flight", n, s.Failures)
	}
	if len(checkpoints) != 0 {
		t.Errorf("a stopped page must not be checkpointed: %q", checkpoints)
	}
	if len(p.calls) != 1 {
		t.Errorf("pages asked %q, want only the first", p.calls)
	}
	for _, f := range s.Failures {
		if !strings.Contains(f.Reason, "user limit") {
			t.Fatalf("a user in flight when the run stopped was abandoned: %+v", f)
		}
	}
}

func TestRateLimitSpacesCallsToKandy(t *testing.T) {
	p := newPool(11, confirmed)
	acc := newAccounts()
	acc.have["sub-0000"] = true // already present: not rate limited
	start := time.Now()
	s, err := Run(context.Background(), p, acc, Options{UserPoolID: "pool", Concurrency: 10, Rate: 50})
	if err != nil {
		t.Fatal(err)
	}
	wantN(t, "created", s.Created, 10)
	// 10 calls at 50/s: the last starts 9 intervals after the first.
	if d := time.Since(start); d < 9*20*time.Millisecond {
		t.Fatalf("10 calls took %v at 50/s", d)
	}
}

func TestCancelledRunReportsWhatItDid(t *testing.T) {
	p := newPool(120, confirmed)
	acc := newAccounts()
	ctx, cancel := context.WithCancel(context.Background())
	acc.fail = func(sub string) error {
		if sub == "sub-0010" {
			cancel()
		}
		return nil
	}
	s, err := Run(ctx, p, acc, Options{UserPoolID: "pool", Concurrency: 1})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want %v", err, context.Canceled)
	}
	if s.Seen >= 120 {
		t.Errorf("seen %d, want fewer than 120: the run went on after the cancel", s.Seen)
	}
	if s.Created < 11 {
		t.Errorf("created %d, want 11 or more: the user in flight must be finished", s.Created)
	}
	if len(s.Failures) != 0 {
		t.Errorf("failures %+v, want none", s.Failures)
	}
}

func TestListErrorsAreReturned(t *testing.T) {
	_, err := Run(context.Background(), failingList{}, newAccounts(), Options{UserPoolID: "pool"})
	if !errors.Is(err, errThrottled) {
		t.Fatalf("err %v, want %v", err, errThrottled)
	}
	if _, err := Run(context.Background(), failingList{}, newAccounts(), Options{}); err == nil {
		t.Fatal("no pool id accepted")
	}
}

var errThrottled = errors.New("throttled")

type failingList struct{}

func (failingList) ListUsers(context.Context, *cip.ListUsersInput, ...func(*cip.Options)) (*cip.ListUsersOutput, error) {
	return nil, errThrottled
}
