// Package bulk is the one runner of the operators' bulk work, the backfill
// and reconcile's fix: one operation per user, a bounded number at once,
// started no faster than a rate, each finished once started, and the
// whole stopped by a refusal that every later operation would meet too.
package bulk

import (
	"context"
	"errors"
	"sync"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// DefaultConcurrency is how many operations run at once unless told.
const DefaultConcurrency = 4

// Options shape a run.
type Options struct {
	// Concurrency bounds the operations under way at once; default
	// DefaultConcurrency.
	Concurrency int
	// Rate bounds the operations started per second, for those that Pace;
	// 0 means no limit. Calls are spaced evenly: Kandy's limits are not
	// documented.
	Rate float64
}

// refusals stop a run: every later operation would fail the same way.
var refusals = []error{provision.ErrQuotaExceeded, provision.ErrKandyCredentialsRefused}

// Stop is why a run ended early, with operations not started: the
// refusal that stopped it. It reads as that refusal's text.
type Stop struct{ err error }

func (s *Stop) Error() string { return "stopped: " + s.err.Error() }

// Unwrap is the refusal.
func (s *Stop) Unwrap() error { return s.err }

// MarshalText is its text, for JSON reports.
func (s *Stop) MarshalText() ([]byte, error) { return []byte(s.Error()), nil }

// Runner runs operations.
type Runner struct {
	ctx   context.Context
	stop  context.CancelFunc
	limit *rate.Limiter
	g     errgroup.Group

	mu      sync.Mutex
	stopped *Stop
}

// Start begins a run under ctx. Close it when done.
func Start(ctx context.Context, o Options) *Runner {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	limit := rate.NewLimiter(rate.Limit(o.Rate), 1)
	if o.Rate <= 0 {
		limit.SetLimit(rate.Inf)
	}
	r := &Runner{limit: limit}
	r.ctx, r.stop = context.WithCancel(ctx)
	r.g.SetLimit(o.Concurrency)
	return r
}

// Over reports whether the run was stopped or its context ended: no
// more operations start.
func (r *Runner) Over() bool { return r.ctx.Err() != nil }

// Pace waits until the rate lets one more operation start; false when
// the run is over first.
func (r *Runner) Pace() bool { return r.limit.Wait(r.ctx) == nil }

// Go runs op once a slot is free, unless the run is over by then. op's
// context does not end with the run: an operation once started is
// finished, for one abandoned half-way would leave a claim behind.
func (r *Runner) Go(op func(ctx context.Context)) {
	r.g.Go(func() error {
		if !r.Over() {
			op(context.WithoutCancel(r.ctx))
		}
		return nil
	})
}

// Wait waits for the operations under way.
func (r *Runner) Wait() { _ = r.g.Wait() }

// Check stops the run if err is a refusal every later operation would
// meet, and reports whether it did.
func (r *Runner) Check(err error) bool {
	for _, k := range refusals {
		if errors.Is(err, k) {
			r.mu.Lock()
			if r.stopped == nil {
				r.stopped = &Stop{err: err}
			}
			r.mu.Unlock()
			r.stop()
			return true
		}
	}
	return false
}

// Stopped is why the run stopped early, or nil.
func (r *Runner) Stopped() *Stop {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopped
}

// Close ends the run, waiting for the operations under way.
func (r *Runner) Close() {
	r.Wait()
	r.stop()
}

// Tally is a run's running summary, S, told to a progress callback after
// each change, one call at a time.
type Tally[S any] struct {
	mu   sync.Mutex
	sum  S
	snap func(S) S

	progress  func(S)
	reporting sync.Mutex
}

// NewTally starts from zero; snap copies a summary (what it shares with
// the next one must only grow, see Shared); progress may be nil.
func NewTally[S any](zero S, snap func(S) S, progress func(S)) *Tally[S] {
	return &Tally[S]{sum: zero, snap: snap, progress: progress}
}

// Add changes the summary, then tells progress.
func (t *Tally[S]) Add(change func(*S)) {
	t.mu.Lock()
	change(&t.sum)
	t.mu.Unlock()
	if t.progress != nil {
		t.reporting.Lock()
		t.progress(t.Get())
		t.reporting.Unlock()
	}
}

// Get is a snapshot of the summary.
func (t *Tally[S]) Get() S {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.snap(t.sum)
}

// Shared is s for a snapshot of an append-only slice: capped at its
// length, a later append never writes into it, so a report per operation
// costs no copy.
func Shared[T any](s []T) []T { return s[:len(s):len(s)] }
