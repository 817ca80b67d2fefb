// Package store keeps the accounts table in DynamoDB.
package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/awsdep"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// KeyAttribute is the table's partition key; template.yaml must agree.
const KeyAttribute = "sub"

// TTLAttribute holds, in Unix seconds, when DynamoDB's TTL removes a
// tombstone; template.yaml's TimeToLiveSpecification must name it.
const TTLAttribute = "expires_at"

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

// The condition expressions, one per rule of provision's state machine
// (pkg/provision/state.go); internal/testing/accountstest holds them to the same
// outcomes as the rules, at the exact instant a claim expires too.
const (
	// condAbsent: there is no record (MayClaimDelete of nothing seen).
	condAbsent = "attribute_not_exists(#sub)"
	// condHeldBy: in :status under the claim :token (MayEndCreate,
	// MayFinishDelete).
	condHeldBy = "#status = :status AND claim_token = :token"
	// condSeenExpired: still the PENDING or DELETING record seen, its claim
	// not live at :now (MayClaim's and MayClaimDelete's take-over).
	condSeenExpired = "#status = :seen AND claim_token = :generation AND claim_expires_at <= :now"
	// condSeenUnclaimed: still the ACTIVE or DELETED record seen, with
	// no expiry, as seen (MayClaimDelete; MayClaim of a tombstone by the
	// user). condSeenExpiring: still the tombstone seen, with its expiry.
	condSeenUnclaimed = "#status = :seen AND claim_token = :generation AND attribute_not_exists(" + TTLAttribute + ")"
	condSeenExpiring  = "#status = :seen AND claim_token = :generation AND " + TTLAttribute + " = :seenttl"
	// condSeenKept: still the tombstone seen, with no expiry (MayExpire).
	condSeenKept = "#status = :deleted AND claim_token = :generation AND attribute_not_exists(" + TTLAttribute + ")"
)

// The updates of the transitions that change a record in place.
const (
	// updateClaim creates a PENDING record where there is none and leaves
	// any other as it is (see Claim).
	updateClaim = "SET #status = if_not_exists(#status, :pending), user_id = if_not_exists(user_id, :uid), " +
		"claim_token = if_not_exists(claim_token, :token), claim_expires_at = if_not_exists(claim_expires_at, :expires), " +
		"created_at = if_not_exists(created_at, :stamp), updated_at = if_not_exists(updated_at, :stamp)"
	updateFinalize = "SET full_user_id = :full, domain_name = :domain, user_api_key = :key, " +
		"user_api_secret = :secret, user_password = :password, #status = :active, created_at = :stamp, updated_at = :stamp"
	updateRelease     = "SET claim_expires_at = :now, updated_at = :stamp"
	updateClaimDelete = "SET #status = :deleting, claim_token = :token, claim_expires_at = :expires, updated_at = :stamp, " +
		"user_id = if_not_exists(user_id, :uid), created_at = if_not_exists(created_at, :stamp) REMOVE deleted_at, " + TTLAttribute
	// updateClaimLeave is updateClaimDelete for a user leaving the pool:
	// the claim carries the tombstone's expiry, so it is final at once.
	updateClaimLeave = "SET #status = :deleting, claim_token = :token, claim_expires_at = :expires, updated_at = :stamp, " +
		"user_id = if_not_exists(user_id, :uid), created_at = if_not_exists(created_at, :stamp), " + TTLAttribute + " = :ttl " +
		"REMOVE deleted_at"
	// updateBury makes a tombstone: no credential attribute at all.
	updateBury = "SET #status = :deleted, deleted_at = :stamp, updated_at = :stamp " +
		"REMOVE full_user_id, domain_name, user_api_key, user_api_secret, user_password"
	updateBuryExpiring = "SET #status = :deleted, deleted_at = :stamp, updated_at = :stamp, " + TTLAttribute + " = :ttl " +
		"REMOVE full_user_id, domain_name, user_api_key, user_api_secret, user_password"
	updateExpire = "SET " + TTLAttribute + " = :ttl, updated_at = :stamp"
)

var statusName = map[string]string{"#status": "status"}

// item is the stored shape of a record. It is converted by hand: the
// SDK's reflective attributevalue package cost every function 131 kB and
// the start-up of the DynamoDB Streams client's schemas (see
// docs/performance.md).
type item struct {
	Sub            string
	UserID         string
	FullUserID     string
	DomainName     string
	UserAPIKey     string
	UserAPISecret  string
	UserPassword   string
	Status         string
	ClaimToken     string
	ClaimExpiresAt int64 // Unix ms, so conditions can compare it
	CreatedAt      string
	UpdatedAt      string
	DeletedAt      string
	ExpiresAt      int64 // Unix s, as DynamoDB's TTL wants it
}

// itemAttribute is one of an item's attributes, a string or an integer:
// an empty or zero one is not stored, unless every item has it.
type itemAttribute struct {
	name   string
	text   *string
	number *int64
	always bool
}

func (it *item) fields() []itemAttribute {
	return []itemAttribute{
		{name: KeyAttribute, text: &it.Sub, always: true}, {name: "user_id", text: &it.UserID, always: true},
		{name: "full_user_id", text: &it.FullUserID}, {name: "domain_name", text: &it.DomainName},
		{name: "user_api_key", text: &it.UserAPIKey}, {name: "user_api_secret", text: &it.UserAPISecret},
		{name: "user_password", text: &it.UserPassword}, {name: "status", text: &it.Status, always: true},
		{name: "claim_token", text: &it.ClaimToken}, {name: "claim_expires_at", number: &it.ClaimExpiresAt},
		{name: "created_at", text: &it.CreatedAt, always: true}, {name: "updated_at", text: &it.UpdatedAt, always: true},
		{name: "deleted_at", text: &it.DeletedAt}, {name: TTLAttribute, number: &it.ExpiresAt},
	}
}

func (it item) attributes() map[string]types.AttributeValue {
	av := map[string]types.AttributeValue{}
	for _, f := range it.fields() {
		switch {
		case f.text != nil && (*f.text != "" || f.always):
			av[f.name] = str(*f.text)
		case f.number != nil && *f.number != 0:
			av[f.name] = &types.AttributeValueMemberN{Value: strconv.FormatInt(*f.number, 10)}
		}
	}
	return av
}

// errAttributeType is a stored attribute of another type than the item's.
var errAttributeType = errors.New("attribute of the wrong type")

// itemOf reads an item; attributes it does not know are ignored, and one
// it knows must have its type (or be NULL, read as absent).
func itemOf(av map[string]types.AttributeValue) (item, error) {
	var it item
	for _, f := range it.fields() {
		switch v := av[f.name].(type) {
		case nil, *types.AttributeValueMemberNULL:
		case *types.AttributeValueMemberS:
			if f.text == nil {
				return item{}, fmt.Errorf("%s: %w", f.name, errAttributeType)
			}
			*f.text = v.Value
		case *types.AttributeValueMemberN:
			n, err := strconv.ParseInt(v.Value, 10, 64)
			if f.number == nil || err != nil {
				return item{}, fmt.Errorf("%s: %w", f.name, errAttributeType)
			}
			*f.number = n
		default:
			return item{}, fmt.Errorf("%s: %w", f.name, errAttributeType)
		}
	}
	return it, nil
}

func (it item) record() (provision.Record, error) {
	r := provision.Record{
		Sub: it.Sub, UserID: it.UserID, FullUserID: it.FullUserID, DomainName: it.DomainName,
		UserAPIKey: it.UserAPIKey, UserAPISecret: it.UserAPISecret, UserPassword: it.UserPassword,
		Status: provision.Status(it.Status), Generation: it.ClaimToken,
	}
	// An ACTIVE or DELETED item's claim attributes are history: the claim
	// that wrote it, which names its generation. Claim's if_not_exists
	// must find every one of them.
	if r.Status == provision.StatusPending || r.Status == provision.StatusDeleting {
		r.ClaimToken = it.ClaimToken
		r.ClaimExpiresAt = time.UnixMilli(it.ClaimExpiresAt)
	}
	if it.ExpiresAt != 0 {
		r.ExpiresAt = time.Unix(it.ExpiresAt, 0)
	}
	var err error
	if r.CreatedAt, err = time.Parse(time.RFC3339Nano, it.CreatedAt); err != nil {
		return provision.Record{}, fmt.Errorf("record %s: bad created_at", it.UserID)
	}
	if r.UpdatedAt, err = time.Parse(time.RFC3339Nano, it.UpdatedAt); err != nil {
		return provision.Record{}, fmt.Errorf("record %s: bad updated_at", it.UserID)
	}
	if it.DeletedAt != "" {
		if r.DeletedAt, err = time.Parse(time.RFC3339Nano, it.DeletedAt); err != nil {
			return provision.Record{}, fmt.Errorf("record %s: bad deleted_at", it.UserID)
		}
	}
	return r, nil
}

func decode(av map[string]types.AttributeValue) (provision.Record, error) {
	it, err := itemOf(av)
	if err != nil {
		return provision.Record{}, fmt.Errorf("decoding record: %w", err)
	}
	return it.record()
}

func str(s string) *types.AttributeValueMemberS { return &types.AttributeValueMemberS{Value: s} }

func stamp(t time.Time) *types.AttributeValueMemberS { return str(t.UTC().Format(timeLayout)) }

func millis(t time.Time) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(t.UnixMilli(), 10)}
}

func seconds(t time.Time) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(t.Unix(), 10)}
}

func key(sub string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{KeyAttribute: str(sub)}
}

// seenCondition is the condition that the record is still seen and, if
// it was PENDING or DELETING, that its claim is not live at now.
func seenCondition(seen provision.Record, now time.Time) (string, map[string]string, map[string]types.AttributeValue) {
	switch seen.Status {
	case "":
		return condAbsent, map[string]string{"#sub": KeyAttribute}, map[string]types.AttributeValue{}
	case provision.StatusPending, provision.StatusDeleting:
		return condSeenExpired, statusName, map[string]types.AttributeValue{
			":seen": str(string(seen.Status)), ":generation": str(seen.Generation), ":now": millis(now)}
	}
	values := map[string]types.AttributeValue{":seen": str(string(seen.Status)), ":generation": str(seen.Generation)}
	if seen.ExpiresAt.IsZero() {
		return condSeenUnclaimed, statusName, values
	}
	values[":seenttl"] = seconds(seen.ExpiresAt)
	return condSeenExpiring, statusName, values
}

// Claim makes the record PENDING under c where MayClaim holds.
//
// The common cases cost one call on any DynamoDB-compatible server: an
// UpdateItem that sets each attribute only if it is absent, so it creates
// the claim on a new sub and leaves an existing item as it was, and
// returns the item as it was before. ACTIVE and DELETED items keep their
// claim attributes for this reason: if_not_exists must find every one of
// them, and the claim token that wrote an item names its generation. Only
// a take-over (an expired claim, or a tombstone the user revives) needs a
// second, conditional write.
func (a *Accounts) Claim(ctx context.Context, c provision.Claim) (provision.Record, bool, error) {
	out, err := a.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(a.table),
		Key:                      key(c.Sub),
		UpdateExpression:         aws.String(updateClaim),
		ExpressionAttributeNames: statusName,
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pending": str(string(provision.StatusPending)), ":uid": str(c.UserID), ":token": str(c.Token),
			":expires": millis(c.ExpiresAt), ":stamp": stamp(c.Now),
		},
		ReturnValues: types.ReturnValueAllOld,
	})
	if err != nil {
		return provision.Record{}, false, fmt.Errorf("writing claim: %w", awsdep.Failure(awsdep.DynamoDB, err))
	}
	if len(out.Attributes) == 0 {
		return provision.Record{}, true, nil
	}
	rec, err := decode(out.Attributes)
	if err != nil || !provision.MayClaim(rec, c) {
		return rec, false, err
	}
	return a.takeOver(ctx, c, rec)
}

// takeOver replaces the record seen by c's PENDING one, if it is still
// seen. It replaces the whole item: a revived tombstone keeps no expiry.
func (a *Accounts) takeOver(ctx context.Context, c provision.Claim, seen provision.Record) (provision.Record, bool, error) {
	av := item{
		Sub: c.Sub, UserID: c.UserID, Status: string(provision.StatusPending), ClaimToken: c.Token,
		ClaimExpiresAt: c.ExpiresAt.UnixMilli(), CreatedAt: stamp(c.Now).Value, UpdatedAt: stamp(c.Now).Value,
	}.attributes()
	cond, names, values := seenCondition(seen, c.Now)
	_, err := a.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(a.table), Item: av,
		ConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	})
	if err = conditional(err, "taking over a claim"); !errors.Is(err, provision.ErrClaimLost) {
		return provision.Record{}, err == nil, err
	}
	// Someone else took it over or finished, or this write's answer was
	// lost after it succeeded: the record says which (see Claim.Wrote).
	rec, err := a.Get(ctx, c.Sub)
	if errors.Is(err, provision.ErrNotProvisioned) {
		return provision.Record{}, false, nil
	}
	return rec, false, err
}

// Finalize stores the credentials (MayEndCreate).
func (a *Accounts) Finalize(ctx context.Context, c provision.Claim, cr provision.Credentials) (provision.Record, error) {
	out, err := a.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(a.table),
		Key:                      key(c.Sub),
		UpdateExpression:         aws.String(updateFinalize),
		ConditionExpression:      aws.String(condHeldBy),
		ExpressionAttributeNames: statusName,
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":full": str(cr.FullUserID), ":domain": str(cr.DomainName), ":key": str(cr.UserAPIKey),
			":secret": str(cr.UserAPISecret), ":password": str(cr.UserPassword),
			":active": str(string(provision.StatusActive)), ":status": str(string(provision.StatusPending)),
			":token": str(c.Token), ":stamp": stamp(c.Now),
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	if err != nil {
		return provision.Record{}, conditional(err, "finalizing")
	}
	return decode(out.Attributes)
}

// Release ends c's claim at c.Now and keeps the record (MayEndCreate).
func (a *Accounts) Release(ctx context.Context, c provision.Claim) error {
	return a.update(ctx, c.Sub, "releasing claim", updateRelease, condHeldBy, statusName, map[string]types.AttributeValue{
		":status": str(string(provision.StatusPending)), ":token": str(c.Token), ":now": millis(c.Now), ":stamp": stamp(c.Now),
	})
}

// Drop deletes c's PENDING record (MayEndCreate).
func (a *Accounts) Drop(ctx context.Context, c provision.Claim) error {
	return a.deleteHeld(ctx, c, provision.StatusPending, "dropping claim")
}

// deleteHeld deletes the item if it is in status under c's claim.
func (a *Accounts) deleteHeld(ctx context.Context, c provision.Claim, status provision.Status, doing string) error {
	_, err := a.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                aws.String(a.table),
		Key:                      key(c.Sub),
		ConditionExpression:      aws.String(condHeldBy),
		ExpressionAttributeNames: statusName,
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":status": str(string(status)), ":token": str(c.Token),
		},
	})
	return conditional(err, doing)
}

// update is one conditional UpdateItem of sub's record.
func (a *Accounts) update(ctx context.Context, sub, doing, update, cond string, names map[string]string, values map[string]types.AttributeValue) error {
	_, err := a.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(a.table), Key: key(sub),
		UpdateExpression: aws.String(update), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	})
	return conditional(err, doing)
}

// Get reads a record with a consistent read.
func (a *Accounts) Get(ctx context.Context, sub string) (provision.Record, error) {
	out, err := a.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(a.table), Key: key(sub), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return provision.Record{}, fmt.Errorf("getting record: %w", awsdep.Failure(awsdep.DynamoDB, err))
	}
	if len(out.Item) == 0 {
		return provision.Record{}, provision.ErrNotProvisioned
	}
	return decode(out.Item)
}

// ClaimDelete makes the record DELETING under c (MayClaimDelete), with
// end's expiry.
func (a *Accounts) ClaimDelete(ctx context.Context, c provision.Claim, seen provision.Record, end provision.Ending) error {
	cond, names, values := seenCondition(seen, c.Now)
	names = maps.Clone(names)
	names["#status"] = "status"
	values[":deleting"] = str(string(provision.StatusDeleting))
	values[":token"] = str(c.Token)
	values[":expires"] = millis(c.ExpiresAt)
	values[":stamp"] = stamp(c.Now)
	values[":uid"] = str(c.UserID)
	update := updateClaimDelete
	if !end.ExpiresAt.IsZero() {
		update, values[":ttl"] = updateClaimLeave, seconds(end.ExpiresAt)
	}
	return a.update(ctx, c.Sub, "claiming the delete", update, cond, names, values)
}

// FinishDelete leaves end in place of c's DELETING record (MayFinishDelete).
func (a *Accounts) FinishDelete(ctx context.Context, c provision.Claim, end provision.Ending) error {
	if !end.Tombstone {
		return a.deleteHeld(ctx, c, provision.StatusDeleting, "deleting record")
	}
	values := map[string]types.AttributeValue{
		":status": str(string(provision.StatusDeleting)), ":token": str(c.Token),
		":deleted": str(string(provision.StatusDeleted)), ":stamp": stamp(c.Now),
	}
	update := updateBury
	if !end.ExpiresAt.IsZero() {
		update, values[":ttl"] = updateBuryExpiring, seconds(end.ExpiresAt)
	}
	return a.update(ctx, c.Sub, "writing the tombstone", update, condHeldBy, statusName, values)
}

// Expire gives the tombstone seen an expiry (MayExpire).
func (a *Accounts) Expire(ctx context.Context, seen provision.Record, at, now time.Time) error {
	return a.update(ctx, seen.Sub, "expiring the tombstone", updateExpire, condSeenKept, statusName, map[string]types.AttributeValue{
		":deleted": str(string(provision.StatusDeleted)), ":generation": str(seen.Generation),
		":ttl": seconds(at), ":stamp": stamp(now),
	})
}

func conditional(err error, op string) error {
	if err == nil {
		return nil
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return provision.ErrClaimLost
	}
	return fmt.Errorf("%s: %w", op, awsdep.Failure(awsdep.DynamoDB, err))
}

// ScanAPI is the operation a reconcile needs. Only operators are granted
// it; the functions never scan.
type ScanAPI interface {
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Scan reads every record of table with consistent reads, in segments read
// in parallel, page by page, and calls fn for each; fn is called from one
// goroutine at a time. It stops at the first error.
func Scan(ctx context.Context, api ScanAPI, table string, segments int, fn func(provision.Record) error) error {
	segments = max(segments, 1)
	g, ctx := errgroup.WithContext(ctx)
	var mu sync.Mutex
	for seg := range segments {
		g.Go(func() error {
			in := &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
				Segment: aws.Int32(int32(seg)), TotalSegments: aws.Int32(int32(segments))}
			for p := dynamodb.NewScanPaginator(api, in); p.HasMorePages(); {
				out, err := p.NextPage(ctx)
				if err != nil {
					return fmt.Errorf("scanning %s: %w", table, awsdep.Failure(awsdep.DynamoDB, err))
				}
				for _, it := range out.Items {
					rec, err := decode(it)
					if err == nil {
						mu.Lock()
						err = fn(rec)
						mu.Unlock()
					}
					if err != nil {
						return err
					}
				}
			}
			return nil
		})
	}
	return g.Wait()
}
