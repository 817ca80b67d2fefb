package store

import (
	"errors"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// taggedItem is the item as the SDK's attributevalue package wrote it
// before the conversion was written by hand: tables hold items of this
// shape, so the two must agree.
type taggedItem struct {
	Sub            string `dynamodbav:"sub"`
	UserID         string `dynamodbav:"user_id"`
	FullUserID     string `dynamodbav:"full_user_id,omitempty"`
	DomainName     string `dynamodbav:"domain_name,omitempty"`
	UserAPIKey     string `dynamodbav:"user_api_key,omitempty"`
	UserAPISecret  string `dynamodbav:"user_api_secret,omitempty"`
	UserPassword   string `dynamodbav:"user_password,omitempty"`
	Status         string `dynamodbav:"status"`
	ClaimToken     string `dynamodbav:"claim_token,omitempty"`
	ClaimExpiresAt int64  `dynamodbav:"claim_expires_at,omitempty"`
	CreatedAt      string `dynamodbav:"created_at"`
	UpdatedAt      string `dynamodbav:"updated_at"`
	DeletedAt      string `dynamodbav:"deleted_at,omitempty"`
	ExpiresAt      int64  `dynamodbav:"expires_at,omitempty"`
}

var items = map[string]item{
	"pending": {Sub: "s", UserID: "u", Status: "PENDING", ClaimToken: "t", ClaimExpiresAt: 1795599000123,
		CreatedAt: "2026-11-25T09:30:00.000Z", UpdatedAt: "2026-11-25T09:30:00.000Z"},
	"active": {Sub: "s", UserID: "u", FullUserID: "f", DomainName: "d", UserAPIKey: "k", UserAPISecret: "x",
		UserPassword: "p", Status: "ACTIVE", ClaimToken: "t", ClaimExpiresAt: -1, CreatedAt: "c", UpdatedAt: "v"},
	"tombstone": {Sub: "s", UserID: "u", Status: "DELETED", ClaimToken: "t", ClaimExpiresAt: 5, CreatedAt: "c",
		UpdatedAt: "v", DeletedAt: "d", ExpiresAt: 1795599000},
	"empty": {},
}

func TestAttributesAreWhatAttributevalueWrote(t *testing.T) {
	for name, it := range items {
		want, err := attributevalue.MarshalMap(taggedItem(it))
		if err != nil {
			t.Fatal(err)
		}
		if got := it.attributes(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: attributes\n%#v\nwant\n%#v", name, got, want)
		}
	}
}

func TestItemOfReadsWhatAttributevalueWrote(t *testing.T) {
	for name, it := range items {
		av, err := attributevalue.MarshalMap(taggedItem(it))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := itemOf(av); err != nil {
			t.Errorf("%s: %v", name, err)
		} else if got != it {
			t.Errorf("%s: read\n%+v\nwant\n%+v", name, got, it)
		}
		// An attribute it does not know is ignored, and NULL is absent.
		av["other"] = &types.AttributeValueMemberBOOL{Value: true}
		av["domain_name"] = &types.AttributeValueMemberNULL{Value: true}
		av["expires_at"] = &types.AttributeValueMemberNULL{Value: true}
		it.DomainName, it.ExpiresAt = "", 0
		if got, err := itemOf(av); err != nil {
			t.Errorf("%s with NULLs and an unknown attribute: %v", name, err)
		} else if got != it {
			t.Errorf("%s with NULLs and an unknown attribute: read\n%+v\nwant\n%+v", name, got, it)
		}
	}
}

func TestItemOfRefusesAnAttributeOfAnotherType(t *testing.T) {
	for name, av := range map[string]types.AttributeValue{
		"status":           &types.AttributeValueMemberN{Value: "1"},
		"user_password":    &types.AttributeValueMemberB{Value: []byte("p")},
		"claim_expires_at": &types.AttributeValueMemberS{Value: "1"},
		"expires_at":       &types.AttributeValueMemberN{Value: "1.5"},
	} {
		if _, err := itemOf(map[string]types.AttributeValue{name: av}); !errors.Is(err, errAttributeType) {
			t.Errorf("%s as %#v: %v, want errAttributeType", name, av, err)
		}
	}
}
