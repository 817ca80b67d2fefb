// Package signupqueue carries sign-ups whose provisioning failed in the
// trigger to the retry worker, over SQS.
package signupqueue

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/userid"
)

// Message asks for one user to be provisioned again.
type Message struct {
	Sub        string `json:"sub"`
	UserPoolID string `json:"user_pool_id"`
	Attempt    int    `json:"attempt"`
}

// ErrMalformed marks a body that is not a Message.
var ErrMalformed = fmt.Errorf("%w: malformed retry message", provision.ErrInvalidRequest)

// Decode parses a message body strictly.
func Decode(body string) (Message, error) {
	var m Message
	dec := json.NewDecoder(bytes.NewReader([]byte(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil || dec.More() {
		return Message{}, ErrMalformed
	}
	if userid.Validate(m.Sub) != nil || m.Attempt < 0 {
		return Message{}, ErrMalformed
	}
	return m, nil
}

// SendAPI is the SQS operation used.
type SendAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// Queue is one SQS queue.
type Queue struct {
	api   SendAPI
	url   string
	delay time.Duration
}

// New returns the queue at url.
func New(api SendAPI, url string) *Queue { return &Queue{api: api, url: url} }

// Delayed returns the queue whose messages Send hides for d after sending
// (SQS's DelaySeconds, whole seconds).
func (q *Queue) Delayed(d time.Duration) *Queue {
	c := *q
	c.delay = d
	return &c
}

// Send enqueues m; reason, if set, travels as the message attribute "reason".
func (q *Queue) Send(ctx context.Context, m Message, reason provision.Code) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	in := &sqs.SendMessageInput{QueueUrl: aws.String(q.url), MessageBody: aws.String(string(body)), DelaySeconds: int32(q.delay / time.Second)}
	if reason != "" {
		in.MessageAttributes = map[string]types.MessageAttributeValue{
			"reason": {DataType: aws.String("String"), StringValue: aws.String(string(reason))},
		}
	}
	if _, err := q.api.SendMessage(ctx, in); err != nil {
		return fmt.Errorf("sending to the retry queue: %w", err)
	}
	return nil
}

// SendRaw forwards a body that could not be decoded, for a person to see.
func (q *Queue) SendRaw(ctx context.Context, body string, reason provision.Code) error {
	_, err := q.api.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl: aws.String(q.url), MessageBody: aws.String(body),
		MessageAttributes: map[string]types.MessageAttributeValue{
			"reason": {DataType: aws.String("String"), StringValue: aws.String(string(reason))},
		},
	})
	return err
}

// VisibilityAPI is what Redelivery uses of SQS.
type VisibilityAPI interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, opts ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// Redelivery hides received messages of one queue for a while: SQS hands
// a message over again once its visibility timeout, as last set, ends.
type Redelivery struct {
	api VisibilityAPI
	url string

	mu      sync.Mutex
	timeout time.Duration // the queue's, once read
	read    bool
}

// NewRedelivery returns the redelivery of the queue at url.
func NewRedelivery(api VisibilityAPI, url string) *Redelivery { return &Redelivery{api: api, url: url} }

// VisibilityTimeout is the queue's, read at the first call that succeeds
// and kept: once per container.
func (r *Redelivery) VisibilityTimeout(ctx context.Context) (time.Duration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.read {
		return r.timeout, nil
	}
	out, err := r.api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(r.url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameVisibilityTimeout}})
	if err != nil {
		return 0, fmt.Errorf("reading the retry queue's visibility timeout: %w", err)
	}
	secs, err := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameVisibilityTimeout)])
	if err != nil || secs < 0 {
		return 0, fmt.Errorf("the retry queue's visibility timeout %q is not a number of seconds", out.Attributes[string(types.QueueAttributeNameVisibilityTimeout)])
	}
	r.timeout, r.read = time.Duration(secs)*time.Second, true
	return r.timeout, nil
}

// ShowAfter hides a received message for d from now, in whole seconds.
func (r *Redelivery) ShowAfter(ctx context.Context, receiptHandle string, d time.Duration) error {
	_, err := r.api.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(r.url),
		ReceiptHandle: aws.String(receiptHandle), VisibilityTimeout: int32(d / time.Second)})
	if err != nil {
		return fmt.Errorf("changing a message's visibility: %w", err)
	}
	return nil
}
