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
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/userpool"
)

// PageSize is Cognito's largest ListUsers page.
const PageSize = userpool.PageSize

// ListUsersAPI is the one Cognito operation a backfill needs.
type ListUsersAPI = userpool.ListUsersAPI

// Accounts is the provisioning service, as a backfill uses it.
type Accounts interface {
	Get(ctx context.Context, sub string) (provision.Account, error)
	Ensure(ctx context.Context, sub string, o provision.EnsureOptions) (provision.Account, bool, error)
}

// Options configures a Run.
type Options struct {
	UserPoolID string
	// Concurrency is how many users are provisioned at once. Default 4.
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
	Stopped error
}

// stopKinds end a run: every later create would fail the same way.
var stopKinds = []error{provision.ErrQuotaExceeded, provision.ErrKandyCredentialsRefused}

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
func Run(ctx context.Context, users ListUsersAPI, accounts Accounts, o Options) (Summary, error) {
	if o.UserPoolID == "" {
		return Summary{}, errors.New("backfill: no user pool id")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.UserTimeout <= 0 {
		o.UserTimeout = 30 * time.Second
	}
	// Burst 1 spaces calls evenly: Kandy's limits are not documented.
	limit := rate.NewLimiter(rate.Limit(o.Rate), 1)
	if o.Rate <= 0 {
		limit.SetLimit(rate.Inf)
	}
	r := &run{o: o, accounts: accounts, limit: limit}
	ctx, r.stop = context.WithCancelCause(ctx)
	defer r.stop(nil)

	// No status filter: users who never confirmed are listed too, so the
	// summary can say how many were skipped.
	var walkErr error // the walk's own failure, apart from the listing's
	err := userpool.Pages(ctx, users, o.UserPoolID, "", o.StartToken, func(page []userpool.User, next string) error {
		r.page(ctx, page)
		switch {
		case r.summary().Stopped != nil:
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
	switch {
	case errors.Is(err, errStopped):
		return r.summary(), nil
	case err != nil && walkErr == nil:
		return r.summary(), fmt.Errorf("listing users: %w", err)
	}
	return r.summary(), err
}

// errStopped ends the walk when the run stopped on a refusal.
var errStopped = errors.New("stopped")

type run struct {
	o        Options
	accounts Accounts
	limit    *rate.Limiter
	stop     context.CancelCauseFunc

	mu  sync.Mutex
	sum Summary
	// reporting makes Progress calls one at a time.
	reporting sync.Mutex
}

// summary is a snapshot. Failures is append-only, so the snapshot shares
// it, capped at its length: a later append never writes into it, and a
// progress report per user costs no copy.
func (r *run) summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sum
	n := len(s.Failures)
	s.Failures = s.Failures[:n:n]
	return s
}

// page handles one page's users, o.Concurrency at a time.
func (r *run) page(ctx context.Context, users []userpool.User) {
	var g errgroup.Group
	g.SetLimit(r.o.Concurrency)
	for _, u := range users {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error { r.user(ctx, u); return nil })
	}
	_ = g.Wait() // users report their own failures
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
	// A user once started is finished even if the run is stopped or
	// cancelled meanwhile: abandoning it halfway would leave a claim that
	// blocks the next run until it expires.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.o.UserTimeout)
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
	if err := r.limit.Wait(ctx); err != nil {
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
		for _, k := range stopKinds {
			if errors.Is(err, k) {
				r.mu.Lock()
				if r.sum.Stopped == nil {
					r.sum.Stopped = fmt.Errorf("stopped: %w", err)
				}
				r.mu.Unlock()
				r.stop(err)
				break
			}
		}
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
	r.mu.Lock()
	r.sum.Seen++
	switch o {
	case created:
		r.sum.Created++
	case alreadyPresent:
		r.sum.AlreadyPresent++
	case wouldCreate:
		r.sum.WouldCreate++
	case notConfirmed:
		r.sum.NotConfirmed++
	case deleted:
		r.sum.Deleted++
	case failed:
		r.sum.Failures = append(r.sum.Failures, f)
	}
	r.mu.Unlock()
	if r.o.Progress != nil {
		r.reporting.Lock()
		r.o.Progress(r.summary())
		r.reporting.Unlock()
	}
}
