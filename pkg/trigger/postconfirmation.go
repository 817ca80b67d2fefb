// Package trigger handles the Cognito post-confirmation trigger.
package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/signupqueue"
)

// SourceConfirmSignUp is the only trigger source that provisions.
// ConfirmForgotPassword fires on every password reset and must not.
const SourceConfirmSignUp = "PostConfirmation_ConfirmSignUp"

// NoDeadlineBudget bounds an invocation that has no deadline (a direct
// call). Deployed, the limit is the Lambda deadline: the function's 4 s
// timeout in template.yaml, inside Cognito's 5 s, less the margin.
const NoDeadlineBudget = 4 * time.Second

// RetryDelay is how long a sign-up the trigger queued stays hidden: Kandy
// has just failed it, so a retry at once would most likely fail too.
const RetryDelay = 2 * time.Second

// Ensurer is what the trigger needs of the domain.
type Ensurer interface {
	Ensure(ctx context.Context, sub string, o provision.EnsureOptions) (provision.Account, bool, error)
}

// Retrier takes a failed sign-up for a later attempt.
type Retrier interface {
	Send(ctx context.Context, m signupqueue.Message, reason provision.Code) error
}

// DeletedCounter counts the users an automatic path left alone because
// they had deleted their account (metrics.Recorder).
type DeletedCounter interface {
	AccountDeleted(ctx context.Context, path string)
}

// PostConfirmation provisions a user when Cognito confirms its sign-up.
type PostConfirmation struct {
	svc Ensurer
	// deleted, if set, counts the sign-ups of deleted accounts.
	deleted DeletedCounter
	log     *slog.Logger
	retry   Retrier // nil: failures are only logged
	budget  time.Duration
	// margin is kept free before the Lambda deadline to answer Cognito.
	margin time.Duration
}

// New builds the trigger handler; budget <= 0 means NoDeadlineBudget. The
// Lambda deadline, less a margin, bounds it too. With a
// retry queue, a failed sign-up is sent there, so it cannot be lost.
// deleted, if not nil, counts the sign-ups of deleted accounts.
func New(svc Ensurer, log *slog.Logger, budget time.Duration, retry Retrier, deleted DeletedCounter) *PostConfirmation {
	if budget <= 0 {
		budget = NoDeadlineBudget
	}
	p := &PostConfirmation{svc: svc, deleted: deleted, log: log, retry: retry, budget: budget, margin: 300 * time.Millisecond}
	if retry != nil {
		// Keep time to enqueue before Cognito's limit.
		p.margin = time.Second
	}
	return p
}

// Outcome says what one invocation did, for logs and tests.
type Outcome string

const (
	OutcomeIgnored      Outcome = "ignored"
	OutcomeCreated      Outcome = "created"
	OutcomeExisting     Outcome = "already_provisioned"
	OutcomeFailed       Outcome = "failed"
	OutcomeInvalidEvent Outcome = "invalid_event"
	// OutcomeAccountDeleted: the user deleted their account; only their
	// own POST /users provisions them again.
	OutcomeAccountDeleted Outcome = "account_deleted"
)

// Handle returns the event exactly as it came, whatever happens: a failed
// trigger would block a sign-up that Cognito cannot re-run. The raw form is
// kept because a typed round trip would drop fields it does not know.
func (p *PostConfirmation) Handle(ctx context.Context, raw json.RawMessage) (json.RawMessage, error) {
	p.Process(ctx, raw)
	return raw, nil
}

// Process does the work of Handle and reports what it did.
func (p *PostConfirmation) Process(ctx context.Context, raw json.RawMessage) Outcome {
	var ev events.CognitoEventUserPoolsPostConfirmation
	if err := json.Unmarshal(raw, &ev); err != nil {
		p.log.ErrorContext(ctx, "post-confirmation: event is not a Cognito event")
		return OutcomeInvalidEvent
	}
	if ev.TriggerSource != SourceConfirmSignUp {
		p.log.InfoContext(ctx, "post-confirmation: nothing to do", "trigger_source", ev.TriggerSource)
		return OutcomeIgnored
	}
	sub := ev.Request.UserAttributes["sub"]
	if sub == "" {
		p.log.ErrorContext(ctx, "post-confirmation: event has no sub attribute", "user_pool_id", ev.UserPoolID)
		return OutcomeInvalidEvent
	}
	ctx, cancel := p.budgetContext(ctx)
	defer cancel()
	start := time.Now()
	_, created, err := p.svc.Ensure(ctx, sub, provision.EnsureOptions{})
	attrs := []any{"sub", sub, "user_pool_id", ev.UserPoolID, "duration_ms", time.Since(start).Milliseconds()}
	switch {
	case errors.Is(err, provision.ErrAccountDeleted):
		p.log.InfoContext(ctx, "post-confirmation: not provisioned: the user deleted their account", attrs...)
		if p.deleted != nil {
			p.deleted.AccountDeleted(ctx, "trigger")
		}
		return OutcomeAccountDeleted
	case err != nil:
		p.log.ErrorContext(ctx, "post-confirmation: provisioning failed; the user can be provisioned later",
			append(attrs, "reason", provision.CodeOf(err), "err", err.Error())...)
		p.enqueue(ctx, signupqueue.Message{Sub: sub, UserPoolID: ev.UserPoolID, Attempt: 1}, provision.CodeOf(err))
		return OutcomeFailed
	case created:
		p.log.InfoContext(ctx, "post-confirmation: Kandy account created", attrs...)
		return OutcomeCreated
	default:
		p.log.InfoContext(ctx, "post-confirmation: already provisioned", attrs...)
		return OutcomeExisting
	}
}

// enqueue hands a failed sign-up to the retry queue, in the time left
// before the Lambda deadline.
func (p *PostConfirmation) enqueue(ctx context.Context, m signupqueue.Message, why provision.Code) {
	if p.retry == nil {
		return
	}
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.margin-100*time.Millisecond)
	defer cancel()
	if err := p.retry.Send(qctx, m, why); err != nil {
		p.log.ErrorContext(ctx, "post-confirmation: the retry queue refused the sign-up; provision it with POST /users or a backfill",
			"sub", m.Sub, "err", err.Error())
		return
	}
	p.log.InfoContext(ctx, "post-confirmation: sign-up queued for retry", "sub", m.Sub, "reason", why)
}

// budgetContext ends at the budget or just before the Lambda deadline,
// whichever comes first.
func (p *PostConfirmation) budgetContext(ctx context.Context) (context.Context, context.CancelFunc) {
	end := time.Now().Add(p.budget)
	if dl, ok := ctx.Deadline(); ok && dl.Add(-p.margin).Before(end) {
		end = dl.Add(-p.margin)
	}
	return context.WithDeadline(ctx, end)
}
