package store_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

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
	if _, ok, err := a.Claim(ctx, c1); err != nil || !ok || api.take() != "[UpdateItem]" {
		t.Fatalf("new claim: %v, %v", ok, err)
	}
	if rec, ok, err := a.Claim(ctx, claim("t2", now, now.Add(time.Minute))); err != nil || ok || rec.ClaimToken != "t1" || api.take() != "[UpdateItem]" {
		t.Fatalf("claim held by another: %+v, %v, %v", rec, ok, err)
	}
	if _, err := a.Finalize(ctx, c1, provision.Credentials{FullUserID: "f", DomainName: "d", UserAPIKey: "k", UserAPISecret: "s", UserPassword: "p"}); err != nil {
		t.Fatal(err)
	}
	api.take()
	before := raw()
	later := now.Add(time.Hour)
	rec, ok, err := a.Claim(ctx, claim("t3", later, later.Add(time.Minute)))
	if err != nil || ok || rec.Status != provision.StatusActive || rec.ClaimToken != "" || !rec.ClaimExpiresAt.IsZero() {
		t.Fatalf("claim over ACTIVE: %+v, %v, %v", rec, ok, err)
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
	if _, ok, err := a.Claim(ctx, claim("old", now.Add(-time.Minute), now.Add(-time.Second))); err != nil || !ok {
		t.Fatal(ok, err)
	}
	api.take()
	if _, ok, err := a.Claim(ctx, claim("new", now, now.Add(time.Minute))); err != nil || !ok {
		t.Fatalf("take-over: %v, %v", ok, err)
	}
	if calls := api.take(); calls != "[UpdateItem PutItem]" {
		t.Fatalf("take-over calls %s", calls)
	}
	rec, err := a.Get(ctx, sub)
	if err != nil || rec.ClaimToken != "new" {
		t.Fatalf("after take-over: %+v, %v", rec, err)
	}
}
