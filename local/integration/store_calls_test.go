package integration

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/accountstest"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/store"
)

// counting passes every call to dynalite and counts it by operation.
type counting struct {
	*dynamodb.Client
	calls []string
}

func (c *counting) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.calls = append(c.calls, "PutItem")
	return c.Client.PutItem(ctx, in, o...)
}

func (c *counting) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.calls = append(c.calls, "UpdateItem")
	return c.Client.UpdateItem(ctx, in, o...)
}

func (c *counting) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.calls = append(c.calls, "GetItem")
	return c.Client.GetItem(ctx, in, o...)
}

func (c *counting) take() string { s := fmt.Sprint(c.calls); c.calls = nil; return s }

// The budget: a repeated request costs one call and changes nothing;
// only the take-over of an expired claim costs a second write.
func TestClaimCalls(t *testing.T) {
	ctx := context.Background()
	name := newTable(t)
	api := &counting{Client: db}
	a := store.NewAccounts(api, name)
	now := time.Now()
	raw := func() map[string]any {
		out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(name), Key: map[string]types.AttributeValue{"sub": &types.AttributeValueMemberS{Value: sub}}, ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]any{}
		for k, v := range out.Item {
			m[k] = v
		}
		return m
	}

	c1 := claim("t1", now, now.Add(time.Minute))
	accountstest.Claimed(t, a, c1)
	if calls := api.take(); calls != "[UpdateItem]" {
		t.Fatalf("new claim: calls %s, want one UpdateItem", calls)
	}
	rec, ok, err := a.Claim(ctx, claim("t2", now, now.Add(time.Minute)))
	if err != nil {
		t.Fatalf("claim held by another: %v", err)
	}
	if ok {
		t.Error("claim held by another: granted")
	}
	if rec.ClaimToken != "t1" {
		t.Errorf("claim held by another: claim token %q, want %q", rec.ClaimToken, "t1")
	}
	if calls := api.take(); calls != "[UpdateItem]" {
		t.Fatalf("claim held by another: calls %s, want one UpdateItem", calls)
	}
	if _, err := a.Finalize(ctx, c1, provision.Credentials{FullUserID: "f", DomainName: "d", UserAPIKey: "k", UserAPISecret: "s", UserPassword: "p"}); err != nil {
		t.Fatal(err)
	}
	api.take()
	before := raw()
	later := now.Add(time.Hour)
	rec, ok, err = a.Claim(ctx, claim("t3", later, later.Add(time.Minute)))
	if err != nil {
		t.Fatalf("claim over ACTIVE: %v", err)
	}
	if ok {
		t.Error("claim over ACTIVE: granted")
	}
	if rec.Status != provision.StatusActive {
		t.Errorf("claim over ACTIVE: status %q, want %q", rec.Status, provision.StatusActive)
	}
	if rec.ClaimToken != "" {
		t.Errorf("claim over ACTIVE: claim token %q, want none", rec.ClaimToken)
	}
	if !rec.ClaimExpiresAt.IsZero() {
		t.Errorf("claim over ACTIVE: claim expires at %v, want no claim", rec.ClaimExpiresAt)
	}
	if calls := api.take(); calls != "[UpdateItem]" {
		t.Fatalf("claim over ACTIVE: calls %s, want one UpdateItem", calls)
	}
	if after := raw(); !reflect.DeepEqual(before, after) {
		t.Fatalf("a repeated claim changed the ACTIVE item:\n%v\n%v", before, after)
	}
}

func TestExpiredClaimTakeOverIsTwoWrites(t *testing.T) {
	ctx := context.Background()
	api := &counting{Client: db}
	a := store.NewAccounts(api, newTable(t))
	now := time.Now()
	accountstest.Claimed(t, a, claim("old", now.Add(-time.Minute), now.Add(-time.Second)))
	api.take()
	accountstest.Claimed(t, a, claim("new", now, now.Add(time.Minute)))
	if calls := api.take(); calls != "[UpdateItem PutItem]" {
		t.Fatalf("take-over calls %s", calls)
	}
	rec, err := a.Get(ctx, sub)
	if err != nil {
		t.Fatalf("after take-over: %v", err)
	}
	if rec.ClaimToken != "new" {
		t.Errorf("after take-over: claim token %q, want %q", rec.ClaimToken, "new")
	}
}

// A late sign-up retry reaching a tombstone costs one call and changes
// nothing: the tombstone keeps every attribute Claim's if_not_exists looks
// for. The user's own request revives it in a second write.
func TestClaimOverATombstone(t *testing.T) {
	ctx := context.Background()
	name := newTable(t)
	api := &counting{Client: db}
	a := store.NewAccounts(api, name)
	now := time.Now().Truncate(time.Millisecond)
	c := claim("gen1", now, now.Add(time.Minute))
	accountstest.Claimed(t, a, c)
	seen, err := a.Finalize(ctx, c, provision.Credentials{FullUserID: "f", DomainName: "d", UserAPIKey: "k", UserAPISecret: "s", UserPassword: "p"})
	if err != nil {
		t.Fatal(err)
	}
	d := claim("del", now, now.Add(time.Minute))
	if err := a.ClaimDelete(ctx, d, seen, provision.Ending{}); err != nil {
		t.Fatal(err)
	}
	if err := a.FinishDelete(ctx, d, provision.Ending{Tombstone: true, ExpiresAt: now.Add(provision.TombstoneTTL)}); err != nil {
		t.Fatal(err)
	}
	before := rawItem(t, name)
	for _, attr := range []string{"user_api_key", "user_api_secret", "user_password", "full_user_id", "domain_name"} {
		if _, ok := before[attr]; ok {
			t.Errorf("the tombstone keeps %s", attr)
		}
	}
	ttl, ok := before[store.TTLAttribute].(*types.AttributeValueMemberN)
	if !ok {
		t.Fatalf("the tombstone's %s = %#v, want a number", store.TTLAttribute, before[store.TTLAttribute])
	}
	if want := fmt.Sprint(now.Add(provision.TombstoneTTL).Unix()); ttl.Value != want {
		t.Errorf("the tombstone's %s = %s, want %s", store.TTLAttribute, ttl.Value, want)
	}
	api.take()
	rec, ok, err := a.Claim(ctx, claim("retry", now, now.Add(time.Minute)))
	if err != nil {
		t.Fatalf("automatic claim over a tombstone: %v", err)
	}
	if ok {
		t.Error("automatic claim over a tombstone: granted")
	}
	if rec.Status != provision.StatusDeleted {
		t.Errorf("automatic claim over a tombstone: status %q, want %q", rec.Status, provision.StatusDeleted)
	}
	if calls := api.take(); calls != "[UpdateItem]" {
		t.Fatalf("calls %s, want one UpdateItem", calls)
	}
	if after := rawItem(t, name); !reflect.DeepEqual(before, after) {
		t.Fatalf("the claim changed the tombstone:\n%v\n%v", before, after)
	}
	// The tombstone of a user who left the pool: their own claim is
	// refused as cheaply, and changes nothing either.
	mine := claim("mine", now, now.Add(time.Minute))
	mine.ByUser = true
	if _, ok, err := a.Claim(ctx, mine); ok || err != nil {
		t.Fatalf("the user's claim over their departure's tombstone: granted %v, %v", ok, err)
	}
	if calls := api.take(); calls != "[UpdateItem]" {
		t.Fatalf("calls %s, want one UpdateItem", calls)
	}
	if after := rawItem(t, name); !reflect.DeepEqual(before, after) {
		t.Fatalf("the user's claim changed the tombstone:\n%v\n%v", before, after)
	}
	reviveKept(t, a, api, name, now)
}

// reviveKept: the tombstone of a user who stays, made in place of the
// expiring one; their own request revives it, in a second write.
func reviveKept(t *testing.T, a *store.Accounts, api *counting, name string, now time.Time) {
	ctx := context.Background()
	mine := claim("mine2", now, now.Add(time.Minute))
	mine.ByUser = true
	if err := a.Expire(ctx, provision.Record{Sub: sub}, now, now); err == nil {
		t.Fatal("an expiry of an expiring tombstone was granted")
	}
	kept := claim("kept", now, now.Add(time.Minute))
	if err := a.ClaimDelete(ctx, kept, provision.Record{Sub: sub, Status: provision.StatusDeleted, Generation: "del",
		ExpiresAt: time.Unix(now.Add(provision.TombstoneTTL).Unix(), 0)}, provision.Ending{}); err != nil {
		t.Fatal(err)
	}
	if err := a.FinishDelete(ctx, kept, provision.Ending{Tombstone: true}); err != nil {
		t.Fatal(err)
	}
	api.take()
	accountstest.Claimed(t, a, mine)
	if calls := api.take(); calls != "[UpdateItem PutItem]" {
		t.Fatalf("revival calls %s", calls)
	}
	if item := rawItem(t, name); item["deleted_at"] != nil || item[store.TTLAttribute] != nil {
		t.Fatalf("the revived record keeps the tombstone's marks: %v", item)
	}
}

func rawItem(t *testing.T, table string) map[string]types.AttributeValue {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"sub": &types.AttributeValueMemberS{Value: sub}}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}
