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
		auto, re bool // automatic caller; the user's own request
	}{
		{"", time.Time{}, true, true},
		{provision.StatusPending, live, false, false},
		{provision.StatusPending, expired, true, true},
		{provision.StatusDeleting, live, false, false},
		{provision.StatusDeleting, expired, false, true},
		{provision.StatusActive, time.Time{}, false, false},
		{provision.StatusDeleted, time.Time{}, false, true},
	} {
		for _, byUser := range []bool{false, true} {
			want := map[bool]bool{false: tt.auto, true: tt.re}[byUser]
			c := provision.Claim{Sub: "s", Token: "new", Now: t0, ExpiresAt: t0.Add(time.Minute), ByUser: byUser}
			cur := record(tt.status, tt.expires)
			if tt.status == "" {
				cur = provision.Record{}
			}
			if got := provision.MayClaim(cur, c); got != want {
				t.Errorf("%q (claim until %v), by user %v: MayClaim = %v, want %v", tt.status, tt.expires.Sub(t0), byUser, got, want)
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
		"MayFinalize": provision.MayFinalize, "MayRelease": provision.MayRelease, "MayDrop": provision.MayDrop,
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
