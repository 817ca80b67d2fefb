// Package signupqueue carries sign-ups whose provisioning failed in the
// trigger to the retry worker, over SQS.
package signupqueue

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

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
	api SendAPI
	url string
}

// New returns the queue at url.
func New(api SendAPI, url string) *Queue { return &Queue{api: api, url: url} }

// Send enqueues m; reason, if set, travels as the message attribute "reason".
func (q *Queue) Send(ctx context.Context, m Message, reason provision.Code) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	in := &sqs.SendMessageInput{QueueUrl: aws.String(q.url), MessageBody: aws.String(string(body))}
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
