package signupretry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/signupqueue"
)

type subErrs map[string]error

func (s subErrs) Ensure(_ context.Context, sub string, _ provision.EnsureOptions) (provision.Account, bool, error) {
	return provision.Account{UserID: "u"}, true, s[sub]
}

type fakeDLQ struct {
	mu   sync.Mutex
	sent map[string]string // message sub or body -> reason
	err  error
}

func (f *fakeDLQ) note(key string, reason provision.Code) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sent == nil {
		f.sent = map[string]string{}
	}
	f.sent[key] = string(reason)
	return f.err
}

func (f *fakeDLQ) Send(_ context.Context, m signupqueue.Message, reason provision.Code) error {
	return f.note(m.Sub, reason)
}
func (f *fakeDLQ) SendRaw(_ context.Context, body string, reason provision.Code) error {
	return f.note(body, reason)
}

func msg(id, body string) events.SQSMessage {
	return events.SQSMessage{MessageId: id, Body: body, Attributes: map[string]string{"ApproximateReceiveCount": "2"}}
}

func TestRetryWorker(t *testing.T) {
	ensure := subErrs{
		"down":  provision.ErrKandyUnavailable,
		"busy":  provision.ErrInProgress,
		"quota": provision.ErrQuotaExceeded,
	}
	dlq := &fakeDLQ{}
	w := New(ensure, dlq, nil, quiet, nil)
	resp, err := w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		msg("1", `{"sub":"ok","user_pool_id":"p","attempt":1}`),
		msg("2", `{"sub":"down","user_pool_id":"p","attempt":1}`),
		msg("3", `{"sub":"quota","user_pool_id":"p","attempt":1}`),
		msg("4", `not json`),
		msg("5", `{"sub":"busy","user_pool_id":"p","attempt":1}`),
		msg("6", `{"sub":"","attempt":1}`),
		msg("7", `{"sub":"ok","extra":1}`),
	}})
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	if want := []string{"2", "5"}; !slices.Equal(failed, want) {
		t.Fatalf("batch item failures = %q, want %q", failed, want)
	}
	want := map[string]string{"quota": "kandy_quota_exceeded", "not json": "invalid_request",
		`{"sub":"","attempt":1}`: "invalid_request", `{"sub":"ok","extra":1}`: "invalid_request"}
	if fmt.Sprint(dlq.sent) != fmt.Sprint(want) {
		t.Fatalf("dead letters = %v, want %v", dlq.sent, want)
	}
}

func TestRetryWorkerKeepsMessagesTheDLQRefuses(t *testing.T) {
	w := New(subErrs{"quota": provision.ErrQuotaExceeded}, &fakeDLQ{err: errors.New("AccessDenied")}, nil, quiet, nil)
	resp, _ := w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{msg("1", `{"sub":"quota","attempt":1}`)}})
	if len(resp.BatchItemFailures) != 1 {
		t.Fatalf("a message the DLQ refused was dropped: %+v", resp)
	}
}

type hanging struct {
	mu             sync.Mutex
	inFlight, most int
	calls          int
	healthy, stuck bool
}

func (h *hanging) peak() int { h.mu.Lock(); defer h.mu.Unlock(); return h.most }

func (h *hanging) Ensure(ctx context.Context, _ string, _ provision.EnsureOptions) (provision.Account, bool, error) {
	h.mu.Lock()
	h.calls++
	h.inFlight++
	h.most = max(h.most, h.inFlight)
	h.mu.Unlock()
	defer func() { h.mu.Lock(); h.inFlight--; h.mu.Unlock() }()
	switch {
	case h.healthy:
		time.Sleep(20 * time.Millisecond)
		return provision.Account{}, true, nil
	case h.stuck:
		time.Sleep(time.Hour)
	default:
		<-ctx.Done()
	}
	return provision.Account{}, false, fmt.Errorf("create user: %w", provision.ErrKandyUnavailable)
}

func batchOf(n int) events.SQSEvent {
	var ev events.SQSEvent
	for i := 0; i < n; i++ {
		ev.Records = append(ev.Records, msg(strconv.Itoa(i), fmt.Sprintf(`{"sub":"s%d","user_pool_id":"p","attempt":1}`, i)))
	}
	return ev
}

// With Kandy hanging, a batch of 10 is answered before the invocation's
// deadline, every message reported for another try.
func TestRetryWorkerAnswersBeforeItsDeadline(t *testing.T) {
	for _, stuck := range []bool{false, true} {
		h := &hanging{stuck: stuck}
		w := New(h, &fakeDLQ{}, nil, quiet, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		start := time.Now()
		resp, err := w.Handle(ctx, batchOf(10))
		elapsed := time.Since(start)
		cancel()
		if err != nil {
			t.Fatalf("stuck %v: %v", stuck, err)
		}
		if n := len(resp.BatchItemFailures); n != 10 {
			t.Fatalf("stuck %v: %d failures reported, want 10", stuck, n)
		}
		if elapsed >= 2*time.Second || elapsed < time.Second-100*time.Millisecond {
			t.Fatalf("stuck %v: answered after %v; the deadline is 2 s and the margin 1 s", stuck, elapsed)
		}
		if most := h.peak(); most < 2 || most > 5 {
			t.Fatalf("stuck %v: %d messages at once, want between 2 and the bound of 5", stuck, most)
		}
	}
}

func TestRetryWorkerHandlesABatchConcurrently(t *testing.T) {
	h := &hanging{healthy: true}
	w := New(h, &fakeDLQ{}, nil, quiet, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := w.Handle(ctx, batchOf(10))
	took := time.Since(start)
	if err != nil {
		t.Fatalf("healthy batch: %v", err)
	}
	if len(resp.BatchItemFailures) != 0 {
		t.Errorf("healthy batch: failures %+v, want none", resp.BatchItemFailures)
	}
	if h.calls != 10 {
		t.Errorf("healthy batch: %d calls, want 10", h.calls)
	}
	if h.most != 5 {
		t.Errorf("%d messages at once, want the bound of 5", h.most)
	}
	if took > 10*20*time.Millisecond {
		t.Errorf("%v for 10 messages of 20 ms, want at most 200ms", took)
	}
}

// Without a deadline (not Lambda), the worker still bounds its batch.
func TestRetryWorkerWithoutADeadline(t *testing.T) {
	w := New(&hanging{}, &fakeDLQ{}, nil, quiet, nil)
	w.fallback = 1500 * time.Millisecond
	start := time.Now()
	resp, _ := w.Handle(context.Background(), batchOf(3))
	took := time.Since(start)
	if n := len(resp.BatchItemFailures); n != 3 {
		t.Errorf("%d failures, want 3", n)
	}
	if took > 1500*time.Millisecond {
		t.Errorf("answered after %v, want within the fallback of 1.5s", took)
	}
}

type deletedCounts map[string]int

func (d deletedCounts) AccountDeleted(_ context.Context, path string) { d[path]++ }

// A queued sign-up of a user who since deleted their account is consumed:
// no batch-item failure, no dead letter, a log line and a count.
func TestRetryWorkerConsumesDeletedAccounts(t *testing.T) {
	var logs strings.Builder
	dlq := &fakeDLQ{}
	counts := deletedCounts{}
	w := New(subErrs{"gone": fmt.Errorf("claiming: %w", provision.ErrAccountDeleted)}, dlq, nil, slog.New(slog.NewJSONHandler(&logs, nil)), counts)
	resp, err := w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{msg("1", `{"sub":"gone","user_pool_id":"p","attempt":1}`)}})
	if err != nil {
		t.Fatalf("Handle: %v; want the message consumed", err)
	}
	if len(resp.BatchItemFailures) != 0 {
		t.Errorf("failures %+v; want the message consumed", resp.BatchItemFailures)
	}
	if len(dlq.sent) != 0 {
		t.Errorf("dead letters %v, want none", dlq.sent)
	}
	if counts["retry"] != 1 {
		t.Errorf("counts %v, want retry: 1", counts)
	}
	if !strings.Contains(logs.String(), "the user deleted their account") {
		t.Fatalf("logs:\n%s", logs.String())
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
