package provision

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/userid"
)

// EnsureOptions are the caller's choices for a new account.
type EnsureOptions struct {
	CountryCode string // default: the service's default
	// ByUser marks the user's own request (POST /users). Only it
	// provisions a user whose account was deleted; every other caller
	// gets ErrAccountDeleted. No caller provisions a user who left the
	// pool (ErrAccountClosed).
	ByUser bool
}

// Ensure makes sure sub has a Kandy account and returns it, with created
// true when this call created it.
func (s *Service) Ensure(ctx context.Context, sub string, o EnsureOptions) (Account, bool, error) {
	a, created, err := s.ensure(ctx, sub, o)
	if s.metrics != nil {
		switch {
		case created:
			s.metrics.UserCreated(ctx)
		case err == nil:
			s.metrics.UserAlreadyPresent(ctx)
		case errors.Is(err, ErrQuotaExceeded):
			s.metrics.QuotaExceeded(ctx)
		}
	}
	return a, created, s.counted(ctx, err)
}

func (s *Service) ensure(ctx context.Context, sub string, o EnsureOptions) (Account, bool, error) {
	uid, err := userid.FromSub(sub)
	if err != nil {
		return Account{}, false, err
	}
	country := o.CountryCode
	if country == "" {
		country = s.defaultCountry
	}
	if !ValidCountryCode(country) {
		return Account{}, false, ErrInvalidCountryCode
	}
	c := s.newClaim(ctx, sub, uid)
	c.ByUser = o.ByUser
	existing, claimed, err := s.accounts.Claim(ctx, c)
	if err != nil {
		return Account{}, false, fmt.Errorf("claiming: %w", err)
	}
	if !claimed && !c.Wrote(existing, StatusPending) {
		// Judged at the instant the store judged the claim: a claim that
		// expired since is still in progress to this request.
		a, err := existing.Unclaimed(c)
		return a, false, err
	}
	kctx, cancel := s.holding(ctx, c)
	creds, err := s.create(kctx, uid, country)
	cancel()
	if err != nil {
		s.giveUp(ctx, c, err)
		return Account{}, false, err
	}
	rec, err := s.finalize(ctx, c, creds)
	if err != nil {
		return Account{}, false, err
	}
	return rec.account(), true, nil
}

// giveUp ends the claim of a creation that failed. When Kandy surely
// created nothing, the record goes. Otherwise (a time-out, a lost answer)
// Kandy may have created the user, so the record stays as evidence with
// its claim ended at once: the next request takes it over without waiting
// and recovers the user, and a delete deletes it.
func (s *Service) giveUp(ctx context.Context, c Claim, cause error) {
	ctx = context.WithoutCancel(ctx)
	var err error
	if createdNothing(cause) {
		err = s.accounts.Drop(ctx, c)
	} else {
		c.Now = s.instant()
		err = s.accounts.Release(ctx, c)
	}
	if err != nil {
		s.log.WarnContext(ctx, "ending the claim failed; it will expire", "user_id", c.UserID, "err", err)
	}
}

// createdNothing reports whether a failed creation surely left no Kandy
// user: Kandy refused it, or it failed before reaching Kandy.
func createdNothing(err error) bool {
	for _, refusal := range []error{ErrQuotaExceeded, ErrInvalidCountryCode, ErrKandyCredentialsRefused, ErrUnavailable} {
		if errors.Is(err, refusal) {
			return true
		}
	}
	return false
}

// create calls Kandy, recovering an orphan: a user whose credentials were
// never stored, because an earlier holder crashed after Kandy answered or
// a delete was left half done. Nobody ever saw or still wants that user's
// password, so deleting it and creating it again loses nothing.
func (s *Service) create(ctx context.Context, uid, country string) (Credentials, error) {
	creds, err := s.kandy.CreateUser(ctx, uid, country)
	if errors.Is(err, ErrKandyUserExists) {
		s.log.WarnContext(ctx, "recovering orphaned Kandy user", "user_id", uid)
		if err := s.kandy.DeleteUser(ctx, uid); err != nil && !errors.Is(err, ErrKandyNoSuchUser) {
			return Credentials{}, err
		}
		creds, err = s.kandy.CreateUser(ctx, uid, country)
	}
	return creds, err
}

// finalize stores Kandy's answer. The credentials exist nowhere else, so a
// transient failure is retried even past the caller's cancellation, for as
// long as the claim is ours.
func (s *Service) finalize(ctx context.Context, c Claim, creds Credentials) (Record, error) {
	wctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), c.ExpiresAt)
	defer cancel()
	var err error
	sealed := s.sealer == nil
	for i := 0; i < s.finalizeTries; i++ {
		if i > 0 && !sleep(wctx, time.Duration(i*i)*50*time.Millisecond) {
			break
		}
		if !sealed {
			var sc Credentials
			if sc, err = s.sealer.Seal(wctx, c.Sub, creds); err != nil {
				continue
			}
			creds, sealed = sc, true
		}
		c.Now = s.instant()
		var rec Record
		rec, err = s.accounts.Finalize(wctx, c, creds)
		if err == nil {
			return rec, nil
		}
		if errors.Is(err, ErrClaimLost) {
			break
		}
	}
	if errors.Is(err, ErrClaimLost) {
		if rec, ok := s.wrote(wctx, c, StatusActive); ok {
			return rec, nil
		}
		s.log.WarnContext(ctx, "claim was taken over before the credentials were stored", "user_id", c.UserID)
		return Record{}, ErrInProgress
	}
	s.log.ErrorContext(ctx, "storing Kandy credentials failed; the claim will expire and the next attempt recovers the user", "user_id", c.UserID, "err", err)
	return Record{}, fmt.Errorf("finalizing: %w", err)
}

// sleep waits for d, or less if ctx ends first; it reports whether it
// waited the whole time.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
