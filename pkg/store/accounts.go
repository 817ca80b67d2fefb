// Package store keeps the accounts table in DynamoDB.
package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// KeyAttribute is the table's partition key; template.yaml must agree.
const KeyAttribute = "sub"

// timeLayout is RFC 3339 with milliseconds, in UTC.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// API is the subset of the DynamoDB client the store uses.
type API interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// Accounts is the accounts table.
type Accounts struct {
	api   API
	table string
}

var _ provision.Accounts = (*Accounts)(nil)

// NewAccounts returns the store for one table.
func NewAccounts(api API, table string) *Accounts { return &Accounts{api: api, table: table} }

// item is the stored shape of a record.
type item struct {
	Sub            string `dynamodbav:"sub"`
	UserID         string `dynamodbav:"user_id"`
	FullUserID     string `dynamodbav:"full_user_id,omitempty"`
	DomainName     string `dynamodbav:"domain_name,omitempty"`
	UserAPIKey     string `dynamodbav:"user_api_key,omitempty"`
	UserAPISecret  string `dynamodbav:"user_api_secret,omitempty"`
	UserPassword   string `dynamodbav:"user_password,omitempty"`
	Status         string `dynamodbav:"status"`
	ClaimToken     string `dynamodbav:"claim_token,omitempty"`
	ClaimExpiresAt int64  `dynamodbav:"claim_expires_at,omitempty"` // Unix ms, so conditions can compare it
	CreatedAt      string `dynamodbav:"created_at"`
	UpdatedAt      string `dynamodbav:"updated_at"`
}

func (it item) record() (provision.Record, error) {
	r := provision.Record{
		Sub: it.Sub, UserID: it.UserID, FullUserID: it.FullUserID, DomainName: it.DomainName,
		UserAPIKey: it.UserAPIKey, UserAPISecret: it.UserAPISecret, UserPassword: it.UserPassword,
		Status: it.Status, Generation: it.ClaimToken,
	}
	// An ACTIVE item's claim attributes are history: the claim that created
	// it, which names its generation (see Claim).
	if it.Status != provision.StatusActive {
		r.ClaimToken = it.ClaimToken
		if it.ClaimExpiresAt != 0 {
			r.ClaimExpiresAt = time.UnixMilli(it.ClaimExpiresAt)
		}
	}
	var err error
	if r.CreatedAt, err = time.Parse(time.RFC3339Nano, it.CreatedAt); err != nil {
		return provision.Record{}, fmt.Errorf("record %s: bad created_at", it.UserID)
	}
	if r.UpdatedAt, err = time.Parse(time.RFC3339Nano, it.UpdatedAt); err != nil {
		return provision.Record{}, fmt.Errorf("record %s: bad updated_at", it.UserID)
	}
	return r, nil
}

func decode(av map[string]types.AttributeValue) (provision.Record, error) {
	var it item
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return provision.Record{}, fmt.Errorf("decoding record: %w", err)
	}
	return it.record()
}

func stamp(t time.Time) string { return t.UTC().Format(timeLayout) }

func key(sub string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{KeyAttribute: &types.AttributeValueMemberS{Value: sub}}
}

// Claim creates a PENDING item if there is none, and takes over a PENDING
// or DELETING one whose claim expired.
//
// The common cases cost one call on any DynamoDB-compatible server: an
// UpdateItem that sets each attribute only if it is absent, so it creates
// the claim on a new sub and leaves an existing item as it was, and
// returns the item as it was before. ACTIVE items keep their claim
// attributes for this reason: if_not_exists must find every one of them,
// and the claim token that created an item names its generation. Only the
// take-over of an expired claim needs a second, conditional write.
func (a *Accounts) Claim(ctx context.Context, c provision.Claim) (provision.Record, bool, error) {
	now := &types.AttributeValueMemberS{Value: stamp(c.Now)}
	out, err := a.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(a.table),
		Key:       key(c.Sub),
		UpdateExpression: aws.String("SET #status = if_not_exists(#status, :pending), user_id = if_not_exists(user_id, :uid), " +
			"claim_token = if_not_exists(claim_token, :token), claim_expires_at = if_not_exists(claim_expires_at, :expires), " +
			"created_at = if_not_exists(created_at, :now), updated_at = if_not_exists(updated_at, :now)"),
		ExpressionAttributeNames: map[string]string{"#status": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pending": &types.AttributeValueMemberS{Value: provision.StatusPending},
			":uid":     &types.AttributeValueMemberS{Value: c.UserID},
			":token":   &types.AttributeValueMemberS{Value: c.Token},
			":expires": &types.AttributeValueMemberN{Value: fmt.Sprint(c.ExpiresAt.UnixMilli())},
			":now":     now,
		},
		ReturnValues: types.ReturnValueAllOld,
	})
	if err != nil {
		return provision.Record{}, false, fmt.Errorf("writing claim: %w", err)
	}
	if len(out.Attributes) == 0 {
		return provision.Record{}, true, nil
	}
	rec, err := decode(out.Attributes)
	if err != nil || rec.Status == provision.StatusActive || !rec.ClaimExpiresAt.Before(c.Now) {
		return rec, false, err
	}
	return a.takeOver(ctx, c, rec)
}

// takeOver replaces an expired claim, if it is still the one seen.
func (a *Accounts) takeOver(ctx context.Context, c provision.Claim, seen provision.Record) (provision.Record, bool, error) {
	av, err := attributevalue.MarshalMap(item{
		Sub: c.Sub, UserID: c.UserID, Status: provision.StatusPending, ClaimToken: c.Token,
		ClaimExpiresAt: c.ExpiresAt.UnixMilli(), CreatedAt: stamp(c.Now), UpdatedAt: stamp(c.Now),
	})
	if err != nil {
		return provision.Record{}, false, fmt.Errorf("encoding claim: %w", err)
	}
	_, err = a.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(a.table),
		Item:                     av,
		ConditionExpression:      aws.String("#status = :seen AND claim_token = :stale"),
		ExpressionAttributeNames: map[string]string{"#status": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":seen":  &types.AttributeValueMemberS{Value: seen.Status},
			":stale": &types.AttributeValueMemberS{Value: seen.ClaimToken},
		},
	})
	if err == nil {
		return provision.Record{}, true, nil
	}
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return provision.Record{}, false, fmt.Errorf("taking over an expired claim: %w", err)
	}
	// Someone else took it over, or finished, or this write's answer was
	// lost after it succeeded: the item says which.
	rec, err := a.Get(ctx, c.Sub)
	if errors.Is(err, provision.ErrNotProvisioned) {
		return provision.Record{Status: provision.StatusPending}, false, nil
	}
	return rec, false, err
}

// Finalize stores the credentials if c still holds the claim.
func (a *Accounts) Finalize(ctx context.Context, c provision.Claim, cr provision.Credentials) (provision.Record, error) {
	now := &types.AttributeValueMemberS{Value: stamp(c.Now)}
	out, err := a.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(a.table),
		Key:       key(c.Sub),
		UpdateExpression: aws.String("SET full_user_id = :full, domain_name = :domain, user_api_key = :key, " +
			"user_api_secret = :secret, user_password = :password, #status = :active, created_at = :now, updated_at = :now"),
		ConditionExpression:      aws.String("#status = :pending AND claim_token = :token"),
		ExpressionAttributeNames: map[string]string{"#status": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":full":     &types.AttributeValueMemberS{Value: cr.FullUserID},
			":domain":   &types.AttributeValueMemberS{Value: cr.DomainName},
			":key":      &types.AttributeValueMemberS{Value: cr.UserAPIKey},
			":secret":   &types.AttributeValueMemberS{Value: cr.UserAPISecret},
			":password": &types.AttributeValueMemberS{Value: cr.UserPassword},
			":active":   &types.AttributeValueMemberS{Value: provision.StatusActive},
			":pending":  &types.AttributeValueMemberS{Value: provision.StatusPending},
			":token":    &types.AttributeValueMemberS{Value: c.Token},
			":now":      now,
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	if err != nil {
		return provision.Record{}, conditional(err, "finalizing")
	}
	return decode(out.Attributes)
}

// Release deletes the PENDING item if c still holds the claim.
func (a *Accounts) Release(ctx context.Context, c provision.Claim) error {
	return a.deleteHeld(ctx, c, provision.StatusPending, "releasing claim")
}

// deleteHeld deletes the item if it is in status under c's claim.
func (a *Accounts) deleteHeld(ctx context.Context, c provision.Claim, status, doing string) error {
	_, err := a.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                aws.String(a.table),
		Key:                      key(c.Sub),
		ConditionExpression:      aws.String("#status = :status AND claim_token = :token"),
		ExpressionAttributeNames: map[string]string{"#status": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":status": &types.AttributeValueMemberS{Value: status},
			":token":  &types.AttributeValueMemberS{Value: c.Token},
		},
	})
	return conditional(err, doing)
}

// Get reads a record with a consistent read.
func (a *Accounts) Get(ctx context.Context, sub string) (provision.Record, error) {
	out, err := a.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(a.table), Key: key(sub), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return provision.Record{}, fmt.Errorf("getting record: %w", err)
	}
	if len(out.Item) == 0 {
		return provision.Record{}, provision.ErrNotProvisioned
	}
	return decode(out.Item)
}

// ClaimDelete makes the item DELETING under c, if it is still as seen: the
// same status and generation and, unless ACTIVE, a claim expired at c.Now.
func (a *Accounts) ClaimDelete(ctx context.Context, c provision.Claim, seen provision.Record) error {
	values := map[string]types.AttributeValue{
		":seen":     &types.AttributeValueMemberS{Value: seen.Status},
		":deleting": &types.AttributeValueMemberS{Value: provision.StatusDeleting},
		":token":    &types.AttributeValueMemberS{Value: c.Token},
		":expires":  &types.AttributeValueMemberN{Value: fmt.Sprint(c.ExpiresAt.UnixMilli())},
		":now":      &types.AttributeValueMemberS{Value: stamp(c.Now)},
	}
	// Items written before generations were kept have no claim token.
	cond := "#status = :seen AND attribute_not_exists(claim_token)"
	switch {
	case seen.Status == "":
		cond = "attribute_not_exists(#sub)"
		delete(values, ":seen")
	case seen.Generation != "":
		cond = "#status = :seen AND claim_token = :generation"
		values[":generation"] = &types.AttributeValueMemberS{Value: seen.Generation}
	}
	if seen.Status != "" && seen.Status != provision.StatusActive {
		cond += " AND claim_expires_at < :nowms"
		values[":nowms"] = &types.AttributeValueMemberN{Value: fmt.Sprint(c.Now.UnixMilli())}
	}
	values[":uid"] = &types.AttributeValueMemberS{Value: c.UserID}
	names := map[string]string{"#status": "status"}
	if seen.Status == "" {
		names["#sub"] = KeyAttribute
	}
	_, err := a.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(a.table),
		Key:       key(c.Sub),
		UpdateExpression: aws.String("SET #status = :deleting, claim_token = :token, claim_expires_at = :expires, " +
			"updated_at = :now, user_id = if_not_exists(user_id, :uid), created_at = if_not_exists(created_at, :now)"),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if err = conditional(err, "claiming the delete"); !errors.Is(err, provision.ErrClaimLost) {
		return err
	}
	// A write whose answer was lost is retried by the SDK and fails its
	// condition: the item says whether the first one took effect.
	if rec, gerr := a.Get(ctx, c.Sub); gerr == nil && rec.Status == provision.StatusDeleting && rec.ClaimToken == c.Token {
		return nil
	}
	return err
}

// FinishDelete deletes the item if it is DELETING under c.
func (a *Accounts) FinishDelete(ctx context.Context, c provision.Claim) error {
	return a.deleteHeld(ctx, c, provision.StatusDeleting, "deleting record")
}

func conditional(err error, op string) error {
	if err == nil {
		return nil
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return provision.ErrClaimLost
	}
	return fmt.Errorf("%s: %w", op, err)
}

// ScanAPI is the operation a reconcile needs. Only operators are granted
// it; the functions never scan.
type ScanAPI interface {
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Scan reads every record of table with consistent reads, in segments read
// in parallel, page by page, and calls fn for each; fn is called from one
// goroutine at a time.
func Scan(ctx context.Context, api ScanAPI, table string, segments int, fn func(provision.Record) error) error {
	segments = max(segments, 1)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for seg := range segments {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := scanSegment(ctx, api, table, int32(seg), int32(segments), func(r provision.Record) error {
				mu.Lock()
				defer mu.Unlock()
				return fn(r)
			})
			if err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

func scanSegment(ctx context.Context, api ScanAPI, table string, seg, total int32, fn func(provision.Record) error) error {
	in := &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true), Segment: aws.Int32(seg), TotalSegments: aws.Int32(total)}
	for {
		out, err := api.Scan(ctx, in)
		if err != nil {
			return fmt.Errorf("scanning %s: %w", table, err)
		}
		for _, it := range out.Items {
			rec, err := decode(it)
			if err != nil {
				return err
			}
			if err := fn(rec); err != nil {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}
