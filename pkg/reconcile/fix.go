package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/bulk"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// Repairs are the domain's operations a fix goes through: the same claims
// as the API and the trigger.
type Repairs interface {
	Ensure(ctx context.Context, sub string, o provision.EnsureOptions) (provision.Account, bool, error)
	Rebuild(ctx context.Context, seen provision.Record) (provision.Account, error)
	Purge(ctx context.Context, seen provision.Record, end provision.Ending) error
}

// FixOptions say what to repair and how gently.
type FixOptions struct {
	Classes map[Class]bool
	// Concurrency bounds the repairs under way at once; default
	// bulk.DefaultConcurrency.
	Concurrency int
	// Rate bounds the repairs started per second; 0 means no limit.
	Rate float64
	// MaxDeletes bounds the Kandy users a fix may delete; Force lifts it,
	// and the refusal when Cognito lists no user at all.
	MaxDeletes int
	Force      bool
	// StillGone asks Cognito again, just before a delete, whether a user
	// is still gone.
	StillGone func(ctx context.Context, sub string) (bool, error)
	// Progress, if set, is called after each repair, never twice at once.
	Progress func(FixSummary)
	Log      *slog.Logger
	// Now, if set, is the clock a tombstone's expiry counts from.
	Now func() time.Time
}

func (o FixOptions) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// ErrRefused means a fix would delete in bulk; the error says why.
var ErrRefused = errors.New("refusing to repair")

// Failure is an item a fix could not repair.
type Failure struct {
	Item
	Reason string `json:"reason"`
}

// FixSummary is what a fix did.
type FixSummary struct {
	Repaired map[Class]int `json:"repaired"`
	// Skipped items changed since they were read (a request got there
	// first): nothing was done to them.
	Skipped  int       `json:"skipped"`
	Failures []Failure `json:"failures"`
	// Stopped says why the fix ended early: a refusal every further repair
	// would meet too (the quota, the project's credentials).
	Stopped *bulk.Stop `json:"stopped,omitempty"`
}

// Selected is the items of rep a fix with o would repair, deletions first:
// they free the account's user seats the creations need.
func Selected(rep Report, o FixOptions) []Item {
	var first, then []Item
	for _, it := range rep.Items {
		switch {
		case !o.Classes[it.Class] || !it.Class.IsDrift():
		case it.Class == Gone || it.Class == Orphan:
			first = append(first, it)
		default:
			then = append(then, it)
		}
	}
	return append(first, then...)
}

// Check refuses a fix that could delete a user base by accident: when
// Cognito listed no user at all, or when it would delete more Kandy users
// than MaxDeletes. Force lifts both, and is logged.
func Check(rep Report, o FixOptions) error {
	deletes := 0
	for _, it := range Selected(rep, o) {
		if it.Class.Deletes() {
			deletes++
		}
	}
	var why string
	switch {
	case deletes > 0 && rep.CognitoUsers == 0:
		why = fmt.Sprintf("Cognito listed no users at all, so every one of %d accounts looks gone; check the user pool id", deletes)
	case deletes > o.MaxDeletes:
		why = fmt.Sprintf("the fix would delete %d Kandy users, over the limit of %d (--max-deletes)", deletes, o.MaxDeletes)
	default:
		return nil
	}
	if o.Force {
		if o.Log != nil {
			o.Log.Warn("forced past a refusal", "why", why)
		}
		return nil
	}
	return fmt.Errorf("%w: %s; --force overrides", ErrRefused, why)
}

// Fix repairs the selected classes of rep, o.Concurrency at a time. It
// stops starting repairs on a refusal every later one would meet too.
func Fix(ctx context.Context, rep Report, r Repairs, o FixOptions) (FixSummary, error) {
	if err := Check(rep, o); err != nil {
		return FixSummary{}, err
	}
	f := &fixer{o: o, r: r, runner: bulk.Start(ctx, bulk.Options{Concurrency: o.Concurrency, Rate: o.Rate}),
		tally: bulk.NewTally(FixSummary{Repaired: map[Class]int{}}, snapshot, o.Progress)}
	for _, it := range Selected(rep, o) {
		if !f.runner.Pace() {
			break
		}
		f.runner.Go(func(ctx context.Context) { f.record(it, f.repair(ctx, it)) })
	}
	f.runner.Close()
	sum := f.tally.Get()
	sum.Stopped = f.runner.Stopped()
	return sum, nil
}

type fixer struct {
	o      FixOptions
	r      Repairs
	runner *bulk.Runner
	tally  *bulk.Tally[FixSummary]
}

func snapshot(s FixSummary) FixSummary {
	s.Repaired = maps.Clone(s.Repaired)
	s.Failures = bulk.Shared(s.Failures)
	return s
}

// errSkipped marks an item that changed since it was read.
var errSkipped = errors.New("changed since it was read")

// repair does the one repair the state machine gives it (see
// provision.Record.Judge and provision.Record.Ending).
func (f *fixer) repair(ctx context.Context, it Item) error {
	switch it.repair {
	case provision.RepairProvision:
		_, _, err := f.r.Ensure(ctx, it.Sub, provision.EnsureOptions{})
		return err
	case provision.RepairRebuild:
		_, err := f.r.Rebuild(ctx, it.seen)
		return err
	case provision.RepairLeave:
		if gone, err := f.o.StillGone(ctx, it.Sub); err != nil || !gone {
			return errors.Join(errSkipped, err)
		}
	}
	return f.r.Purge(ctx, it.seen, it.seen.Ending(it.repair, f.o.now()))
}

func (f *fixer) record(it Item, err error) {
	f.tally.Add(func(s *FixSummary) {
		switch {
		case err == nil:
			s.Repaired[it.Class]++
		case errors.Is(err, errSkipped), errors.Is(err, provision.ErrClaimLost), errors.Is(err, provision.ErrInProgress),
			errors.Is(err, provision.ErrAccountDeleted):
			s.Skipped++
		default:
			s.Failures = append(s.Failures, Failure{Item: it, Reason: err.Error()})
		}
	})
	f.runner.Check(err)
}
