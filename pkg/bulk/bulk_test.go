package bulk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// At most Concurrency operations run at once, and every one queued runs.
func TestConcurrencyIsBounded(t *testing.T) {
	r := Start(context.Background(), Options{Concurrency: 3})
	var now, peak, ran atomic.Int32
	release := make(chan struct{})
	// Go blocks while every slot is taken: release once they all are.
	go func() {
		for now.Load() < 3 {
			runtime.Gosched()
		}
		close(release)
	}()
	for range 12 {
		r.Go(func(context.Context) {
			n := now.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			<-release
			now.Add(-1)
			ran.Add(1)
		})
	}
	r.Close()
	if p := peak.Load(); p > 3 {
		t.Errorf("%d operations at once, over the limit of 3", p)
	}
	if n := ran.Load(); n != 12 {
		t.Errorf("%d operations ran, want 12", n)
	}
}

// A refusal every later operation would meet stops the run: nothing
// starts after it, what had started finishes with a live context, and the
// stop says which refusal. Any other failure stops nothing.
func TestARefusalStopsTheRun(t *testing.T) {
	r := Start(context.Background(), Options{Concurrency: 1})
	if r.Check(errors.New("a failure of one user")) || r.Over() {
		t.Fatal("an ordinary failure stopped the run")
	}
	var started []int
	var mu sync.Mutex
	for i := range 5 {
		r.Go(func(ctx context.Context) {
			mu.Lock()
			started = append(started, i)
			mu.Unlock()
			if i == 1 {
				r.Check(fmt.Errorf("create: %w", provision.ErrQuotaExceeded))
				if ctx.Err() != nil {
					t.Errorf("the operation that met the refusal lost its context: %v", ctx.Err())
				}
			}
		})
	}
	r.Close()
	if fmt.Sprint(started) != "[0 1]" {
		t.Errorf("started %v, want [0 1]: nothing after the refusal", started)
	}
	if !errors.Is(r.Stopped(), provision.ErrQuotaExceeded) {
		t.Errorf("stopped %v, want the quota", r.Stopped())
	}
	if r.Pace() {
		t.Error("a stopped run paced another operation")
	}
	raw, _ := json.Marshal(struct {
		Stopped *Stop `json:"stopped,omitempty"`
	}{r.Stopped()})
	if want := `{"stopped":"stopped: create: Kandy refused: the account's user limit is reached"}`; string(raw) != want {
		t.Errorf("as JSON %s, want %s", raw, want)
	}
}

// The project's refused credentials stop a run too.
func TestRefusedCredentialsStopTheRun(t *testing.T) {
	r := Start(context.Background(), Options{})
	if !r.Check(provision.ErrKandyCredentialsRefused) || !r.Over() {
		t.Error("refused credentials did not stop the run")
	}
	r.Close()
}

// A tally's snapshot does not change when the tally does, and progress
// hears of every change, one at a time.
func TestTallySnapshotsAndReports(t *testing.T) {
	type sum struct{ Seen []int }
	var heard []int
	var reporting atomic.Int32
	tally := NewTally(sum{}, func(s sum) sum { s.Seen = Shared(s.Seen); return s }, func(s sum) {
		if reporting.Add(1) != 1 {
			t.Error("two progress reports at once")
		}
		heard = append(heard, len(s.Seen))
		reporting.Add(-1)
	})
	tally.Add(func(s *sum) { s.Seen = append(s.Seen, 1) })
	snap := tally.Get()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() { defer wg.Done(); tally.Add(func(s *sum) { s.Seen = append(s.Seen, i+2) }) }()
	}
	wg.Wait()
	if fmt.Sprint(snap.Seen) != "[1]" {
		t.Errorf("an early snapshot changed to %v", snap.Seen)
	}
	if got := len(tally.Get().Seen); got != 21 {
		t.Errorf("%d recorded, want 21", got)
	}
	if len(heard) != 21 {
		t.Errorf("progress heard %d changes, want 21", len(heard))
	}
}
