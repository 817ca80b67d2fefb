package provision

import (
	"context"
	"errors"
	"fmt"
	"time"

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
		return Account{}, s.counted(ctx, err)
	}
	return rec.account(), nil
}

// UserToken returns a Kandy user access token for sub's account.
func (s *Service) UserToken(ctx context.Context, sub string) (string, error) {
	tok, err := s.userToken(ctx, sub)
	return tok, s.counted(ctx, err)
}

func (s *Service) userToken(ctx context.Context, sub string) (string, error) {
	rec, err := s.active(ctx, sub)
	if err != nil {
		return "", err
	}
	tok, err := s.kandy.UserAccessToken(ctx, rec.UserID)
	if !errors.Is(err, ErrKandyNoSuchUser) {
		return tok, err
	}
	// A delete that began after the read took the Kandy user: answer as if
	// this request came after it. If the same record is still ACTIVE, Kandy
	// lost the user: the user's own request proves they are in the pool,
	// so the account is rebuilt, as reconcile's broken repair does.
	now, err := s.active(ctx, sub)
	if err != nil {
		return "", err
	}
	if now.Generation == rec.Generation {
		s.log.WarnContext(ctx, "an ACTIVE record's Kandy user does not exist; rebuilding it", "user_id", rec.UserID)
		a, err := s.Rebuild(ctx, rec)
		if err != nil {
			return "", err
		}
		now.UserID = a.UserID
	}
	return s.kandy.UserAccessToken(ctx, now.UserID)
}

// Rebuild repairs an ACTIVE record seen whose Kandy user is gone or holds
// other credentials: it deletes what is left under a delete claim, then
// provisions the user again under a claim, as an automatic path, so a
// delete or a departure that came between wins. ErrInProgress means
// another request changed the record first.
func (s *Service) Rebuild(ctx context.Context, seen Record) (Account, error) {
	err := s.deleteSeen(ctx, seen, Ending{}, true)
	if errors.Is(err, ErrClaimLost) {
		err = ErrInProgress
	}
	if err != nil {
		return Account{}, s.counted(ctx, err)
	}
	a, _, err := s.Ensure(ctx, seen.Sub, EnsureOptions{})
	if err == nil && s.metrics != nil {
		s.metrics.AccountRebuilt(ctx)
	}
	return a, err
}

// Delete deletes sub's account at the user's request. The Kandy user goes
// and a tombstone stays, kept while the user stays in the pool, so that no
// automatic path provisions them again; only their own POST /users does.
// It reports whether there was an account to delete; where there was
// none, the tombstone is written all the same, since the user asked for
// none.
func (s *Service) Delete(ctx context.Context, sub string) (bool, error) {
	seen, err := s.remove(ctx, sub, Ending{Tombstone: true})
	if err != nil {
		return false, s.counted(ctx, err)
	}
	return seen.HadAccount(), nil
}

// Deprovision deletes the account of a user who left the pool: the Kandy
// user goes, and a tombstone stays that DynamoDB removes after
// TombstoneTTL, so a sign-up still queued for a retry cannot provision
// them. It is idempotent: a second call, or one for a user with no
// record, deletes nothing in Kandy.
func (s *Service) Deprovision(ctx context.Context, sub string) error {
	_, err := s.remove(ctx, sub, Ending{Tombstone: true, ExpiresAt: s.instant().Add(TombstoneTTL)})
	return s.counted(ctx, err)
}

// remove deletes sub's account under a delete claim, leaving what end
// says, and returns the record it found. It reads the record again when it
// changed between its read and its claim.
func (s *Service) remove(ctx context.Context, sub string, end Ending) (Record, error) {
	if err := userid.Validate(sub); err != nil {
		return Record{}, err
	}
	for attempt := 1; ; attempt++ {
		seen, err := s.read(ctx, sub)
		if errors.Is(err, ErrNotProvisioned) {
			seen, err = Record{Sub: sub}, nil
		}
		if err != nil {
			return Record{}, err
		}
		err = s.removeSeen(ctx, seen, end)
		if !errors.Is(err, ErrClaimLost) {
			return seen, err
		}
		if attempt == deleteAttempts {
			return Record{}, ErrInProgress
		}
	}
}

// removeSeen is remove for the record as read (see Record.Removal).
func (s *Service) removeSeen(ctx context.Context, seen Record, end Ending) error {
	switch seen.Removal(end) {
	case RemoveRecord:
		return s.deleteSeen(ctx, seen, end, seen.Exists())
	case RemoveExpire:
		err := s.accounts.Expire(ctx, seen, end.ExpiresAt, s.instant())
		if errors.Is(err, ErrClaimLost) {
			// Expired by another delivery of the same event since the read.
			if now, gerr := s.read(ctx, seen.Sub); gerr == nil && now.Removal(end) == RemoveNothing {
				return nil
			}
		}
		return err
	}
	return nil
}

// Purge deletes sub's Kandy user and record as an operator's repair, only
// if the record is still as seen, which may be no record at all (a Kandy
// user left without one), and leaves what end says. It goes through the
// same delete claim as Delete, so it never races a live request:
// ErrClaimLost means the record changed since it was seen, ErrInProgress
// that a claim is live.
func (s *Service) Purge(ctx context.Context, seen Record, end Ending) error {
	uid, err := userid.FromSub(seen.Sub)
	if err != nil {
		return err
	}
	if !seen.Exists() {
		seen.UserID = uid
	}
	return s.counted(ctx, s.deleteSeen(ctx, seen, end, true))
}

// deleteSeen deletes the Kandy user, if kandyUser, and leaves end in place
// of the record, under a delete claim taken on condition that the record
// is still seen (see MayClaimDelete). The claim carries the ending's
// expiry: a user leaving the pool is final from the claim on.
func (s *Service) deleteSeen(ctx context.Context, seen Record, end Ending, kandyUser bool) error {
	if seen.Held(s.now()) {
		return ErrInProgress
	}
	end = seen.Keeping(end)
	if seen.UserID == "" {
		seen.UserID, _ = userid.FromSub(seen.Sub)
	}
	c := s.newClaim(ctx, seen.Sub, seen.UserID)
	if err := s.accounts.ClaimDelete(ctx, c, seen, end); err != nil {
		if !errors.Is(err, ErrClaimLost) {
			return fmt.Errorf("claiming the delete: %w", err)
		}
		if _, ok := s.wrote(ctx, c, StatusDeleting); !ok {
			return err
		}
	}
	if kandyUser {
		kctx, cancel := s.holding(ctx, c)
		err := s.kandy.DeleteUser(kctx, seen.UserID)
		cancel()
		if err != nil && !errors.Is(err, ErrKandyNoSuchUser) {
			// The claim stays until it expires; the next delete takes it
			// over and finishes.
			return err
		}
	}
	// ErrClaimLost here means our claim expired and was taken over after
	// the Kandy user was gone: the taker finishes.
	if err := s.accounts.FinishDelete(context.WithoutCancel(ctx), c, end); err != nil && !errors.Is(err, ErrClaimLost) {
		return fmt.Errorf("finishing the delete: %w", err)
	}
	return nil
}

// active reads sub's ACTIVE record (see Record.Read).
func (s *Service) active(ctx context.Context, sub string) (Record, error) {
	if err := userid.Validate(sub); err != nil {
		return Record{}, err
	}
	rec, err := s.read(ctx, sub)
	if err != nil {
		return Record{}, err
	}
	return rec.Read(s.now())
}

// wrote reads the record after a write answered ErrClaimLost, and reports
// whether c's write to status took effect all the same (see Claim.Wrote).
func (s *Service) wrote(ctx context.Context, c Claim, status Status) (Record, bool) {
	rec, err := s.read(ctx, c.Sub)
	if err != nil && !errors.Is(err, ErrNotProvisioned) {
		return Record{}, false
	}
	return rec, c.Wrote(rec, status)
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
	now := s.instant()
	return Claim{Sub: sub, UserID: uid, Token: newToken(), ExpiresAt: s.claimExpiry(ctx, now), Now: now}
}

// instant is now in whole milliseconds, as the stores keep times.
func (s *Service) instant() time.Time { return s.now().Truncate(time.Millisecond) }

// holding bounds ctx to the time the claim is surely still ours: a call
// to Kandy under a claim ends a margin before the claim does, so it can
// never act after someone else took the claim over.
func (s *Service) holding(ctx context.Context, c Claim) (context.Context, context.CancelFunc) {
	return context.WithDeadline(ctx, c.ExpiresAt.Add(-s.claimMargin))
}
