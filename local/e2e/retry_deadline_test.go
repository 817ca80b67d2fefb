package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// TestRetryWorkerBeatsItsDeadline: a batch of 10 while Kandy hangs is
// answered, by the real binary, before the function's timeout, with every
// message reported for another try; once Kandy answers, all 10 succeed.
func TestRetryWorkerBeatsItsDeadline(t *testing.T) {
	fs := newFaultStack(t)
	fs.env = append(fs.env, "RETRY_QUEUE_URL=http://127.0.0.1:9/unused-retry", "DEAD_LETTER_QUEUE_URL=http://127.0.0.1:9/unused-dlq")
	const timeout = 4 // seconds
	worker := fs.start(t, "RetryFunction", timeout)
	noteInvoked(t, worker.Process)
	batch := func() ([]string, []byte) {
		var ev events.SQSEvent
		var batchSubs []string
		for i := 0; i < 10; i++ {
			sub := newSub()
			batchSubs = append(batchSubs, sub)
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprint(i), EventSource: "aws:sqs",
				Body: fmt.Sprintf(`{"sub":%q,"user_pool_id":"p","attempt":1}`, sub), Attributes: map[string]string{"ApproximateReceiveCount": "1"}})
		}
		return batchSubs, mustJSON(t, ev)
	}
	answer := func(raw []byte) events.SQSEventResponse {
		t.Helper()
		var resp events.SQSEventResponse
		if err := json.Unmarshal(raw, &resp); err != nil || strings.Contains(string(raw), "timed out") {
			t.Fatalf("the worker answered %s", raw)
		}
		return resp
	}

	fs.sim.SetLatency(time.Minute)
	_, ev := batch()
	start := time.Now()
	out, err := worker.Invoke(context.Background(), ev)
	elapsed := time.Since(start)
	fs.sim.SetLatency(0)
	if err != nil {
		t.Fatal(err)
	}
	if resp := answer(out); len(resp.BatchItemFailures) != 10 {
		t.Fatalf("Kandy hanging: %d batch item failures reported, want all 10", len(resp.BatchItemFailures))
	}
	if elapsed >= timeout*time.Second {
		t.Fatalf("Kandy hanging: the worker answered after %v, not before its %d s timeout", elapsed, timeout)
	}

	batchSubs, ev := batch()
	out, err = worker.Invoke(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if resp := answer(out); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Kandy healthy: failures %+v", resp.BatchItemFailures)
	}
	fs.checkInvariants(t, batchSubs)
}
