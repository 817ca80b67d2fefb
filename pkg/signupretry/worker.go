// Package signupretry provisions, from the SQS retry queue, the sign-ups
// the post-confirmation trigger could not finish, backing off per receive.
package signupretry

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/signupqueue"
)

// Ensurer is what the worker needs of the domain.
type Ensurer interface {
	Ensure(ctx context.Context, sub string, o provision.EnsureOptions) (provision.Account, bool, error)
}

// DeletedCounter counts the users left alone because they had deleted
// their account (metrics.Recorder).
type DeletedCounter interface {
	AccountDeleted(ctx context.Context, path string)
}

// DeadLetters keeps messages that must not be retried, with a reason.
type DeadLetters interface {
	Send(ctx context.Context, m signupqueue.Message, reason provision.Code) error
	SendRaw(ctx context.Context, body string, reason provision.Code) error
}

// Rescheduler hides a received message of the retry queue until its next
// try.
type Rescheduler interface {
	// VisibilityTimeout is the queue's: no delay is longer.
	VisibilityTimeout(ctx context.Context) (time.Duration, error)
	ShowAfter(ctx context.Context, receiptHandle string, delay time.Duration) error
}

// Worker provisions the sign-ups the trigger could not finish.
type Worker struct {
	svc Ensurer
	// deleted, if set, counts the messages of deleted accounts.
	deleted DeletedCounter
	dlq     DeadLetters
	log     *slog.Logger
	// later, if set, reschedules a failed message by backoff; random
	// draws its jitter.
	later   Rescheduler
	backoff Backoff
	random  func() float64
	// concurrency bounds the messages of one batch handled at once.
	concurrency int
	// each bounds one message's provisioning, within the invocation's.
	each time.Duration
	// margin is kept free before the Lambda deadline to answer it.
	margin time.Duration
	// fallback is the budget of an invocation with no deadline.
	fallback time.Duration
}

// New builds the worker. With later, it backs off: a message it could not
// finish comes back after DefaultBackoff's delay for its receive count,
// not after the queue's whole visibility timeout. deleted, if not nil,
// counts the messages of deleted accounts.
func New(svc Ensurer, dlq DeadLetters, later Rescheduler, log *slog.Logger, deleted DeletedCounter) *Worker {
	return &Worker{svc: svc, deleted: deleted, dlq: dlq, later: later, log: log, concurrency: 5, each: 8 * time.Second,
		margin: time.Second, fallback: 30 * time.Second, backoff: DefaultBackoff, random: rand.Float64}
}

// Handle provisions a batch, several messages at once, and answers before
// the invocation's deadline whatever Kandy does. A transient failure is
// reported back to SQS as a batch item failure, so that message alone is
// received again after its backoff delay (see New), and after
// the redrive policy's bound goes to the dead-letter queue. A message not finished by
// the deadline, or never started, is reported the same way. A quota
// failure or a malformed message goes to the dead-letter queue at once,
// with its reason: retrying cannot help.
func (w *Worker) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	end, ok := ctx.Deadline()
	if !ok {
		end = time.Now().Add(w.fallback)
	}
	wctx, cancel := context.WithDeadline(ctx, end.Add(-w.margin))
	defer cancel()
	var mu sync.Mutex
	done := make([]bool, len(ev.Records))
	sem := make(chan struct{}, w.concurrency)
	var wg sync.WaitGroup
	for i, rec := range ev.Records {
		select {
		case sem <- struct{}{}:
		case <-wctx.Done():
		}
		if wctx.Err() != nil {
			break // the rest are reported, not started
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			ok := w.process(wctx, rec)
			mu.Lock()
			done[i] = ok
			mu.Unlock()
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	// A message still working past the deadline is left to finish on its
	// own; it is reported now, and SQS brings it back.
	select {
	case <-finished:
	case <-time.After(time.Until(end.Add(-w.margin / 2))):
	}
	var resp events.SQSEventResponse
	mu.Lock()
	defer mu.Unlock()
	for i, rec := range ev.Records {
		if !done[i] {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
		}
	}
	return resp, nil
}

// process reports whether the message is done with.
func (w *Worker) process(ctx context.Context, rec events.SQSMessage) bool {
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
	case errors.Is(err, provision.ErrAccountDeleted):
		w.log.InfoContext(ctx, "retry: not provisioned: the user deleted their account; message consumed", "sub", m.Sub, "attempt", m.Attempt)
		if w.deleted != nil {
			w.deleted.AccountDeleted(ctx, "retry")
		}
		return true
	case errors.Is(err, provision.ErrQuotaExceeded):
		w.log.ErrorContext(ctx, "retry: Kandy quota exhausted; sent to the dead-letter queue", "sub", m.Sub, "attempt", m.Attempt)
		return w.deadLetter(ctx, rec.MessageId, func(c context.Context) error { return w.dlq.Send(c, m, provision.CodeOf(err)) })
	default:
		w.retryLater(ctx, rec, received, []any{"sub", m.Sub, "attempt", m.Attempt, "reason", provision.CodeOf(err), "err", err.Error()})
		return false
	}
}

// retryLater hides the message for its backoff delay and logs so. If that
// fails, SQS brings the message back after the queue's visibility timeout.
func (w *Worker) retryLater(ctx context.Context, rec events.SQSMessage, received int, attrs []any) {
	if w.later == nil {
		w.log.WarnContext(ctx, "retry: will try again", attrs...)
		return
	}
	// The attempt may have used up ctx; half the margin is still ours.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.margin/2)
	defer cancel()
	limit, err := w.later.VisibilityTimeout(rctx)
	if err == nil {
		delay := w.backoff.Delay(received, limit, w.random())
		if err = w.later.ShowAfter(rctx, rec.ReceiptHandle, delay); err == nil {
			w.log.WarnContext(ctx, "retry: will try again", append(attrs, "retry_in_s", int(delay.Seconds()))...)
			return
		}
	}
	w.log.WarnContext(ctx, "retry: will try again after the queue's visibility timeout; rescheduling failed",
		append(attrs, "reschedule_err", err.Error())...)
}

// deadLetter sends to the DLQ; if that fails the message stays to be retried.
func (w *Worker) deadLetter(ctx context.Context, id string, send func(context.Context) error) bool {
	if err := send(ctx); err != nil {
		w.log.ErrorContext(ctx, "retry: dead-letter queue refused a message; it stays queued", "message_id", id, "err", err.Error())
		return false
	}
	return true
}
