package store

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	smithy "github.com/aws/smithy-go"
)

// fakeDynamo is a plain-struct stand-in for the four operations of API: it
// records every input and answers from its fields, so a test can say what
// DynamoDB answered and check exactly what the store asked. The conditions
// themselves are checked against dynalite in local/integration.
type fakeDynamo struct {
	updates []*dynamodb.UpdateItemInput
	puts    []*dynamodb.PutItemInput
	gets    []*dynamodb.GetItemInput
	deletes []*dynamodb.DeleteItemInput

	updateOut *dynamodb.UpdateItemOutput
	updateErr error
	putErr    error
	getOut    *dynamodb.GetItemOutput
	getErr    error
	deleteErr error
}

func (f *fakeDynamo) UpdateItem(_ context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	f.updates = append(f.updates, in)
	if f.updateErr != nil {
		return nil, f.updateErr
	}
	if f.updateOut == nil {
		return &dynamodb.UpdateItemOutput{}, nil
	}
	return f.updateOut, nil
}

func (f *fakeDynamo) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	f.puts = append(f.puts, in)
	if f.putErr != nil {
		return nil, f.putErr
	}
	return &dynamodb.PutItemOutput{}, nil
}

func (f *fakeDynamo) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	f.gets = append(f.gets, in)
	if f.getErr != nil {
		return nil, f.getErr
	}
	if f.getOut == nil {
		return &dynamodb.GetItemOutput{}, nil
	}
	return f.getOut, nil
}

func (f *fakeDynamo) DeleteItem(_ context.Context, in *dynamodb.DeleteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	f.deletes = append(f.deletes, in)
	if f.deleteErr != nil {
		return nil, f.deleteErr
	}
	return &dynamodb.DeleteItemOutput{}, nil
}

// fakeScan answers Scan from items per segment, one page per slice,
// recording each input.
type fakeScan struct {
	mu    sync.Mutex
	pages map[int32][][]map[string]types.AttributeValue
	err   error
	ins   []*dynamodb.ScanInput
}

func (f *fakeScan) Scan(_ context.Context, in *dynamodb.ScanInput, _ ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	f.mu.Lock()
	f.ins = append(f.ins, in)
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	pages := f.pages[*in.Segment]
	i := 0
	if in.ExclusiveStartKey != nil {
		i, _ = strconv.Atoi(in.ExclusiveStartKey["page"].(*types.AttributeValueMemberN).Value)
	}
	out := &dynamodb.ScanOutput{}
	if i < len(pages) {
		out.Items = pages[i]
	}
	if i+1 < len(pages) {
		out.LastEvaluatedKey = map[string]types.AttributeValue{"page": &types.AttributeValueMemberN{Value: strconv.Itoa(i + 1)}}
	}
	return out, nil
}

// conditionFailed is DynamoDB's answer to a write whose condition fails.
var conditionFailed = &types.ConditionalCheckFailedException{Message: new(string)}

// throttled is an answer the SDK would retry: the store reports it as a
// dependency failure (503) rather than a fault.
var throttled = &smithy.GenericAPIError{Code: "ThrottlingException", Message: "slow down"}

// refused is an answer no retry mends (a missing grant).
var refused = &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "no"}

var errFn = errors.New("fn refused")

var now = time.Date(2026, 11, 25, 9, 30, 0, 123_000_000, time.UTC)
