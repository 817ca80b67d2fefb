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
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/kandy-provisioner/kandy-provisioner/local/guard"
)

func TestSucceededReadsTheFunctionsAnswerAsLambda(t *testing.T) {
	msgs := []types.Message{{MessageId: aws.String("1")}, {MessageId: aws.String("2")}, {MessageId: aws.String("3")}}
	ids := func(ms []types.Message) string {
		s := ""
		for _, m := range ms {
			s += aws.ToString(m.MessageId)
		}
		return s
	}
	reporting := &EventSource{ReportBatchItemFailures: true}
	for answer, want := range map[string]string{
		`{"batchItemFailures":[{"itemIdentifier":"2"}]}`: "13",
		`{"batchItemFailures":[]}`:                       "123",
		`null`:                                           "123",
		``:                                               "123",
		`{"batchItemFailures":[{"itemIdentifier":"9"}]}`: "",
		`{"batchItemFailures":[{"itemIdentifier":""}]}`:  "",
		`not json`: "",
	} {
		if got := ids(reporting.succeeded(msgs, []byte(answer))); got != want {
			t.Errorf("answer %q: succeeded %q, want %q", answer, got, want)
		}
	}
	if got := ids((&EventSource{}).succeeded(msgs, []byte(`{"batchItemFailures":[{"itemIdentifier":"2"}]}`))); got != "123" {
		t.Errorf("without ReportBatchItemFailures the answer decides nothing; succeeded %q", got)
	}
}

// recordingFunction fails message "b" once and records every delivery.
type recordingFunction struct {
	mu      sync.Mutex
	batches [][]events.SQSMessage
	failedB bool
}

func (f *recordingFunction) Invoke(_ context.Context, raw []byte) ([]byte, error) {
	var ev events.SQSEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, ev.Records)
	var resp events.SQSEventResponse
	for _, r := range ev.Records {
		if r.Body == "b" && !f.failedB {
			f.failedB = true
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
		}
	}
	return json.Marshal(resp)
}

func (f *recordingFunction) deliveries() (batches int, perBody map[string][]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	perBody = map[string][]string{}
	for _, b := range f.batches {
		for _, r := range b {
			perBody[r.Body] = append(perBody[r.Body], r.Attributes["ApproximateReceiveCount"])
		}
	}
	return len(f.batches), perBody
}

// retryQueues starts goaws with a retry queue and its dead-letter queue.
func retryQueues(t *testing.T, name string, visibility, maxReceives int) (*sqs.Client, Queues) {
	t.Helper()
	srv, err := StartSQS(t.TempDir(), socketDir(t), guard.Guard{Name: "sqs", Audience: guard.Programs}, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	c := SQS(srv.URL)
	q, err := CreateRetryQueues(context.Background(), c, name, visibility, maxReceives)
	if err != nil {
		t.Fatal(err)
	}
	return c, q
}

func TestEventSourceBatchesAndRedeliversFailures(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, q := retryQueues(t, "batching", 1, 5)
	send := func(body string) {
		if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.RetryURL), MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	fn := &recordingFunction{}
	src := &EventSource{SQS: c, QueueURL: q.RetryURL, QueueARN: "arn:aws:sqs:us-east-1:100010001000:batching", Function: fn,
		BatchSize: 10, Window: 700 * time.Millisecond, ReportBatchItemFailures: true, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	done := make(chan struct{})
	go func() { src.Run(ctx); close(done) }()
	send("a")
	time.Sleep(250 * time.Millisecond) // inside the batching window
	send("b")
	send("c")
	deadline := time.Now().Add(10 * time.Second)
	for _, per := fn.deliveries(); len(per["b"]) < 2 && time.Now().Before(deadline); _, per = fn.deliveries() {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // a deleted message would have come back by now
	cancel()
	<-done
	batches, per := fn.deliveries()
	first := fn.batches[0]
	if len(first) != 3 {
		t.Errorf("first batch has %d messages, want the 3 sent within the window", len(first))
	}
	for body, times := range map[string]int{"a": 1, "b": 2, "c": 1} {
		if n := len(per[body]); n != times {
			t.Errorf("%s delivered %d times, want %d (receive counts %v over %d batches)", body, n, times, per, batches)
		}
	}
	if b := per["b"]; len(b) == 2 && b[1] != "2" {
		t.Errorf("b's second delivery is its receive %s, want its 2nd", b[1])
	}
}
