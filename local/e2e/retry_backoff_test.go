package e2e

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/kandysim"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/signupretry"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/trigger"
)

// timedWorker hands each batch to the retry worker and records when it
// came.
type timedWorker struct {
	fn       *processes.Function
	mu       sync.Mutex
	at       []time.Time
	finished int // deliveries the worker has answered
}

func (w *timedWorker) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	w.mu.Lock()
	w.at = append(w.at, time.Now())
	w.mu.Unlock()
	out, err := w.fn.Invoke(ctx, event)
	w.mu.Lock()
	w.finished++
	w.mu.Unlock()
	return out, err
}

func (w *timedWorker) answered() int { w.mu.Lock(); defer w.mu.Unlock(); return w.finished }

func (w *timedWorker) deliveries() []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Time(nil), w.at...)
}

// poll runs the retry queue's event source, as make run does, until the
// test ends.
func (r *retryRig) poll(t *testing.T) *timedWorker {
	t.Helper()
	noteInvoked(t, r.worker.Process)
	w := &timedWorker{fn: r.worker}
	src := &processes.EventSource{SQS: r.q, QueueURL: r.queues.RetryURL, QueueARN: "arn:aws:sqs:us-east-1:100010001000:retry",
		Function: w, BatchSize: 10, ReportBatchItemFailures: true, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { src.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

func waitFor(patience time.Duration, ok func() bool) bool {
	for deadline := time.Now().Add(patience); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if ok() {
			return true
		}
	}
	return ok()
}

// within reports whether d is at least lo and at most lo+slack: goaws
// shows a hidden message again on a 1 s tick, and the worker takes a
// moment before it reschedules.
func within(d, lo, hi time.Duration) bool { return d >= lo && d <= hi+2*time.Second }

// TestRetryBacksOff: the real trigger and worker binaries over goaws, as
// make run runs them. The trigger's sign-up waits trigger.RetryDelay, then
// each failed receive hides the message for the next delay of the
// schedule, capped at the queue's visibility timeout; after
// maxReceiveCount receives, no sooner than the schedule's window, it is
// in the dead-letter queue.
func TestRetryBacksOff(t *testing.T) {
	t.Run("the delay grows per receive", func(t *testing.T) {
		const visibility = 30 * time.Second
		r := newRetryRigWith(t, int(visibility/time.Second), 10)
		r.fs.sim.Inject(kandysim.EndpointCreateUser, kandysim.FaultHTTP500, 1000)
		w := r.poll(t)
		sub := newSub()
		r.signUp(t, sub)
		sent := time.Now()
		// Kandy comes back once the second delivery has failed, not while
		// it is still under way.
		if !waitFor(25*time.Second, func() bool { return w.answered() >= 2 }) {
			t.Fatalf("%d deliveries answered in 25 s, want 2", w.answered())
		}
		r.fs.sim.ClearFaults()
		if !waitFor(20*time.Second, func() bool { return r.queued(t, r.queues.RetryURL) == 0 }) {
			t.Fatal("not provisioned 20 s after Kandy came back")
		}
		at := w.deliveries()
		if len(at) != 3 {
			t.Fatalf("%d deliveries, want 3: two failed, one provisioned", len(at))
		}
		b := signupretry.DefaultBackoff
		for i, want := range []struct {
			name   string
			gap    time.Duration
			lo, hi time.Duration
		}{
			{"sign-up to 1st receive (the trigger's delay)", at[0].Sub(sent), trigger.RetryDelay - 500*time.Millisecond, trigger.RetryDelay},
			{"1st to 2nd receive", at[1].Sub(at[0]), b.Shortest(1, visibility), b.Longest(1, visibility)},
			{"2nd to 3rd receive", at[2].Sub(at[1]), b.Shortest(2, visibility), b.Longest(2, visibility)},
		} {
			if !within(want.gap, want.lo, want.hi) {
				t.Errorf("%d: %s took %v, want %v to %v", i, want.name, want.gap, want.lo, want.hi)
			}
		}
		r.fs.checkInvariants(t, []string{sub})
	})

	t.Run("capped at the visibility timeout, then the dead-letter queue", func(t *testing.T) {
		const visibility, maxReceives = 2 * time.Second, 3
		r := newRetryRigWith(t, int(visibility/time.Second), maxReceives)
		defer r.fs.sim.ClearFaults()
		r.fs.sim.Inject(kandysim.EndpointCreateUser, kandysim.FaultHTTP500, 1000)
		w := r.poll(t)
		r.signUp(t, newSub())
		var dead int
		if !waitFor(20*time.Second, func() bool { dead = len(receiveAll(t, r.q, r.queues.DeadLetterURL)); return dead > 0 }) {
			t.Fatalf("not in the dead-letter queue after 20 s; %d deliveries", len(w.deliveries()))
		}
		arrived, at := time.Now(), w.deliveries()
		if len(at) != maxReceives {
			t.Fatalf("%d deliveries, want %d", len(at), maxReceives)
		}
		if dead != 1 {
			t.Fatalf("%d dead letters, want 1", dead)
		}
		for i := 1; i < len(at); i++ {
			// Uncapped, the 1st and 2nd receives would wait at least 4 s and 8 s.
			uncapped := signupretry.DefaultBackoff.Shortest(i, time.Hour)
			if gap := at[i].Sub(at[i-1]); gap < visibility || gap >= uncapped {
				t.Errorf("receive %d came %v after the one before; want the %v cap, under the uncapped %v", i+1, gap, visibility, uncapped)
			}
		}
		if window, spent := signupretry.DefaultBackoff.Window(visibility, maxReceives), arrived.Sub(at[0]); spent < window {
			t.Errorf("dead-lettered %v after the first receive, before the schedule's window of %v", spent, window)
		}
	})
}
