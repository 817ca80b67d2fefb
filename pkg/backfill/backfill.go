// Package backfill gives every confirmed user of a Cognito user pool a
// Kandy account, for pools that had users before the service was deployed.
// It uses the same Ensure as the API and the trigger, so running it twice,
// or while users sign up, creates nothing twice.
package backfill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/bulk"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/userpool"
)

// Provisioner is the provisioning service, as a backfill uses it.
type Provisioner interface {
	Get(ctx context.Context, sub string) (provision.Account, error)
	Ensure(ctx context.Context, sub string, o provision.EnsureOptions) (provision.Account, bool, error)
}

// Options configures a Run.
type Options struct {
	UserPoolID string
	// Concurrency is how many users are provisioned at once; default
	// bulk.DefaultConcurrency.
	Concurrency int
	// Rate bounds the provisioning calls that may reach Kandy, per second;
	// users that already have an account do not count. 0 means no limit.
	Rate float64
	// DryRun reads the pool and the table and changes nothing.
	DryRun bool
	// StartToken resumes at the page a Checkpoint recorded.
	StartToken string
	// Checkpoint, if set, is called after each page with the token of the
	// next one ("" at the end), once every user of the page is handled.
	Checkpoint func(next string) error
	// Progress, if set, is called after each user with the totals so far,
	// never twice at once.
	Progress func(Summary)
	// UserTimeout bounds one user's provisioning. Default 30s.
	UserTimeout time.Duration
	// Log, if set, hears of each user left alone because they deleted
	// their account.
	Log *slog.Logger
}

// Failure is a user the run could not provision.
type Failure struct {
	Username string
	Sub      string
	Reason   string
}

// Summary counts what a run did.
type Summary struct {
	Seen           int // users handled, whatever the outcome
	Created        int
	AlreadyPresent int
	WouldCreate    int // dry run only
	NotConfirmed   int // skipped
	// Deleted users deleted their account: a backfill never provisions
	// them; only their own POST /users does.
	Deleted  int
	Failures []Failure
	// Stopped says why the run ended early, with users not attempted:
	// a refusal every further call would meet too (quota, credentials).
	Stopped *bulk.Stop
}

type outcome int

const (
	created outcome = iota
	alreadyPresent
	wouldCreate
	notConfirmed
	deleted
	failed
)

// Run walks the pool, page by page, and returns what it did. Its error is
// for the walk itself (listing users, a cancelled context, a checkpoint
// that cannot be written); users that fail are in the Summary.
func Run(ctx context.Context, users userpool.ListUsersAPI, accounts Provisioner, o Options) (Summary, error) {
	if o.UserPoolID == "" {
		return Summary{}, errors.New("backfill: no user pool id")
	}
	if o.UserTimeout <= 0 {
		o.UserTimeout = 30 * time.Second
	}
	r := &run{o: o, accounts: accounts, runner: bulk.Start(ctx, bulk.Options{Concurrency: o.Concurrency, Rate: o.Rate}),
		tally: bulk.NewTally(Summary{}, snapshot, o.Progress)}
	defer r.runner.Close()

	// No status filter: users who never confirmed are listed too, so the
	// summary can say how many were skipped.
	var walkErr error // the walk's own failure, apart from the listing's
	err := userpool.Pages(ctx, users, o.UserPoolID, "", o.StartToken, func(page []userpool.User, next string) error {
		for _, u := range page {
			r.runner.Go(func(ctx context.Context) { r.user(ctx, u) })
		}
		r.runner.Wait()
		switch {
		case r.runner.Stopped() != nil:
			walkErr = errStopped
		case ctx.Err() != nil:
			walkErr = ctx.Err()
		case o.Checkpoint != nil:
			if err := o.Checkpoint(next); err != nil {
				walkErr = fmt.Errorf("writing checkpoint: %w", err)
			}
		}
		return walkErr
	})
	sum := r.tally.Get()
	sum.Stopped = r.runner.Stopped()
	switch {
	case errors.Is(err, errStopped):
		return sum, nil
	case err != nil && walkErr == nil:
		return sum, fmt.Errorf("listing users: %w", err)
	}
	return sum, err
}

// errStopped ends the walk when the run stopped on a refusal.
var errStopped = errors.New("stopped")

type run struct {
	o        Options
	accounts Provisioner
	runner   *bulk.Runner
	tally    *bulk.Tally[Summary]
}

func snapshot(s Summary) Summary {
	s.Failures = bulk.Shared(s.Failures)
	return s
}

func (r *run) user(ctx context.Context, u userpool.User) {
	name, sub := u.Username, u.Sub
	if !u.Confirmed {
		r.record(notConfirmed, Failure{})
		return
	}
	if sub == "" {
		r.record(failed, Failure{Username: name, Reason: "the user has no sub attribute"})
		return
	}
	uctx, cancel := context.WithTimeout(ctx, r.o.UserTimeout)
	defer cancel()
	// Reading first keeps a resumed run over a provisioned pool fast: only
	// users without an account wait for the rate limit.
	_, err := r.accounts.Get(uctx, sub)
	switch {
	case err == nil:
		r.record(alreadyPresent, Failure{})
		return
	case errors.Is(err, provision.ErrAccountDeleted):
		r.deleted(ctx, sub)
		return
	case r.o.DryRun && errors.Is(err, provision.ErrNotProvisioned):
		r.record(wouldCreate, Failure{})
		return
	case r.o.DryRun:
		r.record(failed, Failure{Username: name, Sub: sub, Reason: err.Error()})
		return
	}
	if !r.runner.Pace() {
		return // stopped while waiting: not attempted; a resumed run will see the user
	}
	_, isNew, err := r.accounts.Ensure(uctx, sub, provision.EnsureOptions{})
	switch {
	case err == nil && isNew:
		r.record(created, Failure{})
	case err == nil:
		r.record(alreadyPresent, Failure{})
	case errors.Is(err, provision.ErrAccountDeleted):
		r.deleted(ctx, sub)
	default:
		r.record(failed, Failure{Username: name, Sub: sub, Reason: err.Error()})
		r.runner.Check(err)
	}
}

// deleted notes a user who deleted their account.
func (r *run) deleted(ctx context.Context, sub string) {
	if r.o.Log != nil {
		r.o.Log.InfoContext(ctx, "backfill: not provisioned: the user deleted their account", "sub", sub)
	}
	r.record(deleted, Failure{})
}

func (r *run) record(o outcome, f Failure) {
	r.tally.Add(func(s *Summary) {
		s.Seen++
		switch o {
		case created:
			s.Created++
		case alreadyPresent:
			s.AlreadyPresent++
		case wouldCreate:
			s.WouldCreate++
		case notConfirmed:
			s.NotConfirmed++
		case deleted:
			s.Deleted++
		case failed:
			s.Failures = append(s.Failures, f)
		}
	})
}
