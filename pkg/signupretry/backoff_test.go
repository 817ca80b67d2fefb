package signupretry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

func TestBackoffSchedule(t *testing.T) {
	const limit = 180 * time.Second
	longest := []int{5, 10, 20, 40, 80, 160, 180, 180, 180}
	shortest := []int{4, 8, 16, 32, 64, 128, 144, 144, 144}
	for i := range longest {
		receive := i + 1
		if got := DefaultBackoff.Longest(receive, limit); got != time.Duration(longest[i])*time.Second {
			t.Errorf("receive %d: longest delay %v, want %d s", receive, got, longest[i])
		}
		if got := DefaultBackoff.Shortest(receive, limit); got != time.Duration(shortest[i])*time.Second {
			t.Errorf("receive %d: shortest delay %v, want %d s", receive, got, shortest[i])
		}
	}
	if got := DefaultBackoff.Longest(1_000_000, limit); got != limit {
		t.Errorf("receive 1000000: %v, want the cap", got)
	}
}

func TestBackoffDelayIsWholeSecondsBetweenItsBounds(t *testing.T) {
	const limit = 180 * time.Second
	for receive := 0; receive <= 12; receive++ {
		n := max(receive, 1)
		lo, hi := DefaultBackoff.Shortest(n, limit), DefaultBackoff.Longest(n, limit)
		if got := DefaultBackoff.Delay(receive, limit, 0); got != lo {
			t.Errorf("receive %d, r=0: %v, want the shortest %v", receive, got, lo)
		}
		if got := DefaultBackoff.Delay(receive, limit, 0.99999); got != hi {
			t.Errorf("receive %d, r→1: %v, want the longest %v", receive, got, hi)
		}
		for r := 0.0; r < 1; r += 0.05 {
			d := DefaultBackoff.Delay(receive, limit, r)
			if d < lo || d > hi {
				t.Errorf("receive %d, r=%.2f: %v, want within [%v, %v]", receive, r, d, lo, hi)
			}
			if d%time.Second != 0 {
				t.Errorf("receive %d, r=%.2f: %v, want whole seconds", receive, r, d)
			}
		}
	}
}

func TestBackoffIsCappedAtTheVisibilityTimeout(t *testing.T) {
	for _, limit := range []time.Duration{0, time.Second, 2 * time.Second, 7 * time.Second, 30 * time.Second} {
		for receive := 1; receive <= 8; receive++ {
			if d := DefaultBackoff.Delay(receive, limit, 0.99999); d > limit {
				t.Errorf("visibility timeout %v, receive %d: delay %v", limit, receive, d)
			}
		}
	}
	if d := DefaultBackoff.Delay(3, 7*time.Second, 0.99999); d != 7*time.Second {
		t.Errorf("receive 3 (20 s) under a 7 s visibility timeout: %v, want 7 s", d)
	}
	if d := DefaultBackoff.Delay(1, 2*time.Second, 0); d != 2*time.Second {
		t.Errorf("receive 1 under a 2 s visibility timeout, r=0: %v, want 2 s (the jitter rounds up)", d)
	}
}

func TestBackoffWindow(t *testing.T) {
	if w := DefaultBackoff.Window(180*time.Second, 3); w != 28*time.Second {
		t.Errorf("window of 3 receives = %v, want 4+8+16 s", w)
	}
	if n := DefaultBackoff.ReceivesFor(28*time.Second, 180*time.Second); n != 3 {
		t.Errorf("receives for 28 s = %d, want 3", n)
	}
	if n := DefaultBackoff.ReceivesFor(29*time.Second, 180*time.Second); n != 4 {
		t.Errorf("receives for 29 s = %d, want 4", n)
	}
	if n := DefaultBackoff.ReceivesFor(time.Hour, 0); n != 0 {
		t.Errorf("receives for an hour of 0 s delays = %d, want 0 (none)", n)
	}
}

// fakeRescheduler records each message's delay.
type fakeRescheduler struct {
	limit               time.Duration
	limitErr, changeErr error
	ctxErr              error // ctx.Err() at ShowAfter

	mu     sync.Mutex
	delays map[string]time.Duration // receipt handle -> delay
}

func (f *fakeRescheduler) VisibilityTimeout(context.Context) (time.Duration, error) {
	return f.limit, f.limitErr
}

func (f *fakeRescheduler) ShowAfter(ctx context.Context, handle string, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.delays == nil {
		f.delays = map[string]time.Duration{}
	}
	f.delays[handle], f.ctxErr = d, ctx.Err()
	return f.changeErr
}

func received(id, sub string, count int) events.SQSMessage {
	return events.SQSMessage{MessageId: id, ReceiptHandle: "rh-" + id, Body: fmt.Sprintf(`{"sub":%q,"user_pool_id":"p","attempt":1}`, sub),
		Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(count)}}
}

func failedIDs(resp events.SQSEventResponse) string {
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return strings.Join(ids, ",")
}

// TestRetryWorkerBacksOffPerReceive: each message it could not finish is
// hidden for the delay of its own receive count, capped, and still
// reported as a batch item failure; others are not touched.
func TestRetryWorkerBacksOffPerReceive(t *testing.T) {
	later := &fakeRescheduler{limit: 30 * time.Second}
	w := New(subErrs{"down": provision.ErrKandyUnavailable, "quota": provision.ErrQuotaExceeded}, &fakeDLQ{}, later, quiet, nil)
	w.random = func() float64 { return 0.99999 }
	resp, err := w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		received("1", "down", 1), received("2", "down", 2), received("3", "down", 4), received("4", "down", 9),
		received("5", "ok", 1), received("6", "quota", 3),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := failedIDs(resp); got != "1,2,3,4" {
		t.Errorf("batch item failures %s, want 1,2,3,4", got)
	}
	want := map[string]time.Duration{"rh-1": 5 * time.Second, "rh-2": 10 * time.Second, "rh-3": 30 * time.Second, "rh-4": 30 * time.Second}
	if fmt.Sprint(later.delays) != fmt.Sprint(want) {
		t.Errorf("delays %v, want %v", later.delays, want)
	}

	w.random = func() float64 { return 0 }
	later.delays = nil
	if _, err := w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{received("7", "down", 2)}}); err != nil {
		t.Fatal(err)
	}
	if d := later.delays["rh-7"]; d != 8*time.Second {
		t.Errorf("receive 2 at the jitter's low end: %v, want 8 s", d)
	}
}

// TestRetryWorkerFallsBackToTheVisibilityTimeout: a message that cannot
// be rescheduled is still reported, and the log says it comes back later.
func TestRetryWorkerFallsBackToTheVisibilityTimeout(t *testing.T) {
	for name, later := range map[string]*fakeRescheduler{
		"the timeout cannot be read": {limitErr: errors.New("AccessDenied")},
		"the visibility is refused":  {limit: time.Minute, changeErr: errors.New("ReceiptHandleIsInvalid")},
	} {
		var logs bytes.Buffer
		w := New(subErrs{"down": provision.ErrKandyUnavailable}, &fakeDLQ{}, later, slog.New(slog.NewTextHandler(&logs, nil)), nil)
		resp, _ := w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{received("1", "down", 1)}})
		if got := failedIDs(resp); got != "1" {
			t.Errorf("%s: batch item failures %q, want 1", name, got)
		}
		if !strings.Contains(logs.String(), "after the queue's visibility timeout; rescheduling failed") {
			t.Errorf("%s: logs %s", name, logs.String())
		}
	}
}

// hangingEnsurer blocks until its context ends.
type hangingEnsurer struct{}

func (hangingEnsurer) Ensure(ctx context.Context, _ string, _ provision.EnsureOptions) (provision.Account, bool, error) {
	<-ctx.Done()
	return provision.Account{}, false, fmt.Errorf("create user: %w", ctx.Err())
}

// TestRetryWorkerReschedulesAnAttemptCutByTheDeadline: the attempt used
// up the invocation; rescheduling still gets a live context.
func TestRetryWorkerReschedulesAnAttemptCutByTheDeadline(t *testing.T) {
	later := &fakeRescheduler{limit: time.Minute}
	w := New(hangingEnsurer{}, &fakeDLQ{}, later, quiet, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	resp, _ := w.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{received("1", "s", 1)}})
	if got := failedIDs(resp); got != "1" {
		t.Errorf("batch item failures %q, want 1", got)
	}
	later.mu.Lock()
	defer later.mu.Unlock()
	if _, ok := later.delays["rh-1"]; !ok {
		t.Errorf("rescheduled %v; want rh-1 rescheduled", later.delays)
	}
	if later.ctxErr != nil {
		t.Errorf("rescheduled with a context error %v; want a live context", later.ctxErr)
	}
}
