package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/signupqueue"
)

type fakeEnsurer struct {
	calls    int
	err      error
	deadline time.Time
}

func (f *fakeEnsurer) Ensure(ctx context.Context, _ string, _ provision.EnsureOptions) (provision.Account, bool, error) {
	f.calls++
	f.deadline, _ = ctx.Deadline()
	return provision.Account{}, f.err == nil, f.err
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const signUp = `{"version":"1","triggerSource":"PostConfirmation_ConfirmSignUp","userPoolId":"p","userName":"n",
 "request":{"userAttributes":{"sub":"s1","email":"a@b.c"},"clientMetadata":{"k":"v"}},"response":{},"unknownField":[1,2]}`

func TestHandleReturnsTheEventUntouched(t *testing.T) {
	for _, err := range []error{nil, provision.ErrQuotaExceeded, provision.ErrKandyUnavailable} {
		f := &fakeEnsurer{err: err}
		out, herr := New(f, quiet, 0, nil, nil).Handle(context.Background(), json.RawMessage(signUp))
		if herr != nil {
			t.Fatalf("err %v: Handle: %v", err, herr)
		}
		if string(out) != signUp {
			t.Errorf("err %v: event changed:\n got %s\nwant %s", err, out, signUp)
		}
		if f.calls != 1 {
			t.Errorf("err %v: %d Ensure calls, want 1", err, f.calls)
		}
	}
}

func TestOutcomes(t *testing.T) {
	tests := []struct {
		event string
		err   error
		want  Outcome
		calls int
	}{
		{signUp, nil, OutcomeCreated, 1},
		{signUp, provision.ErrInProgress, OutcomeFailed, 1},
		{`{"triggerSource":"PostConfirmation_ConfirmForgotPassword","request":{"userAttributes":{"sub":"s1"}}}`, nil, OutcomeIgnored, 0},
		{`{"triggerSource":"PostConfirmation_ConfirmSignUp","request":{"userAttributes":{}}}`, nil, OutcomeInvalidEvent, 0},
		{`{"triggerSource":"PostConfirmation_ConfirmSignUp","request":{"userAttributes":{"sub":7}}}`, nil, OutcomeInvalidEvent, 0},
		{`[]`, nil, OutcomeInvalidEvent, 0},
	}
	for _, tt := range tests {
		f := &fakeEnsurer{err: tt.err}
		if got := New(f, quiet, 0, nil, nil).Process(context.Background(), json.RawMessage(tt.event)); got != tt.want {
			t.Errorf("%s: outcome %s, want %s", tt.event, got, tt.want)
		}
		if f.calls != tt.calls {
			t.Errorf("%s: %d Ensure calls, want %d", tt.event, f.calls, tt.calls)
		}
	}
}

func TestBudgetIsBoundedByTheLambdaDeadline(t *testing.T) {
	f := &fakeEnsurer{}
	p := New(f, quiet, 4*time.Second, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	p.Process(ctx, json.RawMessage(signUp))
	lambdaDL, _ := ctx.Deadline()
	if !f.deadline.Before(lambdaDL) || lambdaDL.Sub(f.deadline) < 200*time.Millisecond {
		t.Fatalf("Ensure deadline %v, Lambda deadline %v: want a margin before it", f.deadline, lambdaDL)
	}
	p.Process(context.Background(), json.RawMessage(signUp))
	if d := time.Until(f.deadline); d > 4*time.Second || d < 3*time.Second {
		t.Fatalf("without a Lambda deadline the budget is %v, want about 4s", d)
	}
}

// The budget: the one given, else NoDeadlineBudget; and a margin before the
// Lambda deadline, wider when a retry queue must still be reached.
func TestBudgetAndMargin(t *testing.T) {
	remaining := func(p *PostConfirmation, f *fakeEnsurer, lambda time.Duration) time.Duration {
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if lambda > 0 {
			ctx, cancel = context.WithTimeout(ctx, lambda)
		}
		defer cancel()
		start := time.Now()
		p.Process(ctx, json.RawMessage(signUp))
		return f.deadline.Sub(start)
	}
	near := func(got, want time.Duration) bool {
		return got > want-150*time.Millisecond && got < want+50*time.Millisecond
	}
	for _, tt := range []struct {
		budget, lambda time.Duration
		retry          bool
		want           time.Duration
	}{
		{0, 0, false, NoDeadlineBudget},
		{time.Second, 0, false, time.Second},
		{2 * time.Second, 2100 * time.Millisecond, false, 1800 * time.Millisecond},
		{4 * time.Second, 3 * time.Second, true, 2 * time.Second},
		{4 * time.Second, 3 * time.Second, false, 2700 * time.Millisecond},
	} {
		f := &fakeEnsurer{}
		var r Retrier
		if tt.retry {
			r = &fakeRetrier{}
		}
		if got := remaining(New(f, quiet, tt.budget, r, nil), f, tt.lambda); !near(got, tt.want) {
			t.Errorf("budget %v, Lambda deadline %v, retry %v: Ensure had %v, want %v", tt.budget, tt.lambda, tt.retry, got, tt.want)
		}
	}
}

// deadlineRetrier records the time it was given to enqueue.
type deadlineRetrier struct{ left time.Duration }

func (d *deadlineRetrier) Send(ctx context.Context, _ signupqueue.Message, _ provision.Code) error {
	dl, _ := ctx.Deadline()
	d.left = time.Until(dl)
	return nil
}

// The enqueue has the margin, less what answering Cognito takes, even when
// provisioning used its whole budget.
func TestEnqueueHasTheMargin(t *testing.T) {
	r := &deadlineRetrier{}
	p := New(&fakeEnsurer{err: provision.ErrKandyUnavailable}, quiet, 0, r, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.Process(ctx, json.RawMessage(signUp))
	if r.left > 900*time.Millisecond || r.left < 800*time.Millisecond {
		t.Fatalf("the enqueue had %v, want the 1 s margin less 100 ms", r.left)
	}
}

// A failure is logged with its reason, and with the retry queue's refusal
// when the queue refuses it.
func TestFailuresAreLoggedWithTheirReason(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	New(&fakeEnsurer{err: provision.ErrQuotaExceeded}, log, 0, &failingRetrier{}, nil).Process(context.Background(), json.RawMessage(signUp))
	for _, want := range []string{`"reason":"kandy_quota_exceeded"`, "the retry queue refused the sign-up"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), "queued for retry") {
		t.Errorf("a refused sign-up is logged as queued:\n%s", logs.String())
	}
}

type failingRetrier struct{}

func (failingRetrier) Send(context.Context, signupqueue.Message, provision.Code) error {
	return errors.New("AccessDenied")
}

type fakeRetrier struct{ reasons []string }

func (f *fakeRetrier) Send(_ context.Context, m signupqueue.Message, reason provision.Code) error {
	if m.Sub != "s1" || m.Attempt != 1 || m.UserPoolID != "p" {
		return errors.New("unexpected message")
	}
	f.reasons = append(f.reasons, string(reason))
	return nil
}

func TestTriggerQueuesFailedSignUps(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want []string
	}{
		{nil, nil},
		{provision.ErrKandyUnavailable, []string{"kandy_unavailable"}},
		{provision.ErrInProgress, []string{"provisioning_in_progress"}},
		{provision.ErrQuotaExceeded, []string{"kandy_quota_exceeded"}},
	} {
		r := &fakeRetrier{}
		out, _ := New(&fakeEnsurer{err: tt.err}, quiet, 0, r, nil).Handle(context.Background(), []byte(signUp))
		if string(out) != signUp {
			t.Errorf("err %v: event changed:\n got %s\nwant %s", tt.err, out, signUp)
		}
		if !slices.Equal(r.reasons, tt.want) {
			t.Errorf("err %v: queued %v, want %v", tt.err, r.reasons, tt.want)
		}
	}
}

// hanging is an Ensurer whose calls last until their context ends, as
// when Kandy does not answer; it counts calls in flight at once.

type deletedCounts map[string]int

func (d deletedCounts) AccountDeleted(_ context.Context, path string) { d[path]++ }

// A sign-up of a deleted account is not queued, and is counted.
func TestTriggerLeavesDeletedAccounts(t *testing.T) {
	r := &fakeRetrier{}
	counts := deletedCounts{}
	p := New(&fakeEnsurer{err: provision.ErrAccountDeleted}, quiet, 0, r, counts)
	if got := p.Process(context.Background(), []byte(signUp)); got != OutcomeAccountDeleted {
		t.Fatalf("outcome %s", got)
	}
	if len(r.reasons) != 0 {
		t.Errorf("queued %v, want nothing", r.reasons)
	}
	if counts["trigger"] != 1 {
		t.Errorf("counts %v, want trigger: 1", counts)
	}
}
