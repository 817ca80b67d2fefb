package localrun

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/store"
)

// flaky fails its first failures invocations, then succeeds.
type flaky struct {
	mu       sync.Mutex
	failures int
	calls    []string
}

func (f *flaky) Invoke(_ context.Context, event []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, string(event))
	if len(f.calls) <= f.failures {
		return nil, &processes.FunctionError{Type: "Unhandled", Message: "kandy: unavailable"}
	}
	return []byte("null"), nil
}

func (f *flaky) count() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.calls) }

// The bus reads the template's rule, delivers a matching CloudTrail event
// once, retries a failed invocation as EventInvokeConfig says, and sends
// the record of one that failed every try to the on-failure queue.
func TestEventBusDeliversAsLambdaDoes(t *testing.T) {
	st, err := Start(context.Background(), Options{SQS: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Stop)
	tpl, err := samtemplate.Load(samtemplate.Path())
	if err != nil {
		t.Fatal(err)
	}
	st.userPools["UserPool"] = "us-east-1_local"
	rules, err := st.rules(tpl, map[string]*processes.Pool{"DeprovisionFunction": {}})
	if err != nil {
		t.Fatal(err)
	}
	dlq := st.Queues["DeprovisionDeadLetterQueue"].URL
	if len(rules) != 1 {
		t.Fatalf("%d rules, want 1: %+v", len(rules), rules)
	}
	r := rules[0]
	if r.Name != "DeprovisionFunctionUserDeleted" {
		t.Errorf("rule %s, want DeprovisionFunctionUserDeleted", r.Name)
	}
	// The deliveries below count on these two.
	if r.Retries != 2 {
		t.Fatalf("rule's retries %d, want 2", r.Retries)
	}
	if r.OnFailure != dlq {
		t.Fatalf("rule's dead-letter queue %s, want %s", r.OnFailure, dlq)
	}
	ev := CloudTrailEvent(UserDeleted{PoolID: "us-east-1_local", Sub: "6f1c2a9e-4b7d-4e2a-9c3f-1a2b3c4d5e6f", EventName: "DeleteUser", Time: time.Now()})
	for _, tt := range []struct {
		failures, calls int
		deadLetter      bool
	}{{0, 1, false}, {2, 3, false}, {5, 3, true}} {
		fn := &flaky{failures: tt.failures}
		bus := &EventBus{Rules: rules, Backoff: []time.Duration{time.Millisecond}, pools: map[string]processes.Invoker{"DeprovisionFunction": fn},
			resolve: st.resolver(tpl),
			sqs:     st.SQS, log: slog.New(slog.NewTextHandler(io.Discard, nil)), ctx: context.Background()}
		if n := bus.Publish(ev); n != 1 {
			t.Fatalf("matched %d rules", n)
		}
		if n := bus.Publish([]byte(`{"source":"aws.s3"}`)); n != 0 {
			t.Fatalf("another event matched %d rules", n)
		}
		for pool, want := range map[string]int{"us-east-1_local": 1, "us-east-1_other": 0} {
			admin := CloudTrailEvent(UserDeleted{PoolID: pool, Sub: "7f1c2a9e-4b7d-4e2a-9c3f-1a2b3c4d5e6f", EventName: "AdminDeleteUser", Time: time.Now()})
			if n := bus.Match(admin); n != want {
				t.Fatalf("AdminDeleteUser in %s matched %d rules, want %d", pool, n, want)
			}
		}
		bus.Wait()
		if fn.count() != tt.calls {
			t.Fatalf("%d failures: %d invocations, want %d", tt.failures, fn.count(), tt.calls)
		}
		if fn.calls[0] != string(ev) {
			t.Fatalf("%d failures: the function got %s, want the event %s", tt.failures, fn.calls[0], ev)
		}
		out, err := st.SQS.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(dlq), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(out.Messages) == 1; got != tt.deadLetter {
			t.Fatalf("%d failures: dead letters %d, want one: %v", tt.failures, len(out.Messages), tt.deadLetter)
		}
		if tt.deadLetter {
			var rec struct {
				RequestContext  struct{ Condition string }
				RequestPayload  json.RawMessage
				ResponsePayload struct{ ErrorMessage string }
			}
			if err := json.Unmarshal([]byte(aws.ToString(out.Messages[0].Body)), &rec); err != nil || rec.RequestContext.Condition != "RetriesExhausted" ||
				string(rec.RequestPayload) != string(ev) || rec.ResponsePayload.ErrorMessage != "kandy: unavailable" {
				t.Fatalf("dead letter = %s, %v", aws.ToString(out.Messages[0].Body), err)
			}
		}
	}
}

// The event is CloudTrail's record of the call: it names the sub, never
// the username or the token, and the template's rule matches it.
func TestCloudTrailEvent(t *testing.T) {
	for _, name := range []string{"AdminDeleteUser", "DeleteUser"} {
		raw := CloudTrailEvent(UserDeleted{PoolID: "us-east-1_p", Sub: "s-1", EventName: name, Time: time.Now(), SourceIP: "127.0.0.1", UserAgent: "ua"})
		var ev struct {
			Source string `json:"source"`
			Detail struct {
				EventName           string
				AdditionalEventData struct{ Sub string }
				RequestParameters   map[string]string
			} `json:"detail"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Source != "aws.cognito-idp" {
			t.Errorf("%s: source %q, want aws.cognito-idp", name, ev.Source)
		}
		if ev.Detail.EventName != name {
			t.Errorf("%s: event name %q", name, ev.Detail.EventName)
		}
		if sub := ev.Detail.AdditionalEventData.Sub; sub != "s-1" {
			t.Errorf("%s: sub %q, want s-1", name, sub)
		}
		for k, v := range ev.Detail.RequestParameters {
			if k != "userPoolId" && v != "HIDDEN_DUE_TO_SECURITY_REASONS" {
				t.Errorf("%s shows %s", name, k)
			}
		}
	}
}

// The stack emulates DynamoDB's TTL on dynalite: tombstones past their
// expiry go, and nothing else.
func TestExpireItemsEmulatesTTL(t *testing.T) {
	st, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Stop)
	ctx := context.Background()
	acc := store.NewAccounts(st.DB, st.Table)
	now := time.Now().Truncate(time.Second)
	bury := func(sub string, expires time.Time) {
		c := provision.Claim{Sub: sub, UserID: "u" + sub, Token: "d" + sub, Now: now, ExpiresAt: now.Add(time.Minute)}
		if err := acc.ClaimDelete(ctx, c, provision.Record{Sub: sub}, provision.Ending{}); err != nil {
			t.Fatal(err)
		}
		if err := acc.FinishDelete(ctx, c, provision.Ending{Tombstone: true, ExpiresAt: expires}); err != nil {
			t.Fatal(err)
		}
	}
	bury("due", now)
	bury("later", now.Add(time.Second))
	bury("kept", time.Time{})
	if n, err := st.ExpireItems(ctx, now); err != nil {
		t.Fatalf("ExpireItems: %v", err)
	} else if n != 1 {
		t.Errorf("expired %d, want 1", n)
	}
	for sub, want := range map[string]bool{"due": false, "later": true, "kept": true} {
		_, err := acc.Get(ctx, sub)
		if got := err == nil; got != want {
			t.Errorf("%s present = %v, want %v", sub, got, want)
		}
	}
}
