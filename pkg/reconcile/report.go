package reconcile

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// DriftRecorder publishes a reconcile's counts: the drift by class, and
// apart from it the users who deleted their account.
type DriftRecorder interface {
	Drift(ctx context.Context, class string, n int)
	Deleted(ctx context.Context, n int)
}

// Reporter is the scheduled reconcile: it compares, logs and publishes the
// counts of each class. It never repairs; an operator does, with the
// tool, after reading what it found.
type Reporter struct {
	src   Sources
	drift DriftRecorder
	log   *slog.Logger
}

// NewReporter builds the scheduled reconcile.
func NewReporter(src Sources, drift DriftRecorder, log *slog.Logger) *Reporter {
	return &Reporter{src: src, drift: drift, log: log}
}

// maxLogged bounds the items logged by name; the rest are counted.
const maxLogged = 100

// Handle runs one comparison for a scheduled event.
func (r *Reporter) Handle(ctx context.Context, _ events.EventBridgeEvent) error {
	rep, err := Compare(ctx, r.src, time.Now())
	if err != nil {
		r.log.ErrorContext(ctx, "reconcile: comparison failed", "err", err.Error())
		return err
	}
	attrs := []any{"cognito_users", rep.CognitoUsers, "records", rep.Records, "kandy_users", rep.KandyUsers,
		"in_agreement", rep.InAgreement, "in_progress", rep.InProgress, "foreign", len(rep.Foreign)}
	for _, c := range Classes {
		if c.IsDrift() {
			r.drift.Drift(ctx, string(c), rep.Count(c))
		} else {
			r.drift.Deleted(ctx, rep.Count(c))
		}
		attrs = append(attrs, string(c), rep.Count(c))
	}
	r.log.InfoContext(ctx, "reconcile: report", attrs...)
	logged := 0
	for _, it := range rep.Items {
		if !it.Class.IsDrift() {
			continue
		}
		if logged == maxLogged {
			r.log.InfoContext(ctx, "reconcile: more drift not listed")
			break
		}
		logged++
		r.log.InfoContext(ctx, "reconcile: drift", "class", it.Class, "sub", it.Sub, "user_id", it.UserID, "why", it.Why)
	}
	return nil
}
