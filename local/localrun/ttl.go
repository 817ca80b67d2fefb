package localrun

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/store"
)

// ttlSweep is how often the stack removes expired items, as DynamoDB's
// TTL does some time after an item's expiry.
const ttlSweep = time.Minute

// ExpireItems deletes the items of the table whose TTL attribute (the
// template's TimeToLiveSpecification) is at or before now, and returns how
// many. dynalite has no TTL; the stack runs this every minute. An item
// written again since it was read is left alone.
func (s *Stack) ExpireItems(ctx context.Context, now time.Time) (int, error) {
	tpl, err := samtemplate.Load(samtemplate.Path())
	if err != nil {
		return 0, err
	}
	attr, err := tpl.TimeToLive()
	if err != nil || attr == "" {
		return 0, err
	}
	names := map[string]string{"#ttl": attr}
	in := &dynamodb.ScanInput{TableName: aws.String(s.Table), FilterExpression: aws.String("#ttl <= :now"), ExpressionAttributeNames: names,
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Unix(), 10)}}}
	deleted := 0
	for {
		out, err := s.DB.Scan(ctx, in)
		if err != nil {
			return deleted, fmt.Errorf("scanning %s for expired items: %w", s.Table, err)
		}
		for _, it := range out.Items {
			_, err := s.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.Table), Key: map[string]types.AttributeValue{store.KeyAttribute: it[store.KeyAttribute]},
				ConditionExpression: aws.String("#ttl = :seen"), ExpressionAttributeNames: names,
				ExpressionAttributeValues: map[string]types.AttributeValue{":seen": it[attr]}})
			var changed *types.ConditionalCheckFailedException
			switch {
			case err == nil:
				deleted++
			case !errors.As(err, &changed):
				return deleted, fmt.Errorf("deleting an expired item: %w", err)
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return deleted, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// sweepTTL runs ExpireItems every ttlSweep until the stack stops.
func (s *Stack) sweepTTL() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(ttlSweep)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				_, _ = s.ExpireItems(ctx, now)
			}
		}
	}()
	s.stops = append(s.stops, func() { cancel(); <-done })
}
