package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/kandysim"
	"github.com/kandy-provisioner/kandy-provisioner/local/guard"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/trigger"
)

func receiveAll(t *testing.T, c *sqs.Client, url string) []types.Message {
	t.Helper()
	out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(url), MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Messages
}

// retryRig is goaws with a retry queue and its dead-letter queue, and a
// trigger and a worker of their own stack.
type retryRig struct {
	q            *sqs.Client
	queues       processes.Queues
	fs           *faultStack
	trig, worker *processes.Function
}

func newRetryRig(t *testing.T) *retryRig {
	t.Helper()
	return newRetryRigWith(t, 1, 3)
}

// newRetryRigWith is a rig whose retry queue has this visibility timeout
// (s) and maxReceiveCount.
func newRetryRigWith(t *testing.T, visibility, maxReceives int) *retryRig {
	t.Helper()
	sockets, err := guard.SocketDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockets) })
	srv, err := processes.StartSQS(t.TempDir(), sockets, guard.Guard{Name: "sqs", Audience: guard.Programs}, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	r := &retryRig{q: processes.SQS(srv.URL), fs: newFaultStack(t)}
	if r.queues, err = processes.CreateRetryQueues(context.Background(), r.q, "retry", visibility, maxReceives); err != nil {
		t.Fatal(err)
	}
	r.fs.env = append(r.fs.env, "AWS_ENDPOINT_URL_SQS="+srv.URL, "RETRY_QUEUE_URL="+r.queues.RetryURL, "DEAD_LETTER_QUEUE_URL="+r.queues.DeadLetterURL)
	r.trig = r.fs.start(t, "PostConfirmationFunction", 0)
	r.worker = r.fs.start(t, "RetryFunction", 0)
	return r
}

func (r *retryRig) signUp(t *testing.T, sub string) {
	t.Helper()
	noteInvoked(t, r.trig.Process)
	if _, err := r.trig.Invoke(context.Background(), mustJSON(t, loadEvent(t, "post-confirmation-signup.json", sub))); err != nil {
		t.Fatal(err)
	}
}

// queued counts a queue's messages, visible, in flight or delayed. goaws
// counts them all in ApproximateNumberOfMessages (SQS only the visible
// ones), and the hidden ones again in ApproximateNumberOfMessagesNotVisible.
func (r *retryRig) queued(t *testing.T, url string) int {
	t.Helper()
	attrs, err := r.q.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages}})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(attrs.Attributes["ApproximateNumberOfMessages"], &n)
	return n
}

// drain polls the retry queue into the worker until it is empty, and
// returns how many messages it delivered.
func (r *retryRig) drain(t *testing.T, patience time.Duration) int {
	t.Helper()
	deliveries := 0
	for deadline := time.Now().Add(patience); time.Now().Before(deadline); {
		n, err := processes.PollOnce(context.Background(), r.q, r.queues.RetryURL, r.worker)
		if err != nil {
			t.Fatal(err)
		}
		deliveries += n
		if n == 0 && r.queued(t, r.queues.RetryURL) == 0 {
			return deliveries
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("the retry queue did not drain in %v", patience)
	return 0
}

// TestRetryQueue: sign-ups the trigger could not finish reach the retry
// worker through goaws, and end with exactly one account, or in the
// dead-letter queue with a reason.
func TestRetryQueue(t *testing.T) {
	r := newRetryRig(t)
	ctx, fs, q := context.Background(), r.fs, r.q
	t.Run("Kandy down during sign-up, then back", func(t *testing.T) {
		sub := newSub()
		fs.sim.Inject(kandysim.EndpointCreateUser, kandysim.FaultHTTP500, 1000)
		r.signUp(t, sub)
		queuedAt := time.Now()
		if n, err := processes.PollOnce(ctx, q, r.queues.RetryURL, r.worker); err != nil || n != 0 {
			t.Fatalf("delivered at once: %d, %v; the trigger hides a failed sign-up for %v", n, err, trigger.RetryDelay)
		}
		n, err := 0, error(nil)
		for deadline := time.Now().Add(5 * time.Second); n == 0 && err == nil && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			n, err = processes.PollOnce(ctx, q, r.queues.RetryURL, r.worker)
		}
		waited := time.Since(queuedAt)
		if err != nil {
			t.Fatalf("first delivery: %v", err)
		}
		if n != 1 {
			t.Fatalf("first delivery took %d messages, want 1", n)
		}
		if waited < trigger.RetryDelay {
			t.Fatalf("first delivery %v after the sign-up, before the trigger's delay of %v", waited, trigger.RetryDelay)
		}
		if rec := recordIn(t, fs.table, sub); rec["status"] == "ACTIVE" {
			t.Fatal("provisioned while Kandy was down")
		}
		fs.sim.ClearFaults()
		time.Sleep(1100 * time.Millisecond) // the visibility timeout
		deliveries := r.drain(t, 15*time.Second)
		fs.checkInvariants(t, []string{sub})
		fmt.Fprintf(os.Stdout, "retry scenario %-45q deliveries=%d queue drained, invariants=%s\n", "Kandy down during sign-up, then back", 1+deliveries,
			map[bool]string{true: "held", false: "BROKEN"}[!t.Failed()])
	})

	t.Run("quota exhausted goes to the DLQ with its reason", func(t *testing.T) {
		defer fs.sim.SetQuota(1000)
		fs.sim.SetQuota(len(fs.sim.UserIDs()))
		r.signUp(t, newSub())
		r.drain(t, 10*time.Second)
		msgs := receiveAll(t, q, r.queues.DeadLetterURL)
		if len(msgs) != 1 {
			t.Fatalf("%d dead letters, want 1: %+v", len(msgs), msgs)
		}
		if reason := aws.ToString(msgs[0].MessageAttributes["reason"].StringValue); reason != "kandy_quota_exceeded" {
			t.Fatalf("dead letter's reason %q, want kandy_quota_exceeded", reason)
		}
		if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(r.queues.DeadLetterURL), ReceiptHandle: msgs[0].ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("still failing after the bound goes to the DLQ", func(t *testing.T) {
		defer fs.sim.ClearFaults()
		fs.sim.Inject(kandysim.EndpointCreateUser, kandysim.FaultHTTP500, 1000)
		r.signUp(t, newSub())
		var msgs []types.Message
		for deadline := time.Now().Add(20 * time.Second); len(msgs) == 0 && time.Now().Before(deadline); {
			if _, err := processes.PollOnce(ctx, q, r.queues.RetryURL, r.worker); err != nil {
				t.Fatal(err)
			}
			time.Sleep(400 * time.Millisecond)
			msgs = receiveAll(t, q, r.queues.DeadLetterURL)
		}
		if len(msgs) != 1 {
			t.Fatal("the message never reached the dead-letter queue")
		}
	})
}

// TestALateRetryNeverUndoesADelete is the case that once gave a deleted
// account back: a sign-up queued for a retry while Kandy was down, then
// the user's POST /users and DELETE /users/me, then the retry. The retry
// is consumed (no batch-item failure, no dead letter) and provisions
// nothing.
func TestALateRetryNeverUndoesADelete(t *testing.T) {
	r := newRetryRig(t)
	api := r.fs.start(t, "ApiFunction", 0)
	sub := newSub()
	r.fs.sim.Inject(kandysim.EndpointCreateUser, kandysim.FaultHTTP500, 1000)
	r.signUp(t, sub)
	r.fs.sim.ClearFaults()
	if n := r.queued(t, r.queues.RetryURL); n != 1 {
		t.Fatalf("queued = %d, want the failed sign-up", n)
	}
	user := asUser(t, api, sub)
	if a := user.createUser(); a.StatusCode != 201 {
		t.Fatalf("POST /users = %d %s", a.StatusCode, a.Body)
	}
	if a := user.deleteUser(); a.StatusCode != 204 {
		t.Fatalf("DELETE /users/me = %d %s", a.StatusCode, a.Body)
	}
	creates, _ := r.fs.wire.counts()
	delivered := r.drain(t, 15*time.Second)
	if delivered != 1 {
		t.Fatalf("the late retry was delivered %d times, want once: a batch-item failure brings it back", delivered)
	}
	if dead := receiveAll(t, r.q, r.queues.DeadLetterURL); len(dead) != 0 {
		t.Fatalf("dead letters: %+v", dead)
	}
	if c, _ := r.fs.wire.counts(); c != creates {
		t.Fatal("the late retry created a Kandy user")
	}
	uid := recordIn(t, r.fs.table, sub)["user_id"]
	if _, ok := listKandyUsers(t, r.fs.sim)[uid]; ok {
		t.Fatal("the deleted account has a Kandy user")
	}
	if rec := recordIn(t, r.fs.table, sub); rec["status"] != "DELETED" {
		t.Fatalf("record = %v, want the tombstone", redact(rec))
	}
	fmt.Fprintf(os.Stdout, "late retry: sign-up queued, POST 201, DELETE 204, retry delivered %d time(s) and consumed; Kandy users for the sub: 0; dead letters: 0; record DELETED\n", delivered)
}
