package provision_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

var t0 = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

// A claim holds until, and not at, its instant of expiry.
func TestClaimLive(t *testing.T) {
	for _, tt := range []struct {
		expires time.Time
		want    bool
	}{
		{t0.Add(time.Millisecond), true},
		{t0, false},
		{t0.Add(-time.Millisecond), false},
	} {
		if got := provision.ClaimLive(tt.expires, t0); got != tt.want {
			t.Errorf("expiring %v from now: live = %v, want %v", tt.expires.Sub(t0), got, tt.want)
		}
	}
}

// record is a record of status whose claim, if any, expires at expires.
func record(status provision.Status, expires time.Time) provision.Record {
	r := provision.Record{Sub: "s", Status: status, Generation: "g"}
	if status == provision.StatusPending || status == provision.StatusDeleting {
		r.ClaimToken, r.ClaimExpiresAt = "g", expires
	}
	return r
}

func TestHeld(t *testing.T) {
	for _, tt := range []struct {
		status  provision.Status
		expires time.Time
		want    bool
	}{
		{provision.StatusPending, t0.Add(time.Millisecond), true},
		{provision.StatusDeleting, t0.Add(time.Millisecond), true},
		{provision.StatusPending, t0, false},
		{provision.StatusDeleting, t0, false},
		{provision.StatusActive, t0.Add(time.Hour), false},
		{provision.StatusDeleted, t0.Add(time.Hour), false},
		{"", t0.Add(time.Hour), false},
	} {
		r := record(tt.status, tt.expires)
		r.ClaimExpiresAt = tt.expires
		if got := r.Held(t0); got != tt.want {
			t.Errorf("%q expiring in %v: held = %v, want %v", tt.status, tt.expires.Sub(t0), got, tt.want)
		}
	}
}

// Who may claim what to create an account: the whole table of the rule.
func TestMayClaim(t *testing.T) {
	live, expired := t0.Add(time.Millisecond), t0
	for _, tt := range []struct {
		status   provision.Status
		expires  time.Time
		left     bool // the user left the pool: the record expires
		auto, re bool // automatic caller; the user's own request
	}{
		{"", time.Time{}, false, true, true},
		{provision.StatusPending, live, false, false, false},
		{provision.StatusPending, expired, false, true, true},
		{provision.StatusDeleting, live, false, false, false},
		{provision.StatusDeleting, expired, false, false, true},
		{provision.StatusDeleting, expired, true, false, false},
		{provision.StatusActive, time.Time{}, false, false, false},
		{provision.StatusDeleted, time.Time{}, false, false, true},
		{provision.StatusDeleted, time.Time{}, true, false, false},
	} {
		for _, byUser := range []bool{false, true} {
			want := map[bool]bool{false: tt.auto, true: tt.re}[byUser]
			c := provision.Claim{Sub: "s", Token: "new", Now: t0, ExpiresAt: t0.Add(time.Minute), ByUser: byUser}
			cur := record(tt.status, tt.expires)
			if tt.status == "" {
				cur = provision.Record{}
			}
			if tt.left {
				cur.ExpiresAt = t0.Add(provision.TombstoneTTL)
			}
			if got := provision.MayClaim(cur, c); got != want {
				t.Errorf("%q (claim until %v, left the pool %v), by user %v: MayClaim = %v, want %v", tt.status, tt.expires.Sub(t0), tt.left, byUser, got, want)
			}
		}
	}
}

func TestMayClaimDelete(t *testing.T) {
	c := provision.Claim{Sub: "s", Token: "del", Now: t0, ExpiresAt: t0.Add(time.Minute)}
	for _, tt := range []struct {
		name      string
		cur, seen provision.Record
		want      bool
	}{
		{"nothing, seen as nothing", provision.Record{}, provision.Record{Sub: "s"}, true},
		{"ACTIVE as seen", record(provision.StatusActive, time.Time{}), record(provision.StatusActive, time.Time{}), true},
		{"a tombstone as seen", record(provision.StatusDeleted, time.Time{}), record(provision.StatusDeleted, time.Time{}), true},
		{"an expired creation as seen", record(provision.StatusPending, t0), record(provision.StatusPending, t0), true},
		{"a live creation", record(provision.StatusPending, t0.Add(time.Millisecond)), record(provision.StatusPending, t0.Add(time.Millisecond)), false},
		{"a live delete", record(provision.StatusDeleting, t0.Add(time.Millisecond)), record(provision.StatusDeleting, t0.Add(time.Millisecond)), false},
		{"a record where none was seen", record(provision.StatusActive, time.Time{}), provision.Record{Sub: "s"}, false},
		{"nothing where a record was seen", provision.Record{}, record(provision.StatusActive, time.Time{}), false},
		{"another generation", record(provision.StatusActive, time.Time{}), func() provision.Record {
			r := record(provision.StatusActive, time.Time{})
			r.Generation = "older"
			return r
		}(), false},
		{"another status", record(provision.StatusDeleted, time.Time{}), record(provision.StatusActive, time.Time{}), false},
		{"a tombstone given an expiry since", leftPool(provision.StatusDeleted), record(provision.StatusDeleted, time.Time{}), false},
	} {
		if got := provision.MayClaimDelete(tt.cur, tt.seen, c); got != tt.want {
			t.Errorf("%s: MayClaimDelete = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// Finalize, release, drop and finish act only under their own claim, in
// their own status, whether the claim has expired or not.
func TestHeldTransitions(t *testing.T) {
	mine := provision.Claim{Sub: "s", Token: "g", Now: t0.Add(time.Hour)}
	theirs := provision.Claim{Sub: "s", Token: "other", Now: t0}
	for name, may := range map[string]func(provision.Record, provision.Claim) bool{
		"MayEndCreate": provision.MayEndCreate,
	} {
		if !may(record(provision.StatusPending, t0), mine) {
			t.Errorf("%s refuses the claim's own expired PENDING record", name)
		}
		if may(record(provision.StatusPending, t0), theirs) {
			t.Errorf("%s allows another claim", name)
		}
		if may(record(provision.StatusDeleting, t0), mine) {
			t.Errorf("%s allows a DELETING record", name)
		}
		if may(provision.Record{}, mine) {
			t.Errorf("%s allows no record", name)
		}
	}
	if !provision.MayFinishDelete(record(provision.StatusDeleting, t0), mine) {
		t.Error("MayFinishDelete refuses the claim's own DELETING record")
	}
	if provision.MayFinishDelete(record(provision.StatusDeleting, t0), theirs) {
		t.Error("MayFinishDelete allows another claim")
	}
	if provision.MayFinishDelete(record(provision.StatusPending, t0), mine) {
		t.Error("MayFinishDelete allows a PENDING record")
	}
}

func TestMayExpire(t *testing.T) {
	tomb := record(provision.StatusDeleted, time.Time{})
	expiring := tomb
	expiring.ExpiresAt = t0
	other := tomb
	other.Generation = "other"
	for _, tt := range []struct {
		name      string
		cur, seen provision.Record
		want      bool
	}{
		{"a kept tombstone", tomb, tomb, true},
		{"one that expires already", expiring, tomb, false},
		{"another tombstone", other, tomb, false},
		{"no tombstone", record(provision.StatusActive, time.Time{}), record(provision.StatusActive, time.Time{}), false},
	} {
		if got := provision.MayExpire(tt.cur, tt.seen); got != tt.want {
			t.Errorf("%s: MayExpire = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestWrote(t *testing.T) {
	c := provision.Claim{Token: "g"}
	for _, tt := range []struct {
		cur    provision.Record
		status provision.Status
		want   bool
	}{
		{record(provision.StatusActive, time.Time{}), provision.StatusActive, true},
		{record(provision.StatusPending, t0), provision.StatusActive, false},
		{func() provision.Record {
			r := record(provision.StatusActive, time.Time{})
			r.Generation = "x"
			return r
		}(), provision.StatusActive, false},
		{provision.Record{}, "", true},
		{record(provision.StatusDeleted, time.Time{}), "", false},
	} {
		if got := c.Wrote(tt.cur, tt.status); got != tt.want {
			t.Errorf("%s", fmt.Sprintf("Wrote(%q gen %q, %q) = %v, want %v", tt.cur.Status, tt.cur.Generation, tt.status, got, tt.want))
		}
	}
}

// leftPool is the record of status of a user who left the pool.
func leftPool(status provision.Status) provision.Record {
	r := record(status, t0)
	r.ExpiresAt = t0.Add(provision.TombstoneTTL)
	return r
}

// What each caller is told of each record: a read, Ensure when its claim
// could not take the record, and a delete.
func TestWhatARecordMeans(t *testing.T) {
	live, expired := t0.Add(time.Millisecond), t0
	for _, tt := range []struct {
		name       string
		rec        provision.Record
		read       error
		unclaimed  error
		hadAccount bool
	}{
		{"no record", provision.Record{}, provision.ErrNotProvisioned, provision.ErrInProgress, false},
		{"ACTIVE", record(provision.StatusActive, time.Time{}), nil, nil, true},
		{"a live creation", record(provision.StatusPending, live), provision.ErrInProgress, provision.ErrInProgress, false},
		{"a creation given up", record(provision.StatusPending, expired), provision.ErrNotProvisioned, provision.ErrInProgress, false},
		{"a live delete", record(provision.StatusDeleting, live), provision.ErrNotProvisioned, provision.ErrInProgress, true},
		{"a delete left half-way", record(provision.StatusDeleting, expired), provision.ErrNotProvisioned, provision.ErrAccountDeleted, true},
		{"the user's tombstone", record(provision.StatusDeleted, time.Time{}), provision.ErrAccountDeleted, provision.ErrAccountDeleted, false},
		{"a user leaving the pool", leftPool(provision.StatusDeleting), provision.ErrNotProvisioned, provision.ErrAccountClosed, true},
		{"a user who left the pool", leftPool(provision.StatusDeleted), provision.ErrAccountDeleted, provision.ErrAccountClosed, false},
	} {
		rec, err := tt.rec.Read(t0)
		if err != tt.read || (err == nil) != (rec.Status == provision.StatusActive) {
			t.Errorf("%s: Read = %v, %v; want %v", tt.name, rec.Status, err, tt.read)
		}
		if _, err := tt.rec.Unclaimed(provision.Claim{Now: t0}); err != tt.unclaimed {
			t.Errorf("%s: Unclaimed = %v, want %v", tt.name, err, tt.unclaimed)
		}
		if got := tt.rec.HadAccount(); got != tt.hadAccount {
			t.Errorf("%s: HadAccount = %v, want %v", tt.name, got, tt.hadAccount)
		}
	}
	active := record(provision.StatusActive, time.Time{})
	active.UserID = "u"
	// To the user, a tombstone or a delete left half-way that their claim
	// may take is one that changed under it: in progress, to try again.
	for _, r := range []provision.Record{record(provision.StatusDeleted, time.Time{}), record(provision.StatusDeleting, expired)} {
		if _, err := r.Unclaimed(provision.Claim{Now: t0, ByUser: true}); err != provision.ErrInProgress {
			t.Errorf("%s to the user: Unclaimed = %v, want ErrInProgress", r.Status, err)
		}
	}
	if _, err := leftPool(provision.StatusDeleted).Unclaimed(provision.Claim{Now: t0, ByUser: true}); err != provision.ErrAccountClosed {
		t.Errorf("a departure's tombstone to the user: Unclaimed = %v, want ErrAccountClosed", err)
	}
	if a, _ := active.Unclaimed(provision.Claim{Now: t0}); a.UserID != "u" {
		t.Errorf("Unclaimed of ACTIVE answers %+v, want its account", a)
	}
}

// A removal leaves a tombstone as it is, gives a kept one the expiry of a
// user leaving the pool, and deletes anything else; whatever replaces the
// record of a user who left is their expiring tombstone.
func TestRemoval(t *testing.T) {
	leave := provision.Ending{Tombstone: true, ExpiresAt: t0.Add(time.Hour)}
	ask := provision.Ending{Tombstone: true}
	for _, tt := range []struct {
		name string
		rec  provision.Record
		end  provision.Ending
		want provision.Removal
	}{
		{"no record", provision.Record{}, ask, provision.RemoveRecord},
		{"ACTIVE", record(provision.StatusActive, time.Time{}), leave, provision.RemoveRecord},
		{"a delete left half-way", record(provision.StatusDeleting, t0), ask, provision.RemoveRecord},
		{"a kept tombstone, asked again", record(provision.StatusDeleted, time.Time{}), ask, provision.RemoveNothing},
		{"a kept tombstone, the user leaving", record(provision.StatusDeleted, time.Time{}), leave, provision.RemoveExpire},
		{"an expiring tombstone, leaving again", leftPool(provision.StatusDeleted), leave, provision.RemoveNothing},
	} {
		if got := tt.rec.Removal(tt.end); got != tt.want {
			t.Errorf("%s: Removal = %v, want %v", tt.name, got, tt.want)
		}
	}
	left := leftPool(provision.StatusDeleting)
	if got := left.Keeping(provision.Ending{}); !got.Tombstone || !got.ExpiresAt.Equal(left.ExpiresAt) {
		t.Errorf("a user who left keeps %+v, want their expiring tombstone", got)
	}
	if got := record(provision.StatusActive, time.Time{}).Keeping(ask); got != ask {
		t.Errorf("an ACTIVE record keeps %+v, want %+v", got, ask)
	}
}

// Reconcile's classes and repairs: the whole table.
func TestJudge(t *testing.T) {
	in, confirmed, kandy, same := true, true, true, true
	active := record(provision.StatusActive, time.Time{})
	for _, tt := range []struct {
		name   string
		rec    provision.Record
		o      provision.Observed
		drift  provision.Drift
		repair provision.Repair
		busy   bool
	}{
		{"a live claim", record(provision.StatusPending, t0.Add(time.Second)), provision.Observed{}, "", provision.RepairNothing, true},
		{"a Kandy user under a tombstone", record(provision.StatusDeleted, time.Time{}), provision.Observed{InPool: in, Kandy: kandy}, provision.DriftOrphan, provision.RepairUnder, false},
		{"the user's tombstone", record(provision.StatusDeleted, time.Time{}), provision.Observed{InPool: in, Confirmed: confirmed}, provision.DeletedByUser, provision.RepairNothing, false},
		{"a user who left", leftPool(provision.StatusDeleted), provision.Observed{}, "", provision.RepairNothing, false},
		{"a record of a user gone", active, provision.Observed{Kandy: kandy, SameKey: same}, provision.DriftGone, provision.RepairLeave, false},
		{"a Kandy user of a user gone", provision.Record{}, provision.Observed{Kandy: kandy}, provision.DriftGone, provision.RepairLeave, false},
		{"a delete left half-way", record(provision.StatusDeleting, t0), provision.Observed{InPool: in}, provision.DriftStale, provision.RepairFinish, false},
		{"a confirmed user's creation given up", record(provision.StatusPending, t0), provision.Observed{InPool: in, Confirmed: confirmed}, provision.DriftStale, provision.RepairProvision, false},
		{"an unconfirmed user's creation given up", record(provision.StatusPending, t0), provision.Observed{InPool: in}, provision.DriftStale, provision.RepairRemove, false},
		{"ACTIVE, no Kandy user", active, provision.Observed{InPool: in, Confirmed: confirmed}, provision.DriftBroken, provision.RepairRebuild, false},
		{"ACTIVE, another key", active, provision.Observed{InPool: in, Confirmed: confirmed, Kandy: kandy}, provision.DriftBroken, provision.RepairRebuild, false},
		{"in agreement", active, provision.Observed{InPool: in, Confirmed: confirmed, Kandy: kandy, SameKey: same}, "", provision.RepairNothing, false},
		{"missing, a Kandy user left", provision.Record{}, provision.Observed{InPool: in, Confirmed: confirmed, Kandy: kandy}, provision.DriftMissing, provision.RepairProvision, false},
		{"missing", provision.Record{}, provision.Observed{InPool: in, Confirmed: confirmed}, provision.DriftMissing, provision.RepairProvision, false},
		{"an orphan of a user never confirmed", provision.Record{}, provision.Observed{InPool: in, Kandy: kandy}, provision.DriftOrphan, provision.RepairRemove, false},
		{"an unconfirmed user, nothing yet", provision.Record{}, provision.Observed{InPool: in}, "", provision.RepairNothing, false},
	} {
		j := tt.rec.Judge(tt.o, t0)
		if j.Drift != tt.drift || j.Repair != tt.repair || j.Busy != tt.busy || (j.Drift != "") != (j.Why != "") {
			t.Errorf("%s: %+v, want %q, repair %v, busy %v", tt.name, j, tt.drift, tt.repair, tt.busy)
		}
	}
}

// What each deleting repair leaves in place of the record.
func TestRepairEndings(t *testing.T) {
	tomb := record(provision.StatusDeleted, time.Time{})
	left := leftPool(provision.StatusDeleting)
	for _, tt := range []struct {
		name   string
		rec    provision.Record
		repair provision.Repair
		want   provision.Ending
	}{
		{"a user gone", record(provision.StatusActive, time.Time{}), provision.RepairLeave, provision.Ending{Tombstone: true, ExpiresAt: t0.Add(provision.TombstoneTTL)}},
		{"a delete left half-way", record(provision.StatusDeleting, t0), provision.RepairFinish, provision.Ending{Tombstone: true}},
		{"a departure left half-way", left, provision.RepairFinish, provision.Ending{Tombstone: true, ExpiresAt: left.ExpiresAt}},
		{"an orphan under a tombstone", tomb, provision.RepairUnder, provision.Ending{Tombstone: true}},
		{"a broken record", record(provision.StatusActive, time.Time{}), provision.RepairRebuild, provision.Ending{}},
		{"an orphan", provision.Record{}, provision.RepairRemove, provision.Ending{}},
	} {
		if got := tt.rec.Ending(tt.repair, t0); got != tt.want {
			t.Errorf("%s: Ending = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestDrifts(t *testing.T) {
	for _, d := range provision.Drifts {
		if d.Deletes() != (d == provision.DriftGone || d == provision.DriftOrphan || d == provision.DriftBroken) {
			t.Errorf("%s: Deletes = %v", d, d.Deletes())
		}
		if d.IsDrift() == (d == provision.DeletedByUser) {
			t.Errorf("%s: IsDrift = %v", d, d.IsDrift())
		}
	}
}
