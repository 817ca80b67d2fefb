package store

import (
	"context"
	"errors"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// These tests hold the store to what it asks DynamoDB and to how it reads
// the answers, with a fake of the four calls. local/integration runs the
// same store against dynalite, where the conditions are evaluated.

const table = "accounts"

var ctx = context.Background()

func claimAt(token string, byUser bool) provision.Claim {
	return provision.Claim{Sub: "s", UserID: "u", Token: token, Now: now, ExpiresAt: now.Add(30 * time.Second), ByUser: byUser}
}

// stored is a record as DynamoDB returns it.
func stored(status string, token string, claimExpires time.Time) map[string]types.AttributeValue {
	return item{Sub: "s", UserID: "u", Status: status, ClaimToken: token, ClaimExpiresAt: claimExpires.UnixMilli(),
		CreatedAt: "2026-11-01T00:00:00.000Z", UpdatedAt: "2026-11-02T00:00:00.000Z"}.attributes()
}

func text(t *testing.T, av types.AttributeValue) string {
	t.Helper()
	s, ok := av.(*types.AttributeValueMemberS)
	if !ok {
		t.Fatalf("%#v is not a string", av)
	}
	return s.Value
}

func number(t *testing.T, av types.AttributeValue) string {
	t.Helper()
	n, ok := av.(*types.AttributeValueMemberN)
	if !ok {
		t.Fatalf("%#v is not a number", av)
	}
	return n.Value
}

// values turns expression values into text, numbers prefixed with "N:".
func values(t *testing.T, avs map[string]types.AttributeValue) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, av := range avs {
		if _, ok := av.(*types.AttributeValueMemberN); ok {
			out[k] = "N:" + number(t, av)
		} else {
			out[k] = text(t, av)
		}
	}
	return out
}

func ms(tm time.Time) string { return "N:" + strconv.FormatInt(tm.UnixMilli(), 10) }

const nowStamp = "2026-11-25T09:30:00.123Z"

func isDependency(err error) bool {
	var dep *provision.DependencyError
	return errors.As(err, &dep) && dep.Dependency == "dynamodb"
}

func TestClaimOfANewSubIsOneUpdateCreatingThePendingRecord(t *testing.T) {
	f := &fakeDynamo{}
	rec, claimed, err := NewAccounts(f, table).Claim(ctx, claimAt("t1", false))
	if err != nil || !claimed || rec.Exists() {
		t.Fatalf("Claim = %+v, %v, %v; want nothing seen, claimed", rec, claimed, err)
	}
	if len(f.updates) != 1 || len(f.puts) != 0 || len(f.gets) != 0 {
		t.Fatalf("calls: %d updates, %d puts, %d gets; want one update", len(f.updates), len(f.puts), len(f.gets))
	}
	in := f.updates[0]
	if *in.TableName != table || text(t, in.Key["sub"]) != "s" || *in.UpdateExpression != updateClaim ||
		in.ReturnValues != types.ReturnValueAllOld || in.ConditionExpression != nil {
		t.Errorf("update %+v", in)
	}
	want := map[string]string{":pending": "PENDING", ":uid": "u", ":token": "t1",
		":expires": ms(now.Add(30 * time.Second)), ":stamp": nowStamp}
	if got := values(t, in.ExpressionAttributeValues); !reflect.DeepEqual(got, want) {
		t.Errorf("values %v, want %v", got, want)
	}
}

func TestClaimLeavesALiveOrFinishedRecordAsItWas(t *testing.T) {
	for name, c := range map[string]struct {
		old    map[string]types.AttributeValue
		byUser bool
	}{
		"active":                             {stored("ACTIVE", "g", now.Add(-time.Hour)), true},
		"pending, live":                      {stored("PENDING", "g", now.Add(time.Millisecond)), true},
		"tombstone, not by the user":         {stored("DELETED", "g", now.Add(-time.Hour)), false},
		"deleting, expired, not by the user": {stored("DELETING", "g", now), false},
	} {
		f := &fakeDynamo{updateOut: &dynamodb.UpdateItemOutput{Attributes: c.old}}
		rec, claimed, err := NewAccounts(f, table).Claim(ctx, claimAt("t1", c.byUser))
		if err != nil || claimed {
			t.Errorf("%s: Claim = %v, %v; want not claimed", name, claimed, err)
		}
		if want, _ := decode(c.old); !reflect.DeepEqual(rec, want) || rec.Generation != "g" {
			t.Errorf("%s: seen %+v, want %+v", name, rec, want)
		}
		if len(f.puts) != 0 {
			t.Errorf("%s: %d take-overs, want none", name, len(f.puts))
		}
	}
}

func TestClaimTakesOverAnExpiredClaimOnlyIfStillSeen(t *testing.T) {
	// Expired at exactly now: a claim does not hold at its instant of expiry.
	f := &fakeDynamo{updateOut: &dynamodb.UpdateItemOutput{Attributes: stored("PENDING", "old", now)}}
	rec, claimed, err := NewAccounts(f, table).Claim(ctx, claimAt("t1", false))
	if err != nil || !claimed || rec.Exists() {
		t.Fatalf("Claim = %+v, %v, %v; want claimed", rec, claimed, err)
	}
	if len(f.puts) != 1 {
		t.Fatalf("%d puts, want the take-over", len(f.puts))
	}
	in := f.puts[0]
	if *in.TableName != table || *in.ConditionExpression != condSeenExpired || !reflect.DeepEqual(in.ExpressionAttributeNames, statusName) {
		t.Errorf("put %+v", in)
	}
	want := map[string]string{":seen": "PENDING", ":generation": "old", ":now": ms(now)}
	if got := values(t, in.ExpressionAttributeValues); !reflect.DeepEqual(got, want) {
		t.Errorf("condition values %v, want %v", got, want)
	}
	wantItem := map[string]string{"sub": "s", "user_id": "u", "status": "PENDING", "claim_token": "t1",
		"claim_expires_at": ms(now.Add(30 * time.Second)), "created_at": nowStamp, "updated_at": nowStamp}
	if got := values(t, in.Item); !reflect.DeepEqual(got, wantItem) {
		t.Errorf("item %v, want %v", got, wantItem)
	}
}

func TestTheUserRevivesATombstoneSeenUnchanged(t *testing.T) {
	f := &fakeDynamo{updateOut: &dynamodb.UpdateItemOutput{Attributes: stored("DELETED", "g", now.Add(-time.Hour))}}
	if _, claimed, err := NewAccounts(f, table).Claim(ctx, claimAt("t1", true)); err != nil || !claimed {
		t.Fatalf("Claim = %v, %v; want claimed", claimed, err)
	}
	in := f.puts[0]
	if *in.ConditionExpression != condSeenUnclaimed {
		t.Errorf("condition %q, want %q", *in.ConditionExpression, condSeenUnclaimed)
	}
	want := map[string]string{":seen": "DELETED", ":generation": "g"}
	if got := values(t, in.ExpressionAttributeValues); !reflect.DeepEqual(got, want) {
		t.Errorf("condition values %v, want %v", got, want)
	}
}

func TestTheTombstoneOfAUserWhoLeftThePoolIsNeverRevived(t *testing.T) {
	old := stored("DELETED", "g", now.Add(-time.Hour))
	old[TTLAttribute] = &types.AttributeValueMemberN{Value: "1795599000"}
	f := &fakeDynamo{updateOut: &dynamodb.UpdateItemOutput{Attributes: old}}
	rec, claimed, err := NewAccounts(f, table).Claim(ctx, claimAt("t1", true))
	if err != nil || claimed || !rec.ExpiresAt.Equal(time.Unix(1795599000, 0)) {
		t.Errorf("Claim = %+v, %v, %v; want the expiring tombstone, not claimed", rec, claimed, err)
	}
	if len(f.puts) != 0 {
		t.Errorf("%d take-overs of a departed user's tombstone", len(f.puts))
	}
}

func TestALostTakeOverReportsTheRecordThatWon(t *testing.T) {
	winner := stored("PENDING", "other", now.Add(time.Minute))
	f := &fakeDynamo{updateOut: &dynamodb.UpdateItemOutput{Attributes: stored("PENDING", "old", now.Add(-time.Second))},
		putErr: conditionFailed, getOut: &dynamodb.GetItemOutput{Item: winner}}
	rec, claimed, err := NewAccounts(f, table).Claim(ctx, claimAt("t1", false))
	want, _ := decode(winner)
	if err != nil || claimed || !reflect.DeepEqual(rec, want) {
		t.Fatalf("Claim = %+v, %v, %v; want %+v, not claimed", rec, claimed, err, want)
	}
	if len(f.gets) != 1 || !*f.gets[0].ConsistentRead {
		t.Errorf("gets %+v, want one consistent read", f.gets)
	}

	// The record is gone by the time it is read: nothing seen, not claimed.
	f = &fakeDynamo{updateOut: &dynamodb.UpdateItemOutput{Attributes: stored("PENDING", "old", now.Add(-time.Second))},
		putErr: conditionFailed}
	rec, claimed, err = NewAccounts(f, table).Claim(ctx, claimAt("t1", false))
	if err != nil || claimed || rec.Exists() {
		t.Errorf("Claim of a vanished record = %+v, %v, %v; want nothing, not claimed, no error", rec, claimed, err)
	}

	// The read fails: the failure is reported.
	f = &fakeDynamo{updateOut: &dynamodb.UpdateItemOutput{Attributes: stored("PENDING", "old", now.Add(-time.Second))},
		putErr: conditionFailed, getErr: throttled}
	if _, claimed, err = NewAccounts(f, table).Claim(ctx, claimAt("t1", false)); claimed || !isDependency(err) {
		t.Errorf("Claim with a failed read = %v, %v; want a dynamodb dependency failure", claimed, err)
	}
}

func TestAFailedTakeOverIsReportedWithoutARead(t *testing.T) {
	f := &fakeDynamo{updateOut: &dynamodb.UpdateItemOutput{Attributes: stored("PENDING", "old", now.Add(-time.Second))},
		putErr: throttled}
	rec, claimed, err := NewAccounts(f, table).Claim(ctx, claimAt("t1", false))
	if claimed || rec.Exists() || !isDependency(err) || !strings.Contains(err.Error(), "taking over a claim") {
		t.Errorf("Claim = %+v, %v, %v; want a dynamodb dependency failure", rec, claimed, err)
	}
	if len(f.gets) != 0 {
		t.Errorf("%d reads after a failed write", len(f.gets))
	}
}

func TestClaimFailures(t *testing.T) {
	f := &fakeDynamo{updateErr: throttled}
	if _, claimed, err := NewAccounts(f, table).Claim(ctx, claimAt("t1", false)); claimed || !isDependency(err) {
		t.Errorf("throttled Claim = %v, %v; want a dependency failure", claimed, err)
	}
	// A refusal no retry mends stays what it is: a fault, not a 503.
	f = &fakeDynamo{updateErr: refused}
	if _, claimed, err := NewAccounts(f, table).Claim(ctx, claimAt("t1", false)); claimed || isDependency(err) || !errors.Is(err, refused) {
		t.Errorf("refused Claim = %v, %v; want the refusal", claimed, err)
	}
	// An item the store cannot read is not taken over.
	bad := stored("PENDING", "old", now.Add(-time.Second))
	bad["status"] = &types.AttributeValueMemberN{Value: "1"}
	f = &fakeDynamo{updateOut: &dynamodb.UpdateItemOutput{Attributes: bad}}
	if _, claimed, err := NewAccounts(f, table).Claim(ctx, claimAt("t1", false)); claimed || !errors.Is(err, errAttributeType) {
		t.Errorf("Claim of an unreadable item = %v, %v; want errAttributeType", claimed, err)
	}
	if len(f.puts) != 0 {
		t.Errorf("an unreadable item was taken over")
	}
}

func TestGetReadsTheRecordConsistently(t *testing.T) {
	it := item{Sub: "s", UserID: "u", FullUserID: "f", DomainName: "d", UserAPIKey: "k", UserAPISecret: "x",
		UserPassword: "p", Status: "DELETED", ClaimToken: "g", ClaimExpiresAt: now.UnixMilli(),
		CreatedAt: "2026-11-01T00:00:00.000Z", UpdatedAt: "2026-11-02T00:00:00.5Z", DeletedAt: "2026-11-03T00:00:00.000Z",
		ExpiresAt: 1795599000}
	f := &fakeDynamo{getOut: &dynamodb.GetItemOutput{Item: it.attributes()}}
	rec, err := NewAccounts(f, table).Get(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	want := provision.Record{Sub: "s", UserID: "u", FullUserID: "f", DomainName: "d", UserAPIKey: "k", UserAPISecret: "x",
		UserPassword: "p", Status: provision.StatusDeleted, Generation: "g",
		CreatedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), UpdatedAt: time.Date(2026, 11, 2, 0, 0, 0, 500_000_000, time.UTC),
		DeletedAt: time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC), ExpiresAt: time.Unix(1795599000, 0)}
	if !reflect.DeepEqual(rec, want) {
		t.Errorf("Get =\n%+v\nwant\n%+v", rec, want)
	}
	in := f.gets[0]
	if *in.TableName != table || text(t, in.Key["sub"]) != "s" || !*in.ConsistentRead {
		t.Errorf("get %+v", in)
	}
}

func TestOnlyAClaimedRecordReadsItsClaim(t *testing.T) {
	for status, held := range map[string]bool{"PENDING": true, "DELETING": true, "ACTIVE": false, "DELETED": false} {
		f := &fakeDynamo{getOut: &dynamodb.GetItemOutput{Item: stored(status, "g", now)}}
		rec, err := NewAccounts(f, table).Get(ctx, "s")
		if err != nil {
			t.Fatal(err)
		}
		if rec.Generation != "g" {
			t.Errorf("%s: generation %q, want g", status, rec.Generation)
		}
		if held && (rec.ClaimToken != "g" || !rec.ClaimExpiresAt.Equal(now)) {
			t.Errorf("%s: claim %q until %v, want g until %v", status, rec.ClaimToken, rec.ClaimExpiresAt, now)
		}
		if !held && (rec.ClaimToken != "" || !rec.ClaimExpiresAt.IsZero()) {
			t.Errorf("%s: claim %q until %v, want none: the claim that wrote it is history", status, rec.ClaimToken, rec.ClaimExpiresAt)
		}
		if !rec.ExpiresAt.IsZero() || !rec.DeletedAt.IsZero() {
			t.Errorf("%s: expires %v, deleted %v; want neither", status, rec.ExpiresAt, rec.DeletedAt)
		}
	}
}

func TestGetFailures(t *testing.T) {
	if _, err := NewAccounts(&fakeDynamo{}, table).Get(ctx, "s"); !errors.Is(err, provision.ErrNotProvisioned) {
		t.Errorf("Get of nothing = %v, want ErrNotProvisioned", err)
	}
	if _, err := NewAccounts(&fakeDynamo{getErr: throttled}, table).Get(ctx, "s"); !isDependency(err) {
		t.Errorf("throttled Get = %v, want a dependency failure", err)
	}
	for attr, bad := range map[string]types.AttributeValue{
		"created_at": str("yesterday"), "updated_at": str("2026-11-02"), "deleted_at": str("soon"),
		"status": &types.AttributeValueMemberBOOL{Value: true},
	} {
		av := stored("ACTIVE", "g", now)
		av[attr] = bad
		rec, err := NewAccounts(&fakeDynamo{getOut: &dynamodb.GetItemOutput{Item: av}}, table).Get(ctx, "s")
		if err == nil || !strings.Contains(err.Error(), strings.TrimSuffix(attr, "us")) || rec.Exists() {
			t.Errorf("Get with a bad %s = %+v, %v; want an error naming it", attr, rec, err)
		}
	}
}

func TestFinalizeStoresTheCredentialsUnderTheClaim(t *testing.T) {
	after := item{Sub: "s", UserID: "u", FullUserID: "u@d", DomainName: "d", UserAPIKey: "k", UserAPISecret: "x",
		UserPassword: "p", Status: "ACTIVE", ClaimToken: "t1", ClaimExpiresAt: now.UnixMilli(),
		CreatedAt: nowStamp, UpdatedAt: nowStamp}.attributes()
	f := &fakeDynamo{updateOut: &dynamodb.UpdateItemOutput{Attributes: after}}
	cr := provision.Credentials{FullUserID: "u@d", DomainName: "d", UserAPIKey: "k", UserAPISecret: "x", UserPassword: "p"}
	rec, err := NewAccounts(f, table).Finalize(ctx, claimAt("t1", false), cr)
	if err != nil || rec.Status != provision.StatusActive || rec.UserPassword != "p" || rec.Generation != "t1" {
		t.Fatalf("Finalize = %+v, %v", rec, err)
	}
	in := f.updates[0]
	if *in.UpdateExpression != updateFinalize || *in.ConditionExpression != condHeldBy || in.ReturnValues != types.ReturnValueAllNew {
		t.Errorf("update %+v", in)
	}
	want := map[string]string{":full": "u@d", ":domain": "d", ":key": "k", ":secret": "x", ":password": "p",
		":active": "ACTIVE", ":status": "PENDING", ":token": "t1", ":stamp": nowStamp}
	if got := values(t, in.ExpressionAttributeValues); !reflect.DeepEqual(got, want) {
		t.Errorf("values %v, want %v", got, want)
	}

	if _, err := NewAccounts(&fakeDynamo{updateErr: conditionFailed}, table).Finalize(ctx, claimAt("t1", false), cr); !errors.Is(err, provision.ErrClaimLost) {
		t.Errorf("Finalize of a lost claim = %v, want ErrClaimLost", err)
	}
	_, err = NewAccounts(&fakeDynamo{updateErr: throttled}, table).Finalize(ctx, claimAt("t1", false), cr)
	if !isDependency(err) || !strings.Contains(err.Error(), "finalizing") {
		t.Errorf("throttled Finalize = %v, want a dependency failure", err)
	}
}

// write is one conditional write a transition makes, as sent.
type write struct {
	op, update, cond string
	names            map[string]string
	values           map[string]string
}

func written(t *testing.T, f *fakeDynamo) write {
	t.Helper()
	if n := len(f.updates) + len(f.deletes) + len(f.puts); n != 1 {
		t.Fatalf("%d writes, want one", n)
	}
	if len(f.deletes) == 1 {
		in := f.deletes[0]
		if *in.TableName != table || text(t, in.Key["sub"]) != "s" {
			t.Errorf("delete of %+v", in)
		}
		return write{"delete", "", *in.ConditionExpression, in.ExpressionAttributeNames, values(t, in.ExpressionAttributeValues)}
	}
	in := f.updates[0]
	if *in.TableName != table || text(t, in.Key["sub"]) != "s" {
		t.Errorf("update of %+v", in)
	}
	return write{"update", *in.UpdateExpression, aws.ToString(in.ConditionExpression), in.ExpressionAttributeNames, values(t, in.ExpressionAttributeValues)}
}

func TestEachTransitionIsOneConditionalWrite(t *testing.T) {
	expiry := now.Add(provision.TombstoneTTL)
	for name, c := range map[string]struct {
		do   func(*Accounts) error
		want write
	}{
		"release": {func(a *Accounts) error { return a.Release(ctx, claimAt("t1", false)) },
			write{"update", updateRelease, condHeldBy, statusName,
				map[string]string{":status": "PENDING", ":token": "t1", ":now": ms(now), ":stamp": nowStamp}}},
		"drop": {func(a *Accounts) error { return a.Drop(ctx, claimAt("t1", false)) },
			write{"delete", "", condHeldBy, statusName, map[string]string{":status": "PENDING", ":token": "t1"}}},
		"claim the delete of nothing": {func(a *Accounts) error {
			return a.ClaimDelete(ctx, claimAt("t1", false), provision.Record{}, provision.Ending{})
		},
			write{"update", updateClaimDelete, condAbsent, map[string]string{"#sub": "sub", "#status": "status"},
				map[string]string{":deleting": "DELETING", ":token": "t1", ":expires": ms(now.Add(30 * time.Second)), ":stamp": nowStamp, ":uid": "u"}}},
		"claim the delete of an abandoned claim": {func(a *Accounts) error {
			return a.ClaimDelete(ctx, claimAt("t1", false), provision.Record{Status: provision.StatusDeleting, Generation: "g"}, provision.Ending{})
		}, write{"update", updateClaimDelete, condSeenExpired, statusName,
			map[string]string{":seen": "DELETING", ":generation": "g", ":now": ms(now), ":deleting": "DELETING", ":token": "t1",
				":expires": ms(now.Add(30 * time.Second)), ":stamp": nowStamp, ":uid": "u"}}},
		"claim the delete of an account": {func(a *Accounts) error {
			return a.ClaimDelete(ctx, claimAt("t1", false), provision.Record{Status: provision.StatusActive, Generation: "g"}, provision.Ending{})
		}, write{"update", updateClaimDelete, condSeenUnclaimed, statusName,
			map[string]string{":seen": "ACTIVE", ":generation": "g", ":deleting": "DELETING", ":token": "t1",
				":expires": ms(now.Add(30 * time.Second)), ":stamp": nowStamp, ":uid": "u"}}},
		"claim the delete of a user leaving the pool": {func(a *Accounts) error {
			return a.ClaimDelete(ctx, claimAt("t1", false), provision.Record{Status: provision.StatusActive, Generation: "g"},
				provision.Ending{Tombstone: true, ExpiresAt: expiry})
		}, write{"update", updateClaimLeave, condSeenUnclaimed, statusName,
			map[string]string{":seen": "ACTIVE", ":generation": "g", ":deleting": "DELETING", ":token": "t1",
				":expires": ms(now.Add(30 * time.Second)), ":stamp": nowStamp, ":uid": "u",
				":ttl": "N:" + strconv.FormatInt(expiry.Unix(), 10)}}},
		"claim the delete of an expiring tombstone, as seen": {func(a *Accounts) error {
			return a.ClaimDelete(ctx, claimAt("t1", false), provision.Record{Status: provision.StatusDeleted, Generation: "g", ExpiresAt: expiry},
				provision.Ending{Tombstone: true, ExpiresAt: expiry})
		}, write{"update", updateClaimLeave, condSeenExpiring, statusName,
			map[string]string{":seen": "DELETED", ":generation": "g", ":seenttl": "N:" + strconv.FormatInt(expiry.Unix(), 10),
				":deleting": "DELETING", ":token": "t1", ":expires": ms(now.Add(30 * time.Second)), ":stamp": nowStamp, ":uid": "u",
				":ttl": "N:" + strconv.FormatInt(expiry.Unix(), 10)}}},
		"bury, kept": {func(a *Accounts) error {
			return a.FinishDelete(ctx, claimAt("t1", false), provision.Ending{Tombstone: true})
		}, write{"update", updateBury, condHeldBy, statusName,
			map[string]string{":status": "DELETING", ":token": "t1", ":deleted": "DELETED", ":stamp": nowStamp}}},
		"bury, expiring": {func(a *Accounts) error {
			return a.FinishDelete(ctx, claimAt("t1", false), provision.Ending{Tombstone: true, ExpiresAt: expiry})
		}, write{"update", updateBuryExpiring, condHeldBy, statusName,
			map[string]string{":status": "DELETING", ":token": "t1", ":deleted": "DELETED", ":stamp": nowStamp,
				":ttl": "N:" + strconv.FormatInt(expiry.Unix(), 10)}}},
		"remove after a repair": {func(a *Accounts) error { return a.FinishDelete(ctx, claimAt("t1", false), provision.Ending{}) },
			write{"delete", "", condHeldBy, statusName, map[string]string{":status": "DELETING", ":token": "t1"}}},
	} {
		f := &fakeDynamo{}
		if err := c.do(NewAccounts(f, table)); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := written(t, f); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: wrote\n%+v\nwant\n%+v", name, got, c.want)
		}
	}
	// The expression names are the store's own: a delete claim adds to a copy.
	if !reflect.DeepEqual(statusName, map[string]string{"#status": "status"}) {
		t.Errorf("statusName became %v", statusName)
	}
}

func TestExpireGivesTheTombstoneSeenAnExpiry(t *testing.T) {
	f := &fakeDynamo{}
	at := now.Add(provision.TombstoneTTL)
	if err := NewAccounts(f, table).Expire(ctx, provision.Record{Sub: "s", Status: provision.StatusDeleted, Generation: "g"}, at, now); err != nil {
		t.Fatal(err)
	}
	want := write{"update", updateExpire, condSeenKept, statusName,
		map[string]string{":deleted": "DELETED", ":generation": "g", ":ttl": "N:" + strconv.FormatInt(at.Unix(), 10), ":stamp": nowStamp}}
	if w := written(t, f); !reflect.DeepEqual(w, want) {
		t.Errorf("wrote\n%+v\nwant\n%+v", w, want)
	}
}

func TestATransitionWhoseConditionFailsIsALostClaim(t *testing.T) {
	for name, do := range map[string]func(*Accounts) error{
		"release": func(a *Accounts) error { return a.Release(ctx, claimAt("t1", false)) },
		"drop":    func(a *Accounts) error { return a.Drop(ctx, claimAt("t1", false)) },
		"claim delete": func(a *Accounts) error {
			return a.ClaimDelete(ctx, claimAt("t1", false), provision.Record{}, provision.Ending{})
		},
		"bury": func(a *Accounts) error {
			return a.FinishDelete(ctx, claimAt("t1", false), provision.Ending{Tombstone: true})
		},
		"remove": func(a *Accounts) error { return a.FinishDelete(ctx, claimAt("t1", false), provision.Ending{}) },
		"expire": func(a *Accounts) error { return a.Expire(ctx, provision.Record{Sub: "s"}, now, now) },
	} {
		f := &fakeDynamo{updateErr: conditionFailed, deleteErr: conditionFailed}
		if err := do(NewAccounts(f, table)); !errors.Is(err, provision.ErrClaimLost) {
			t.Errorf("%s: %v, want ErrClaimLost", name, err)
		}
		f = &fakeDynamo{updateErr: throttled, deleteErr: throttled}
		if err := do(NewAccounts(f, table)); !isDependency(err) || errors.Is(err, provision.ErrClaimLost) {
			t.Errorf("%s, throttled: %v, want a dependency failure", name, err)
		}
		f = &fakeDynamo{updateErr: refused, deleteErr: refused}
		if err := do(NewAccounts(f, table)); !errors.Is(err, refused) || isDependency(err) {
			t.Errorf("%s, refused: %v, want the refusal", name, err)
		}
	}
}

func TestScanReadsEverySegmentPageByPage(t *testing.T) {
	rec := func(sub string) map[string]types.AttributeValue {
		av := stored("ACTIVE", "g", now)
		av["sub"] = str(sub)
		return av
	}
	api := &fakeScan{pages: map[int32][][]map[string]types.AttributeValue{
		0: {{rec("a"), rec("b")}, {rec("c")}},
		1: {{}, {rec("d")}},
		2: {{rec("e")}},
	}}
	var subs []string
	err := Scan(ctx, api, table, 3, func(r provision.Record) error { subs = append(subs, r.Sub); return nil })
	sort.Strings(subs)
	if err != nil || !reflect.DeepEqual(subs, []string{"a", "b", "c", "d", "e"}) {
		t.Fatalf("Scan = %v, %v", subs, err)
	}
	for _, in := range api.ins {
		if *in.TableName != table || !*in.ConsistentRead || *in.TotalSegments != 3 || *in.Segment < 0 || *in.Segment > 2 {
			t.Errorf("scan %+v", in)
		}
	}
	if len(api.ins) != 5 {
		t.Errorf("%d scans, want 5 pages", len(api.ins))
	}

	// No segment count is one segment.
	api = &fakeScan{pages: map[int32][][]map[string]types.AttributeValue{0: {{rec("a")}}}}
	subs = nil
	if err := Scan(ctx, api, table, 0, func(r provision.Record) error { subs = append(subs, r.Sub); return nil }); err != nil || len(subs) != 1 {
		t.Errorf("Scan of 0 segments = %v, %v", subs, err)
	}
	if len(api.ins) != 1 || *api.ins[0].TotalSegments != 1 || *api.ins[0].Segment != 0 {
		t.Errorf("scans %+v, want one of one segment", api.ins)
	}
}

func TestScanStopsAtTheFirstError(t *testing.T) {
	bad := stored("ACTIVE", "g", now)
	bad["created_at"] = str("never")
	api := &fakeScan{pages: map[int32][][]map[string]types.AttributeValue{0: {{bad}, {stored("ACTIVE", "g", now)}}}}
	calls := 0
	err := Scan(ctx, api, table, 1, func(provision.Record) error { calls++; return nil })
	if err == nil || !strings.Contains(err.Error(), "created_at") || calls != 0 {
		t.Errorf("Scan over an unreadable item = %v after %d calls; want its error, no call", err, calls)
	}

	api = &fakeScan{pages: map[int32][][]map[string]types.AttributeValue{0: {{stored("ACTIVE", "g", now), stored("ACTIVE", "g", now)}}}}
	calls = 0
	if err := Scan(ctx, api, table, 1, func(provision.Record) error { calls++; return errFn }); !errors.Is(err, errFn) || calls != 1 {
		t.Errorf("Scan with fn failing = %v after %d calls; want fn's error after one", err, calls)
	}

	err = Scan(ctx, &fakeScan{err: throttled}, table, 2, func(provision.Record) error { return nil })
	if !isDependency(err) || !strings.Contains(err.Error(), "scanning "+table) {
		t.Errorf("throttled Scan = %v, want a dependency failure", err)
	}
}
