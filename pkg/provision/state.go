package provision

import "time"

// The account's state machine: one record per sub. This file is the one
// home of its rules: which transition may happen from which record, and
// when a claim is live. The stores turn each rule into a conditional write
// (pkg/store into a DynamoDB condition expression, internal/testing/memstore into
// ifs), both pass internal/testing/accountstest, and reconcile asks the same
// functions.
//
//	(absent) ─Claim─▶ PENDING ─Finalize─▶ ACTIVE
//	PENDING ─Drop (Kandy surely created nothing)─▶ (absent)
//	PENDING ─Release (Kandy may have created the user)─▶ PENDING, claim ended: evidence
//	PENDING, claim expired ─Claim─▶ PENDING
//	DELETING, claim expired ─Claim, by the user only─▶ PENDING
//	DELETED ─Claim, by the user only─▶ PENDING
//	(absent), ACTIVE, DELETED or a claim expired ─ClaimDelete─▶ DELETING
//	DELETING ─FinishDelete─▶ DELETED (a tombstone), or (absent) after a repair
//	DELETED, kept ─Expire (the user left the pool)─▶ DELETED, expiring
//	DELETED, expiring ─DynamoDB TTL─▶ (absent)

// Status is where a record is in the account's life.
type Status string

// The statuses. A record that does not exist has the empty Status.
const (
	// StatusPending: a claim is held to create the Kandy user, or was,
	// and the record stays as evidence that the user may exist.
	StatusPending Status = "PENDING"
	// StatusActive: Kandy's answer is stored.
	StatusActive Status = "ACTIVE"
	// StatusDeleting: a claim is held to delete the Kandy user.
	StatusDeleting Status = "DELETING"
	// StatusDeleted: a tombstone. The Kandy user is gone and no automatic
	// path provisions the user again; only their own POST /users does.
	StatusDeleted Status = "DELETED"
)

// TombstoneTTL is how long the tombstone of a user who left the pool is
// kept: past SQS's longest retention (14 days), so no queued sign-up
// outlives it.
const TombstoneTTL = 30 * 24 * time.Hour

// ClaimLive is the one liveness rule: a claim holds until the instant it
// expires, and not at that instant.
func ClaimLive(expiresAt, now time.Time) bool { return now.Before(expiresAt) }

// Exists reports whether r is a record rather than the absence of one.
func (r Record) Exists() bool { return r.Status != "" }

// Held reports whether r is PENDING or DELETING under a claim live at now.
func (r Record) Held(now time.Time) bool {
	return (r.Status == StatusPending || r.Status == StatusDeleting) && ClaimLive(r.ClaimExpiresAt, now)
}

// Expired reports whether DynamoDB's TTL may remove r at now: a tombstone
// of a user who left the pool, past its expiry.
func (r Record) Expired(now time.Time) bool { return !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt) }

// heldBy reports whether r is in status under c's claim.
func heldBy(r Record, c Claim, status Status) bool {
	return r.Status == status && r.ClaimToken == c.Token
}

// MayClaim reports whether c may take cur to create the account: cur is
// absent, or PENDING with an expired claim. A tombstone, and a delete
// abandoned half-way, are taken only by the user's own request.
func MayClaim(cur Record, c Claim) bool {
	switch cur.Status {
	case "":
		return true
	case StatusPending:
		return !ClaimLive(cur.ClaimExpiresAt, c.Now)
	case StatusDeleting:
		return c.ByUser && !ClaimLive(cur.ClaimExpiresAt, c.Now)
	case StatusDeleted:
		return c.ByUser
	}
	return false
}

// MayFinalize reports whether c may store Kandy's answer in cur: cur is
// PENDING under c, expired or not, as long as nobody took it over.
func MayFinalize(cur Record, c Claim) bool { return heldBy(cur, c, StatusPending) }

// MayRelease reports whether c may end its claim on cur, keeping the record.
func MayRelease(cur Record, c Claim) bool { return heldBy(cur, c, StatusPending) }

// MayDrop reports whether c may delete cur, its claim's PENDING record.
func MayDrop(cur Record, c Claim) bool { return heldBy(cur, c, StatusPending) }

// MayClaimDelete reports whether c may take cur to delete the account,
// cur having been read as seen: it is still as seen (the same status and
// generation, or absent as seen) and holds no live claim.
func MayClaimDelete(cur, seen Record, c Claim) bool {
	return cur.Status == seen.Status && cur.Generation == seen.Generation && !cur.Held(c.Now)
}

// MayFinishDelete reports whether c may end its delete of cur.
func MayFinishDelete(cur Record, c Claim) bool { return heldBy(cur, c, StatusDeleting) }

// MayExpire reports whether the tombstone cur, read as seen, may be given
// an expiry: it is still that tombstone, and has none.
func MayExpire(cur, seen Record) bool {
	return cur.Status == StatusDeleted && cur.Generation == seen.Generation && cur.ExpiresAt.IsZero()
}

// Wrote reports whether cur is what c's own write to status left. A write
// whose answer is lost is retried by the SDK, and the retry fails its
// condition when the first attempt took effect: the record says which.
// Status "" asks whether c's write removed the record.
func (c Claim) Wrote(cur Record, status Status) bool {
	if status == "" {
		return !cur.Exists()
	}
	return cur.Status == status && cur.Generation == c.Token
}

// Ending is what a finished delete leaves.
type Ending struct {
	// Tombstone keeps a DELETED record; without it the record is removed,
	// as a repair does, so an automatic path may provision the user again.
	Tombstone bool
	// ExpiresAt, if set, is when DynamoDB's TTL removes the tombstone.
	ExpiresAt time.Time
}
