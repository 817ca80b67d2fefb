package signupqueue

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

type fakeSQS struct {
	in  *sqs.SendMessageInput
	err error
}

func (f *fakeSQS) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	f.in = in
	return &sqs.SendMessageOutput{}, f.err
}

func TestSend(t *testing.T) {
	f := &fakeSQS{}
	q := New(f, "https://sqs.local/123/retry")
	if err := q.Send(context.Background(), Message{Sub: "s1", UserPoolID: "p", Attempt: 1}, "kandy_unavailable"); err != nil {
		t.Fatal(err)
	}
	var m Message
	if err := json.Unmarshal([]byte(aws.ToString(f.in.MessageBody)), &m); err != nil {
		t.Fatalf("body %s: %v", aws.ToString(f.in.MessageBody), err)
	}
	if want := (Message{Sub: "s1", UserPoolID: "p", Attempt: 1}); m != want {
		t.Fatalf("message\n got %+v\nwant %+v", m, want)
	}
	if got, want := aws.ToString(f.in.QueueUrl), "https://sqs.local/123/retry"; got != want {
		t.Errorf("queue %q, want %q", got, want)
	}
	if got := aws.ToString(f.in.MessageAttributes["reason"].StringValue); got != "kandy_unavailable" {
		t.Errorf("reason attribute %q, want %q", got, "kandy_unavailable")
	}
	f.err = errors.New("throttled")
	if err := q.Send(context.Background(), m, ""); err == nil {
		t.Fatal("a refused send succeeded")
	}
}

func TestDecode(t *testing.T) {
	m, err := Decode(`{"sub":"s1","user_pool_id":"p","attempt":2}`)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if m.Sub != "s1" {
		t.Errorf("Decode: sub %q, want %q", m.Sub, "s1")
	}
	if m.Attempt != 2 {
		t.Errorf("Decode: attempt %d, want 2", m.Attempt)
	}
	for _, bad := range []string{``, `{}`, `{"sub":""}`, `{"sub":"a b"}`, `{"sub":"s","x":1}`, `{"sub":"s","attempt":-1}`, `{"sub":"s"} {}`, `[]`} {
		if _, err := Decode(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%q) = %v", bad, err)
		}
	}
}

func TestDelayedHidesTheMessage(t *testing.T) {
	f := &fakeSQS{}
	q := New(f, "https://sqs.local/123/retry")
	if err := q.Delayed(2*time.Second).Send(context.Background(), Message{Sub: "s1"}, ""); err != nil {
		t.Fatal(err)
	}
	if f.in.DelaySeconds != 2 {
		t.Errorf("DelaySeconds %d, want 2", f.in.DelaySeconds)
	}
	if err := q.Send(context.Background(), Message{Sub: "s1"}, ""); err != nil {
		t.Fatal(err)
	}
	if f.in.DelaySeconds != 0 {
		t.Errorf("the queue Delayed was called on changed: DelaySeconds %d, want 0", f.in.DelaySeconds)
	}
}

type fakeVisibility struct {
	timeout string
	errs    []error // answers of GetQueueAttributes, in turn; then nil
	reads   int
	change  *sqs.ChangeMessageVisibilityInput
}

func (f *fakeVisibility) GetQueueAttributes(_ context.Context, in *sqs.GetQueueAttributesInput, _ ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	f.reads++
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	if len(in.AttributeNames) != 1 || in.AttributeNames[0] != types.QueueAttributeNameVisibilityTimeout || aws.ToString(in.QueueUrl) != "u" {
		return nil, errors.New("unexpected request")
	}
	return &sqs.GetQueueAttributesOutput{Attributes: map[string]string{"VisibilityTimeout": f.timeout}}, nil
}

func (f *fakeVisibility) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	f.change = in
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

func TestRedeliveryReadsTheVisibilityTimeoutOnce(t *testing.T) {
	f := &fakeVisibility{timeout: "180", errs: []error{errors.New("throttled")}}
	r := NewRedelivery(f, "u")
	if _, err := r.VisibilityTimeout(context.Background()); err == nil {
		t.Fatal("a failed read gave a timeout")
	}
	for range 3 {
		d, err := r.VisibilityTimeout(context.Background())
		if err != nil {
			t.Fatalf("VisibilityTimeout: %v", err)
		}
		if d != 180*time.Second {
			t.Fatalf("VisibilityTimeout = %v, want 3m0s", d)
		}
	}
	if f.reads != 2 {
		t.Errorf("%d reads, want 2: the failed one, then one kept", f.reads)
	}
	for _, bad := range []string{"", "soon", "-1"} {
		if _, err := NewRedelivery(&fakeVisibility{timeout: bad}, "u").VisibilityTimeout(context.Background()); err == nil {
			t.Errorf("visibility timeout %q accepted", bad)
		}
	}
}

func TestRedeliveryShowsTheMessageAfterTheDelay(t *testing.T) {
	f := &fakeVisibility{}
	if err := NewRedelivery(f, "u").ShowAfter(context.Background(), "rh", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(f.change.QueueUrl); got != "u" {
		t.Errorf("ChangeMessageVisibility: queue %q, want %q", got, "u")
	}
	if got := aws.ToString(f.change.ReceiptHandle); got != "rh" {
		t.Errorf("ChangeMessageVisibility: receipt handle %q, want %q", got, "rh")
	}
	if f.change.VisibilityTimeout != 15 {
		t.Errorf("ChangeMessageVisibility: visibility timeout %d, want 15", f.change.VisibilityTimeout)
	}
}
