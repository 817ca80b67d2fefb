package signupretry

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// TestDelayIsUniformOverWholeSeconds: each whole second from Shortest to
// Longest gets an equal share of r's range, so sign-ups that failed
// together spread over all of them.
func TestDelayIsUniformOverWholeSeconds(t *testing.T) {
	b := Backoff{First: 10 * time.Second, Factor: 2, Jitter: 0.2}
	// Receive 1: Longest 10 s, Shortest 8 s: three seconds, a third each.
	for r, want := range map[float64]time.Duration{
		0: 8 * time.Second, 0.33: 8 * time.Second, 0.34: 9 * time.Second, 0.5: 9 * time.Second,
		0.66: 9 * time.Second, 0.67: 10 * time.Second, 0.99999: 10 * time.Second,
	} {
		if got := b.Delay(1, time.Minute, r); got != want {
			t.Errorf("Delay(1, 1m, %v) = %v, want %v", r, got, want)
		}
	}
}

// TestReceivesForReachesAWindowExactly: a window equal to the sum of the
// shortest delays of n receives needs n receives, not one more.
func TestReceivesForReachesAWindowExactly(t *testing.T) {
	for n := 1; n <= 8; n++ {
		window := DefaultBackoff.Window(30*time.Second, n)
		if got := DefaultBackoff.ReceivesFor(window, 30*time.Second); got != n {
			t.Errorf("ReceivesFor(Window(30s, %d) = %v) = %d, want %d", n, window, got, n)
		}
		if got := DefaultBackoff.ReceivesFor(window+time.Second, 30*time.Second); got != n+1 {
			t.Errorf("ReceivesFor(%v) = %d, want %d", window+time.Second, got, n+1)
		}
	}
}

// TestLongestStopsGrowingAtTheLimit: the delay is not multiplied once it
// reached the limit, so no receive count or limit overflows it.
func TestLongestStopsGrowingAtTheLimit(t *testing.T) {
	const huge = time.Duration(1 << 62)
	b := Backoff{First: huge, Factor: 2}
	for _, receive := range []int{1, 2, 3, 64} {
		if got, want := b.Longest(receive, huge), huge.Truncate(time.Second); got != want {
			t.Errorf("Longest(%d, %v) = %v, want %v", receive, huge, got, want)
		}
	}
}

// deadlineRescheduler records how long the rescheduling calls may take.
type deadlineRescheduler struct {
	mu   sync.Mutex
	left time.Duration // before the context's deadline, at VisibilityTimeout
}

func (d *deadlineRescheduler) VisibilityTimeout(ctx context.Context) (time.Duration, error) {
	dl, ok := ctx.Deadline()
	d.mu.Lock()
	defer d.mu.Unlock()
	if ok {
		d.left = time.Until(dl)
	}
	return time.Minute, nil
}

func (d *deadlineRescheduler) ShowAfter(context.Context, string, time.Duration) error { return nil }

// TestReschedulingTakesHalfTheMargin: the rescheduling calls get half of
// the margin kept before the Lambda deadline, so the answer still leaves
// in time when SQS is slow.
func TestReschedulingTakesHalfTheMargin(t *testing.T) {
	later := &deadlineRescheduler{}
	w := New(subErrs{"down": provision.ErrKandyUnavailable}, &fakeDLQ{}, later, quiet, nil)
	w.margin = 4 * time.Second
	if _, err := w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{received("1", "down", 1)}}); err != nil {
		t.Fatal(err)
	}
	later.mu.Lock()
	defer later.mu.Unlock()
	if later.left <= time.Second || later.left > 2*time.Second {
		t.Errorf("rescheduling had %v, want at most half the 4 s margin", later.left)
	}
}

// TestReceivesForSearchesUpTo10000Receives: the search's bound is
// inclusive; past it the answer is 0, no count.
func TestReceivesForSearchesUpTo10000Receives(t *testing.T) {
	second := Backoff{First: time.Second, Factor: 1}
	if got := second.ReceivesFor(10_000*time.Second, time.Minute); got != 10_000 {
		t.Errorf("ReceivesFor(10000 s) of 1 s delays = %d, want 10000", got)
	}
	if got := second.ReceivesFor(10_001*time.Second, time.Minute); got != 0 {
		t.Errorf("ReceivesFor(10001 s) of 1 s delays = %d, want 0", got)
	}
}
