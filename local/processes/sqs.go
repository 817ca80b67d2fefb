package processes

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/kandy-provisioner/kandy-provisioner/local/guard"
	"github.com/kandy-provisioner/kandy-provisioner/local/sqsjson"
)

// SQSServer is goaws, a real SQS-compatible server, on a Unix socket,
// behind the JSON protocol translation today's SDK needs, served on a
// loopback port by a guard.
type SQSServer struct {
	goaws *Process
	front *guard.Server
	URL   string // the endpoint for AWS_ENDPOINT_URL_SQS
}

// Process is goaws itself.
func (s *SQSServer) Process() *Process { return s.goaws }

// Stop ends both.
func (s *SQSServer) Stop() {
	s.front.Close()
	s.goaws.Stop()
}

// StartSQS starts goaws with its config in dir, its socket in sockets,
// and its JSON endpoint on a loopback port (0: a free one) behind g (the
// service timeouts, whatever g says). `make tools` builds goaws from
// tools/cmd/goaws.
func StartSQS(dir, sockets string, g guard.Guard, port int) (*SQSServer, error) {
	bin := filepath.Join(RepoRoot(), ".tools", "bin", "goaws")
	if err := installed(bin); err != nil {
		return nil, err
	}
	backend := guard.NewBackend(sockets, "goaws")
	g.Timeouts = guard.Service
	front, err := g.Serve(port, &sqsjson.Proxy{Target: backend.URL() + "/", Client: backend.Client()})
	if err != nil {
		return nil, err
	}
	// goaws makes its queue URLs from this host and port: the front's.
	conf := filepath.Join(dir, "goaws.yaml")
	yaml := fmt.Sprintf("Local:\n  Host: 127.0.0.1\n  Port: %d\n  Region: us-east-1\n  AccountId: \"100010001000\"\n  LogToFile: false\n", front.Port())
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		front.Close()
		return nil, err
	}
	p, err := Start("goaws", backend.Socket, backend.Env(), dir, bin, "-config", conf, "Local")
	if err != nil {
		front.Close()
		return nil, err
	}
	return &SQSServer{goaws: p, front: front, URL: front.URL}, nil
}

// SQS returns a client for a local SQS endpoint.
func SQS(endpoint string) *sqs.Client {
	return sqs.New(sqs.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
}

// Queues are a retry queue and its dead-letter queue.
type Queues struct {
	RetryURL, DeadLetterURL string
}

// CreateRetryQueues creates the queues as template.yaml does, with a short
// visibility timeout so tests see redelivery quickly. As SQS does, the
// dead-letter queue takes a message after maxReceives receives; goaws
// moves it only after one more, so it is told one fewer.
func CreateRetryQueues(ctx context.Context, c *sqs.Client, prefix string, visibility, maxReceives int) (Queues, error) {
	dlq, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(prefix + "-dlq")})
	if err != nil {
		return Queues{}, fmt.Errorf("creating the dead-letter queue: %w", err)
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		return Queues{}, err
	}
	redrive, _ := json.Marshal(map[string]string{"maxReceiveCount": strconv.Itoa(max(1, maxReceives-1)), "deadLetterTargetArn": attrs.Attributes["QueueArn"]})
	q, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(prefix), Attributes: map[string]string{
		"VisibilityTimeout": strconv.Itoa(visibility), "RedrivePolicy": string(redrive),
	}})
	if err != nil {
		return Queues{}, fmt.Errorf("creating the retry queue: %w", err)
	}
	return Queues{RetryURL: aws.ToString(q.QueueUrl), DeadLetterURL: aws.ToString(dlq.QueueUrl)}, nil
}

// PollOnce does once what Lambda's event source mapping does: receive a
// batch, invoke the function with it, and delete the messages it did not
// report as failures. It returns how many messages it delivered.
func PollOnce(ctx context.Context, c *sqs.Client, queueURL string, fn *Function) (int, error) {
	out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
	})
	if err != nil || len(out.Messages) == 0 {
		return 0, err
	}
	var ev events.SQSEvent
	for _, m := range out.Messages {
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
			Body: aws.ToString(m.Body), Attributes: m.Attributes, EventSource: "aws:sqs",
			EventSourceARN: "arn:aws:sqs:us-east-1:100010001000:retry", AWSRegion: "us-east-1",
		})
	}
	raw, _ := json.Marshal(ev)
	answer, err := fn.Invoke(ctx, raw)
	if err != nil {
		return 0, err
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(answer, &resp); err != nil {
		return 0, fmt.Errorf("worker answered %s", answer)
	}
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	for _, m := range out.Messages {
		if !failed[aws.ToString(m.MessageId)] {
			if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return 0, err
			}
		}
	}
	return len(out.Messages), nil
}
