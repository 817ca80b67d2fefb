package provision

import (
	"context"
	"errors"
	"fmt"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/userid"
)

// deleteAttempts bounds how often Delete starts again when the record
// changed between its read and its claim.
const deleteAttempts = 3

// Get returns sub's account. A record being deleted is no account: the
// answer is as if the delete had finished.
func (s *Service) Get(ctx context.Context, sub string) (Account, error) {
	rec, err := s.active(ctx, sub)
	if err != nil {
		return Account{}, err
	}
	return rec.account(), nil
}

// UserToken returns a Kandy user access token for sub's account.
func (s *Service) UserToken(ctx context.Context, sub string) (string, error) {
	rec, err := s.active(ctx, sub)
	if err != nil {
		return "", err
	}
	tok, err := s.kandy.UserAccessToken(ctx, rec.UserID)
	if !errors.Is(err, ErrKandyNoSuchUser) {
		return tok, err
	}
	// A delete that began after the read took the Kandy user: answer as if
	// this request came after it. If the same record is still ACTIVE, the
	// record and Kandy disagree; that is not a race, and it is reported.
	now, nerr := s.active(ctx, sub)
	switch {
	case nerr != nil:
		return "", nerr
	case now.Generation != rec.Generation:
		return s.kandy.UserAccessToken(ctx, now.UserID)
	default:
		s.log.ErrorContext(ctx, "an ACTIVE record's Kandy user does not exist", "user_id", rec.UserID)
		return "", ErrRecordBroken
	}
}

// Delete deletes sub's Kandy user, then its record, under a delete claim:
// the record first becomes DELETING, on condition that it is still the
// generation that was read, so a delete can never reach an account created
// again after it read the record.
func (s *Service) Delete(ctx context.Context, sub string) error {
	if err := userid.Validate(sub); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		err := s.deleteOnce(ctx, sub)
		if !errors.Is(err, ErrClaimLost) {
			return err
		}
		if attempt == deleteAttempts {
			return ErrInProgress
		}
	}
}

// deleteOnce deletes the record as it reads it now; ErrClaimLost means
// the record changed meanwhile and the caller reads it again.
func (s *Service) deleteOnce(ctx context.Context, sub string) error {
	rec, err := s.read(ctx, sub)
	if err != nil {
		return err
	}
	if err := s.deleteSeen(ctx, rec); err != nil {
		return err
	}
	if rec.Status == StatusPending {
		return ErrNotProvisioned // an abandoned creation: there was no account
	}
	return nil
}

// Purge deletes sub's Kandy user and record, as an operator's repair: only
// if the record is still as seen, which may be no record at all (a Kandy
// user left without one). It goes through the same delete claim as
// Delete, so it never races a live request: ErrClaimLost means the record
// changed since it was seen, ErrInProgress that a claim is live.
func (s *Service) Purge(ctx context.Context, seen Record) error {
	uid, err := userid.FromSub(seen.Sub)
	if err != nil {
		return err
	}
	if seen.Status == "" {
		seen.UserID = uid
	}
	return s.deleteSeen(ctx, seen)
}

// deleteSeen deletes the Kandy user and the record under a delete claim
// taken on condition that the record is still rec: ACTIVE, absent, or
// held by a claim that expired (a creation or a delete abandoned half-way,
// which this delete takes over and finishes).
func (s *Service) deleteSeen(ctx context.Context, rec Record) error {
	if rec.claimLive(s.now()) {
		return ErrInProgress
	}
	c := s.newClaim(ctx, rec.Sub, rec.UserID)
	if err := s.accounts.ClaimDelete(ctx, c, rec); err != nil {
		if errors.Is(err, ErrClaimLost) {
			return err
		}
		return fmt.Errorf("claiming the delete: %w", err)
	}
	kctx, cancel := s.holding(ctx, c)
	err := s.kandy.DeleteUser(kctx, rec.UserID)
	cancel()
	if err != nil && !errors.Is(err, ErrKandyNoSuchUser) {
		// The claim stays until it expires; the next Delete or Ensure takes
		// it over and finishes.
		return err
	}
	// ErrClaimLost here means our claim expired and was taken over after
	// the Kandy user was gone: the taker finishes.
	if err := s.accounts.FinishDelete(context.WithoutCancel(ctx), c); err != nil && !errors.Is(err, ErrClaimLost) {
		return fmt.Errorf("deleting record: %w", err)
	}
	return nil
}

// active reads sub's ACTIVE record: a live claim is ErrInProgress, and no
// record, an expired claim or a delete under way is ErrNotProvisioned.
func (s *Service) active(ctx context.Context, sub string) (Record, error) {
	if err := userid.Validate(sub); err != nil {
		return Record{}, err
	}
	rec, err := s.read(ctx, sub)
	switch {
	case err != nil:
		return Record{}, err
	case rec.Status == StatusActive:
		return rec, nil
	case rec.Status == StatusPending && rec.claimLive(s.now()):
		return Record{}, ErrInProgress
	default:
		return Record{}, ErrNotProvisioned
	}
}

func (s *Service) read(ctx context.Context, sub string) (Record, error) {
	rec, err := s.accounts.Get(ctx, sub)
	if err != nil && !errors.Is(err, ErrNotProvisioned) {
		return Record{}, fmt.Errorf("reading record: %w", err)
	}
	return rec, err
}

// newClaim is a fresh claim on sub for now.
func (s *Service) newClaim(ctx context.Context, sub, uid string) Claim {
	now := s.now()
	return Claim{Sub: sub, UserID: uid, Token: newToken(), ExpiresAt: s.claimExpiry(ctx, now), Now: now}
}

// holding bounds ctx to the time the claim is surely still ours: a call
// to Kandy under a claim ends a margin before the claim does, so it can
// never act after someone else took the claim over.
func (s *Service) holding(ctx context.Context, c Claim) (context.Context, context.CancelFunc) {
	return context.WithDeadline(ctx, c.ExpiresAt.Add(-s.claimMargin))
}
