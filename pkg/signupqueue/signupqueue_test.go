package signupqueue

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
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
	if err := json.Unmarshal([]byte(aws.ToString(f.in.MessageBody)), &m); err != nil || m != (Message{Sub: "s1", UserPoolID: "p", Attempt: 1}) {
		t.Fatalf("body %s", aws.ToString(f.in.MessageBody))
	}
	if aws.ToString(f.in.QueueUrl) != "https://sqs.local/123/retry" || aws.ToString(f.in.MessageAttributes["reason"].StringValue) != "kandy_unavailable" {
		t.Fatalf("input %+v", f.in)
	}
	f.err = errors.New("throttled")
	if err := q.Send(context.Background(), m, ""); err == nil {
		t.Fatal("a refused send succeeded")
	}
}

func TestDecode(t *testing.T) {
	if m, err := Decode(`{"sub":"s1","user_pool_id":"p","attempt":2}`); err != nil || m.Sub != "s1" || m.Attempt != 2 {
		t.Fatalf("Decode = %+v, %v", m, err)
	}
	for _, bad := range []string{``, `{}`, `{"sub":""}`, `{"sub":"a b"}`, `{"sub":"s","x":1}`, `{"sub":"s","attempt":-1}`, `{"sub":"s"} {}`, `[]`} {
		if _, err := Decode(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%q) = %v", bad, err)
		}
	}
}
