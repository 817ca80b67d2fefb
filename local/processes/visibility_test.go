package processes

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// reschedulingFunction fails every message and hides it for hide, as the
// retry worker does, recording when each delivery came and its count.
type reschedulingFunction struct {
	sqs      *sqs.Client
	queueURL string
	hide     int32

	mu     sync.Mutex
	at     []time.Time
	counts []string
	errs   []error
}

func (f *reschedulingFunction) Invoke(ctx context.Context, raw []byte) ([]byte, error) {
	var ev events.SQSEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, err
	}
	var resp events.SQSEventResponse
	for _, r := range ev.Records {
		_, err := f.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(f.queueURL),
			ReceiptHandle: aws.String(r.ReceiptHandle), VisibilityTimeout: f.hide})
		f.mu.Lock()
		f.at, f.counts = append(f.at, time.Now()), append(f.counts, r.Attributes["ApproximateReceiveCount"])
		if err != nil {
			f.errs = append(f.errs, err)
		}
		f.mu.Unlock()
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
	}
	return json.Marshal(resp)
}

func (f *reschedulingFunction) deliveries() ([]time.Time, []string, []error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.at...), append([]string(nil), f.counts...), append([]error(nil), f.errs...)
}

// TestEventSourceHonoursVisibilityAndDelay: through goaws and the JSON
// translation, as make run polls, a message sent with DelaySeconds is
// first delivered after the delay, and one the function hides with
// ChangeMessageVisibility comes back at the new time, not at the queue's
// visibility timeout, with its receive count; after maxReceiveCount
// receives it goes to the dead-letter queue.
func TestEventSourceHonoursVisibilityAndDelay(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, q := retryQueues(t, "visibility", 30, 3)
	fn := &reschedulingFunction{sqs: c, queueURL: q.RetryURL, hide: 2}
	src := &EventSource{SQS: c, QueueURL: q.RetryURL, QueueARN: "arn:aws:sqs:us-east-1:100010001000:visibility", Function: fn,
		BatchSize: 10, ReportBatchItemFailures: true, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	done := make(chan struct{})
	go func() { src.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	sent := time.Now()
	if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.RetryURL), MessageBody: aws.String("m"), DelaySeconds: 2}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if at, _, _ := fn.deliveries(); len(at) >= 3 {
			break
		}
	}
	at, counts, errs := fn.deliveries()
	if len(errs) > 0 {
		t.Errorf("ChangeMessageVisibility errors %v", errs)
	}
	if len(at) < 3 {
		t.Fatalf("%d deliveries in 15 s, want 3, each 2 s after the last", len(at))
	}
	// goaws makes hidden messages visible on a 1 s tick, and a loaded
	// machine adds to it; the visibility timeout, 30 s, is far above.
	const late = 10 * time.Second
	if d := at[0].Sub(sent); d < 2*time.Second || d > late {
		t.Errorf("first delivery %v after sending with DelaySeconds 2", d)
	}
	for i := 1; i < 3; i++ {
		if d := at[i].Sub(at[i-1]); d < 2*time.Second || d > late {
			t.Errorf("delivery %d came %v after the one before; hidden for 2 s of a 30 s visibility timeout", i+1, d)
		}
	}
	if counts[0] != "1" || counts[1] != "2" || counts[2] != "3" {
		t.Errorf("receive counts %v, want 1 2 3", counts)
	}
	var moved int
	for deadline := time.Now().Add(5 * time.Second); moved == 0 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.DeadLetterURL)})
		if err != nil {
			t.Fatal(err)
		}
		moved = len(out.Messages)
	}
	if moved != 1 {
		t.Errorf("after 3 receives (maxReceiveCount 3): %d in the dead-letter queue, want 1", moved)
	}
	if at, _, _ := fn.deliveries(); len(at) != 3 {
		t.Errorf("after 3 receives (maxReceiveCount 3): %d deliveries, want 3", len(at))
	}
}
