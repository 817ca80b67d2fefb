package store

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// ddbFake answers like DynamoDB: a failed condition carries the item when
// ReturnValuesOnConditionCheckFailure asks for it.
type ddbFake struct {
	API
	item           map[string]types.AttributeValue
	puts, gets     int
	askedForOldOne bool
}

func (f *ddbFake) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	f.puts++
	f.askedForOldOne = in.ReturnValuesOnConditionCheckFailure == types.ReturnValuesOnConditionCheckFailureAllOld
	e := &types.ConditionalCheckFailedException{}
	if f.askedForOldOne {
		e.Item = f.item
	}
	return nil, e
}

func (f *ddbFake) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	f.gets++
	return &dynamodb.GetItemOutput{Item: f.item}, nil
}

func TestClaimOnAnExistingAccountIsOneCall(t *testing.T) {
	now := time.Now()
	av, err := attributevalue.MarshalMap(item{Sub: "s1", UserID: "u1", Status: provision.StatusActive, CreatedAt: stamp(now), UpdatedAt: stamp(now)})
	if err != nil {
		t.Fatal(err)
	}
	f := &ddbFake{item: av}
	rec, claimed, err := NewAccounts(f, "t").Claim(context.Background(), provision.Claim{Sub: "s1", UserID: "u1", Token: "x", Now: now, ExpiresAt: now.Add(time.Minute)})
	if err != nil || claimed || rec.Status != provision.StatusActive || rec.UserID != "u1" {
		t.Fatalf("Claim = %+v, %v, %v", rec, claimed, err)
	}
	if !f.askedForOldOne || f.puts != 1 || f.gets != 0 {
		t.Fatalf("calls: put %d get %d (asked for the old item: %v); want one PutItem and no read", f.puts, f.gets, f.askedForOldOne)
	}
}
