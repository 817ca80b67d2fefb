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
	return a, created, err
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
	existing, claimed, err := s.accounts.Claim(ctx, c)
	if err != nil {
		return Account{}, false, fmt.Errorf("claiming: %w", err)
	}
	// The claim may be ours already: when the answer to the claim write is
	// lost, the SDK retries it, and the retry finds the item the first wrote.
	if !claimed && existing.Status == StatusPending && existing.ClaimToken == c.Token {
		claimed = true
	}
	if !claimed {
		if existing.Status == StatusActive {
			return existing.account(), false, nil
		}
		return Account{}, false, ErrInProgress
	}

	kctx, cancel := s.holding(ctx, c)
	creds, err := s.create(kctx, uid, country)
	cancel()
	if err != nil {
		// Kandy may or may not have created the user (an ambiguous failure).
		// Either way releasing is safe: a user left behind is an orphan the
		// next attempt recovers.
		if rerr := s.accounts.Release(context.WithoutCancel(ctx), c); rerr != nil {
			s.log.WarnContext(ctx, "releasing claim failed; it will expire", "user_id", uid, "err", rerr)
		}
		return Account{}, false, err
	}
	rec, err := s.finalize(ctx, c, creds)
	if err != nil {
		return Account{}, false, err
	}
	return rec.account(), true, nil
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
		c.Now = s.now()
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
		// A finalize whose answer was lost is retried by the SDK and then
		// fails its condition: the record holds our credentials already.
		if rec, gerr := s.accounts.Get(wctx, c.Sub); gerr == nil && rec.Status == StatusActive && rec.UserAPIKey == creds.UserAPIKey {
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
