package trigger

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
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
		out, herr := New(f, quiet, 0, nil).Handle(context.Background(), json.RawMessage(signUp))
		if herr != nil || string(out) != signUp || f.calls != 1 {
			t.Fatalf("err %v: out %s, %v, calls %d", err, out, herr, f.calls)
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
		{`{"triggerSource":"PostConfirmation_ConfirmSignUp","request":{"userAttributes":{}}}`, nil, OutcomeInvalidSent, 0},
		{`{"triggerSource":"PostConfirmation_ConfirmSignUp","request":{"userAttributes":{"sub":7}}}`, nil, OutcomeInvalidSent, 0},
		{`[]`, nil, OutcomeInvalidSent, 0},
	}
	for _, tt := range tests {
		f := &fakeEnsurer{err: tt.err}
		if got := New(f, quiet, 0, nil).Process(context.Background(), json.RawMessage(tt.event)); got != tt.want || f.calls != tt.calls {
			t.Errorf("%s: outcome %s calls %d, want %s %d", tt.event, got, f.calls, tt.want, tt.calls)
		}
	}
}

func TestBudgetIsBoundedByTheLambdaDeadline(t *testing.T) {
	f := &fakeEnsurer{}
	p := New(f, quiet, 4*time.Second, nil)
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
