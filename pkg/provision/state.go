package provision

import "time"

// The account's state machine: one record per sub. This file is the one
// home of its rules: which transition may happen from which record, when
// a claim is live, and what a record means to each caller: what the API
// answers, what a removal does, which class reconcile gives it and how
// that class is repaired. Nothing else compares a Status but the stores,
// which turn each transition's rule into a conditional write (pkg/store
// into a DynamoDB condition expression, internal/testing/memstore into
// ifs); both pass internal/testing/accountstest.
//
//	(absent) ─Claim─▶ PENDING ─Finalize─▶ ACTIVE
//	PENDING ─Drop (Kandy surely created nothing)─▶ (absent)
//	PENDING ─Release (Kandy may have created the user)─▶ PENDING, claim ended: evidence
//	PENDING, claim expired ─Claim─▶ PENDING
//	DELETING, claim expired ─Claim, by the user only─▶ PENDING (not once they left the pool)
//	DELETED ─Claim, by the user only─▶ PENDING (not once they left the pool)
//	(absent), ACTIVE, DELETED or a claim expired ─ClaimDelete─▶ DELETING,
//	    expiring if the user left the pool
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

// LeftPool reports whether r is the tombstone, or the delete under way,
// of a user who left the pool: the one that expires. Leaving is final for
// every path, the user's own still-valid token included.
func (r Record) LeftPool() bool {
	return (r.Status == StatusDeleted || r.Status == StatusDeleting) && !r.ExpiresAt.IsZero()
}

// heldBy reports whether r is in status under c's claim.
func heldBy(r Record, c Claim, status Status) bool {
	return r.Status == status && r.ClaimToken == c.Token
}

// MayClaim reports whether c may take cur to create the account: cur is
// absent, or PENDING with an expired claim. A tombstone, and a delete
// abandoned half-way, are taken only by the user's own request, and never
// once the user has left the pool.
func MayClaim(cur Record, c Claim) bool {
	switch cur.Status {
	case "":
		return true
	case StatusPending:
		return !ClaimLive(cur.ClaimExpiresAt, c.Now)
	case StatusDeleting:
		return c.ByUser && !cur.LeftPool() && !ClaimLive(cur.ClaimExpiresAt, c.Now)
	case StatusDeleted:
		return c.ByUser && !cur.LeftPool()
	}
	return false
}

// MayEndCreate reports whether c may end its creation on cur: store
// Kandy's answer (Finalize), end the claim and keep the record as evidence
// (Release), or remove the record (Drop). All three need cur to be PENDING
// under c, expired or not, as long as nobody took it over.
func MayEndCreate(cur Record, c Claim) bool { return heldBy(cur, c, StatusPending) }

// MayClaimDelete reports whether c may take cur to delete the account,
// cur having been read as seen: it is still as seen (the same status,
// generation and expiry, or absent as seen) and holds no live claim.
func MayClaimDelete(cur, seen Record, c Claim) bool {
	return cur.Status == seen.Status && cur.Generation == seen.Generation && cur.ExpiresAt.Equal(seen.ExpiresAt) &&
		!cur.Held(c.Now)
}

// MayFinishDelete reports whether c may end its delete of cur.
func MayFinishDelete(cur Record, c Claim) bool { return heldBy(cur, c, StatusDeleting) }

// MayExpire reports whether the tombstone cur, read as seen, may be given
// an expiry: it is still that tombstone, and has none.
func MayExpire(cur, seen Record) bool {
	return cur.Status == StatusDeleted && cur.Generation == seen.Generation && cur.ExpiresAt.IsZero()
}

// What a record means to each caller.

// Read is what a read of the account answers for r (GET /users/me, the
// token route): the account when ACTIVE; ErrInProgress while a creation
// holds its claim; ErrAccountDeleted for a tombstone; ErrNotProvisioned
// for no record, a delete under way or a creation given up. The last
// three are ErrNotProvisioned to a caller.
func (r Record) Read(now time.Time) (Record, error) {
	switch {
	case r.Status == StatusActive:
		return r, nil
	case r.Status == StatusPending && r.Held(now):
		return Record{}, ErrInProgress
	case r.Status == StatusDeleted:
		return Record{}, ErrAccountDeleted
	}
	return Record{}, ErrNotProvisioned
}

// Unclaimed is what Ensure answers with r, a record c could not take, at
// c's instant, as the store judged it: the account when ACTIVE;
// ErrInProgress while a claim is live, or when c may take r after all (the
// record changed under the claim, as a take-over lost to another request);
// ErrAccountClosed when the user left the pool; ErrAccountDeleted for any
// other tombstone, to every caller but the user themselves.
func (r Record) Unclaimed(c Claim) (Account, error) {
	switch {
	case r.Status == StatusActive:
		return r.account(), nil
	case r.Held(c.Now), MayClaim(r, c):
		return Account{}, ErrInProgress
	case r.LeftPool():
		return Account{}, ErrAccountClosed
	case r.Status == StatusDeleted, r.Status == StatusDeleting:
		return Account{}, ErrAccountDeleted
	}
	return Account{}, ErrInProgress
}

// HadAccount reports whether r, read before a delete, held an account for
// the user to delete: ACTIVE, or a delete under way that theirs finishes.
func (r Record) HadAccount() bool { return r.Status == StatusActive || r.Status == StatusDeleting }

// Removal is what removing an account does to the record it read.
type Removal int

const (
	// RemoveNothing: the record is already the tombstone the removal leaves.
	RemoveNothing Removal = iota
	// RemoveExpire: a kept tombstone, of a user who now leaves the pool,
	// is given its expiry.
	RemoveExpire
	// RemoveRecord: the Kandy user, if there is a record, and the record
	// go under a delete claim, and end takes the record's place.
	RemoveRecord
)

// Removal says what removing r leaves as end says. A tombstone stays as it
// is, but for the expiry of a user leaving the pool; anything else goes.
func (r Record) Removal(end Ending) Removal {
	switch {
	case r.Status != StatusDeleted:
		return RemoveRecord
	case !end.ExpiresAt.IsZero() && r.ExpiresAt.IsZero():
		return RemoveExpire
	}
	return RemoveNothing
}

// Keeping is end, unless r is a user's who left the pool: then whatever
// replaces r is their expiring tombstone, so no path brings them back.
func (r Record) Keeping(end Ending) Ending {
	if r.LeftPool() {
		return Ending{Tombstone: true, ExpiresAt: r.ExpiresAt}
	}
	return end
}

// Decryptable reports whether r holds credentials to read.
func (r Record) Decryptable() bool { return r.Status == StatusActive }

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

// Drift is how a sub's record disagrees with its Cognito user and its
// Kandy user: reconcile's classes, each with one repair.
type Drift string

// The classes of drift, in the order reconcile reports them.
const (
	// DriftMissing: a confirmed Cognito user with no record. Repair: provision.
	DriftMissing Drift = "missing"
	// DriftGone: a record or a Kandy user whose Cognito user no longer
	// exists. Repair: delete the Kandy user, leave an expiring tombstone.
	DriftGone Drift = "gone"
	// DriftOrphan: a Kandy user of our id scheme with no record, whose
	// Cognito user never confirmed, or under a tombstone. Repair: delete it.
	DriftOrphan Drift = "orphan"
	// DriftStale: a PENDING or DELETING record whose claim expired. Repair:
	// take it over as Ensure and Delete do: a confirmed user's creation is
	// finished, a delete is finished into a tombstone, and an unconfirmed
	// user's record is deleted.
	DriftStale Drift = "stale"
	// DriftBroken: an ACTIVE record whose Kandy user is missing, or holds
	// other credentials. Repair: delete what is left, then provision again.
	DriftBroken Drift = "broken"
	// DeletedByUser: a user still in the pool who deleted their account (a
	// tombstone). It records a choice: reported, never repaired, never
	// counted as drift, and never provisioned as missing.
	DeletedByUser Drift = "deleted_by_user"
)

// Drifts lists every class.
var Drifts = []Drift{DriftMissing, DriftGone, DriftOrphan, DriftStale, DriftBroken, DeletedByUser}

// Deletes reports whether repairing d deletes a Kandy user that exists.
func (d Drift) Deletes() bool { return d == DriftGone || d == DriftOrphan || d == DriftBroken }

// IsDrift reports whether d is a disagreement to repair, rather than a
// state the account's life allows.
func (d Drift) IsDrift() bool { return d != DeletedByUser }

// Observed is what reconcile read of a sub outside its record.
type Observed struct {
	InPool    bool // a Cognito user has the sub
	Confirmed bool // and is confirmed
	Kandy     bool // a Kandy user has the sub's user id
	SameKey   bool // and its API key is the record's
}

// Repair is what fixing a class of drift does.
type Repair int

const (
	// RepairNothing: the record is left as it is.
	RepairNothing Repair = iota
	// RepairProvision: Ensure, as an automatic path.
	RepairProvision
	// RepairLeave: ask Cognito again, then delete the Kandy user and leave
	// the expiring tombstone of a user who left the pool.
	RepairLeave
	// RepairFinish: finish a delete left half-way into a tombstone.
	RepairFinish
	// RepairUnder: delete a Kandy user under a tombstone; the tombstone
	// stays as it was.
	RepairUnder
	// RepairRebuild: delete what is left, then provision again.
	RepairRebuild
	// RepairRemove: delete the Kandy user and the record, leaving nothing.
	RepairRemove
)

// Judgement is reconcile's verdict on one sub.
type Judgement struct {
	// Busy: a claim is live, a request is working on it: not judged.
	Busy bool
	// Drift is the class; "" when the three systems agree, or when an
	// unconfirmed user has no account yet.
	Drift Drift
	Why   string
	// Repair is what fixing Drift does to this record.
	Repair Repair
}

// Judge classifies r (absent: no Status) against what reconcile observed
// at now, and says how it is repaired.
func (r Record) Judge(o Observed, now time.Time) Judgement {
	tomb := r.Status == StatusDeleted
	switch {
	case r.Held(now):
		return Judgement{Busy: true}
	case tomb && o.Kandy:
		return Judgement{Drift: DriftOrphan, Why: "a Kandy user under a tombstone", Repair: RepairUnder}
	case tomb && o.InPool:
		return Judgement{Drift: DeletedByUser, Why: "the user deleted their account and stays in the pool"}
	case tomb:
		return Judgement{} // a user who left the pool: nothing anywhere
	case !o.InPool && (r.Exists() || o.Kandy):
		return Judgement{Drift: DriftGone, Why: "the Cognito user no longer exists", Repair: RepairLeave}
	case r.Status == StatusDeleting:
		return Judgement{Drift: DriftStale, Why: "a DELETING record whose claim expired", Repair: RepairFinish}
	case r.Status == StatusPending && o.Confirmed:
		return Judgement{Drift: DriftStale, Why: "a PENDING record whose claim expired", Repair: RepairProvision}
	case r.Status == StatusPending:
		return Judgement{Drift: DriftStale, Why: "a PENDING record whose claim expired", Repair: RepairRemove}
	case r.Exists() && !o.Kandy:
		return Judgement{Drift: DriftBroken, Why: "the ACTIVE record's Kandy user does not exist", Repair: RepairRebuild}
	case r.Exists() && !o.SameKey:
		return Judgement{Drift: DriftBroken, Why: "the ACTIVE record holds other credentials than its Kandy user", Repair: RepairRebuild}
	case r.Exists():
		return Judgement{}
	case o.Confirmed && o.Kandy:
		return Judgement{Drift: DriftMissing, Why: "a confirmed user with no record, and a Kandy user left behind", Repair: RepairProvision}
	case o.Confirmed:
		return Judgement{Drift: DriftMissing, Why: "a confirmed user with no account", Repair: RepairProvision}
	case o.Kandy:
		return Judgement{Drift: DriftOrphan, Why: "a Kandy user with no record, of a user who never confirmed", Repair: RepairRemove}
	}
	return Judgement{} // an unconfirmed user with no account: nothing to do yet
}

// Ending is what repair leaves of r, for the repairs that delete: an
// expiring tombstone from at for a user who left the pool, a finished
// delete's tombstone (expiring if it was a user leaving), the tombstone as
// it was under an orphan, and nothing otherwise.
func (r Record) Ending(repair Repair, at time.Time) Ending {
	switch repair {
	case RepairLeave:
		return Ending{Tombstone: true, ExpiresAt: at.Add(TombstoneTTL)}
	case RepairFinish, RepairUnder:
		return Ending{Tombstone: true, ExpiresAt: r.ExpiresAt}
	}
	return r.Keeping(Ending{})
}
