package trigger

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/signupqueue"
)

// DeadLetters keeps messages that must not be retried, with a reason.
type DeadLetters interface {
	Send(ctx context.Context, m signupqueue.Message, reason provision.Code) error
	SendRaw(ctx context.Context, body string, reason provision.Code) error
}

// RetryWorker provisions the sign-ups the trigger could not finish.
type RetryWorker struct {
	svc  Ensurer
	dlq  DeadLetters
	log  *slog.Logger
	each time.Duration // budget per message
}

// NewRetryWorker builds the worker.
func NewRetryWorker(svc Ensurer, dlq DeadLetters, log *slog.Logger) *RetryWorker {
	return &RetryWorker{svc: svc, dlq: dlq, log: log, each: 8 * time.Second}
}

// Handle provisions each message. A transient failure is reported back to
// SQS as a batch item failure, so that message alone is received again
// after the visibility timeout, and after the redrive policy's bound goes to
// the dead-letter queue. A quota failure or a malformed message goes to
// the dead-letter queue at once, with its reason: retrying cannot help.
func (w *RetryWorker) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	for _, rec := range ev.Records {
		if !w.process(ctx, rec) {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
		}
	}
	return resp, nil
}

// process reports whether the message is done with.
func (w *RetryWorker) process(ctx context.Context, rec events.SQSMessage) bool {
	received, _ := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
	m, err := signupqueue.Decode(rec.Body)
	if err != nil {
		w.log.ErrorContext(ctx, "retry: malformed message sent to the dead-letter queue", "message_id", rec.MessageId)
		return w.deadLetter(ctx, rec.MessageId, func(c context.Context) error { return w.dlq.SendRaw(c, rec.Body, provision.CodeOf(err)) })
	}
	m.Attempt = max(m.Attempt, received)
	mctx, cancel := context.WithTimeout(ctx, w.each)
	_, created, err := w.svc.Ensure(mctx, m.Sub, provision.EnsureOptions{})
	cancel()
	switch {
	case err == nil:
		w.log.InfoContext(ctx, "retry: provisioned", "sub", m.Sub, "created", created, "attempt", m.Attempt)
		return true
	case errors.Is(err, provision.ErrQuotaExceeded):
		w.log.ErrorContext(ctx, "retry: Kandy quota exhausted; sent to the dead-letter queue", "sub", m.Sub, "attempt", m.Attempt)
		return w.deadLetter(ctx, rec.MessageId, func(c context.Context) error { return w.dlq.Send(c, m, provision.CodeOf(err)) })
	default:
		w.log.WarnContext(ctx, "retry: will try again", "sub", m.Sub, "attempt", m.Attempt, "reason", provision.CodeOf(err), "err", err.Error())
		return false
	}
}

// deadLetter sends to the DLQ; if that fails the message stays to be retried.
func (w *RetryWorker) deadLetter(ctx context.Context, id string, send func(context.Context) error) bool {
	if err := send(ctx); err != nil {
		w.log.ErrorContext(ctx, "retry: dead-letter queue refused a message; it stays queued", "message_id", id, "err", err.Error())
		return false
	}
	return true
}
