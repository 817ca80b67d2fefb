package processes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// EventSource does for one queue and one function what Lambda's SQS event
// source mapping does: it long-polls the queue, gathers a batch of up to
// BatchSize messages for at most Window after the first, invokes the
// function with it, and deletes the messages that succeeded. The others
// stay in flight and come back when the queue's visibility timeout ends;
// the queue's redrive policy moves them on after too many receives.
type EventSource struct {
	SQS       *sqs.Client
	QueueURL  string
	QueueARN  string
	Function  Invoker
	BatchSize int           // 1 to 10; default 10
	Window    time.Duration // MaximumBatchingWindowInSeconds
	// ReportBatchItemFailures: the function names the failed messages
	// (FunctionResponseTypes); otherwise a batch succeeds or fails whole.
	ReportBatchItemFailures bool
	Log                     *slog.Logger

	mu       sync.Mutex
	received map[string]int // receives per message id; goaws does not count them
}

// Run polls until ctx ends.
func (e *EventSource) Run(ctx context.Context) {
	if e.BatchSize <= 0 || e.BatchSize > 10 {
		e.BatchSize = 10
	}
	for ctx.Err() == nil {
		msgs, err := e.batch(ctx)
		if err != nil {
			if ctx.Err() == nil {
				e.Log.Warn("event source: receiving failed", "queue", e.QueueARN, "err", err.Error())
				sleep(ctx, time.Second)
			}
			continue
		}
		if len(msgs) > 0 {
			e.deliver(ctx, msgs)
		}
	}
}

// batch waits up to 20 s for a first message, then gathers more for the
// batching window or until the batch is full.
func (e *EventSource) batch(ctx context.Context) ([]types.Message, error) {
	msgs, err := e.receive(ctx, e.BatchSize, 20)
	if err != nil || len(msgs) == 0 {
		return msgs, err
	}
	for deadline := time.Now().Add(e.Window); len(msgs) < e.BatchSize && time.Now().Before(deadline); {
		sleep(ctx, min(200*time.Millisecond, time.Until(deadline)))
		more, err := e.receive(ctx, e.BatchSize-len(msgs), 0)
		if err != nil {
			break
		}
		msgs = append(msgs, more...)
	}
	return msgs, nil
}

func (e *EventSource) receive(ctx context.Context, n int, wait int32) ([]types.Message, error) {
	out, err := e.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(e.QueueURL), MaxNumberOfMessages: int32(n), WaitTimeSeconds: wait,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil {
		return nil, err
	}
	return out.Messages, nil
}

// deliver invokes the function with a batch and deletes what succeeded.
func (e *EventSource) deliver(ctx context.Context, msgs []types.Message) {
	raw, _ := json.Marshal(e.event(msgs))
	out, err := e.Function.Invoke(ctx, raw)
	if err != nil {
		e.Log.Warn("event source: the batch failed; its messages return after the visibility timeout",
			"queue", e.QueueARN, "messages", len(msgs), "err", err.Error())
		if errors.Is(err, ErrThrottled) {
			sleep(ctx, time.Second)
		}
		return
	}
	for _, m := range e.succeeded(msgs, out) {
		if _, err := e.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(e.QueueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
			e.Log.Warn("event source: deleting a message failed", "queue", e.QueueARN, "err", err.Error())
			continue
		}
		e.mu.Lock()
		delete(e.received, aws.ToString(m.MessageId))
		e.mu.Unlock()
	}
}

// event is the SQS event Lambda sends, with each message's receive count.
func (e *EventSource) event(msgs []types.Message) events.SQSEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.received == nil {
		e.received = map[string]int{}
	}
	var ev events.SQSEvent
	for _, m := range msgs {
		id := aws.ToString(m.MessageId)
		e.received[id]++
		attrs := map[string]string{}
		for k, v := range m.Attributes {
			attrs[k] = v
		}
		attrs["ApproximateReceiveCount"] = strconv.Itoa(e.received[id])
		mattrs := map[string]events.SQSMessageAttribute{}
		for k, v := range m.MessageAttributes {
			mattrs[k] = events.SQSMessageAttribute{StringValue: v.StringValue, DataType: aws.ToString(v.DataType)}
		}
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: id, ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
			Md5OfBody: aws.ToString(m.MD5OfBody), Attributes: attrs, MessageAttributes: mattrs,
			EventSource: "aws:sqs", EventSourceARN: e.QueueARN, AWSRegion: "us-east-1",
		})
	}
	return ev
}

// succeeded reads the function's answer as Lambda does: with
// ReportBatchItemFailures, every message but the failures it names; an
// answer it cannot read, or naming a message not in the batch, fails the
// whole batch.
func (e *EventSource) succeeded(msgs []types.Message, out []byte) []types.Message {
	if !e.ReportBatchItemFailures {
		return msgs
	}
	if t := bytes.TrimSpace(out); len(t) == 0 || string(t) == "null" {
		return msgs
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil
	}
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	var ok []types.Message
	for _, m := range msgs {
		if failed[aws.ToString(m.MessageId)] {
			delete(failed, aws.ToString(m.MessageId))
			continue
		}
		ok = append(ok, m)
	}
	if len(failed) > 0 {
		return nil
	}
	return ok
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
