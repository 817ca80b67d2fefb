package localrun

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
)

// Queue is one of the template's queues, in goaws.
type Queue struct {
	Name, URL, ARN string
}

func (s *Stack) startSQS(ctx context.Context, o Options) error {
	srv, err := processes.StartSQS(s.dataDir(o, "sqs"), s.sockets, s.programs("goaws"), o.SQSPort)
	if err != nil {
		return err
	}
	s.stops = append(s.stops, srv.Stop)
	s.servers = append(s.servers, srv.Process())
	s.SQSURL, s.SQS = srv.URL, processes.SQS(srv.URL)
	tpl, err := samtemplate.Load(samtemplate.Path())
	if err != nil {
		return err
	}
	s.Queues, err = createQueues(ctx, s.SQS, tpl)
	return err
}

// queueAttributes are the template properties that are queue attributes.
var queueAttributes = []string{"DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds", "VisibilityTimeout"}

// createQueues creates the template's queues, dead-letter queues first.
func createQueues(ctx context.Context, c *sqs.Client, tpl *samtemplate.Template) (map[string]Queue, error) {
	var ids []string
	for id, r := range tpl.Resources {
		if r.Type == "AWS::SQS::Queue" {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool {
		ri, rj := tpl.Resources[ids[i]].Properties["RedrivePolicy"] != nil, tpl.Resources[ids[j]].Properties["RedrivePolicy"] != nil
		return !ri && rj || ri == rj && ids[i] < ids[j]
	})
	queues := map[string]Queue{}
	for _, id := range ids {
		props := tpl.Resources[id].Properties
		attrs := map[string]string{}
		for _, a := range queueAttributes {
			if v, ok := props[a].(int); ok {
				attrs[a] = strconv.Itoa(v)
			}
		}
		if rp, ok := props["RedrivePolicy"].(map[string]any); ok {
			policy, err := redrivePolicy(rp, queues)
			if err != nil {
				return nil, fmt.Errorf("queue %s: %w", id, err)
			}
			attrs["RedrivePolicy"] = policy
		}
		name, _ := props["QueueName"].(string)
		if name == "" {
			name = id
		}
		q, err := createQueue(ctx, c, name, attrs)
		if err != nil {
			return nil, fmt.Errorf("queue %s: %w", id, err)
		}
		queues[id] = q
	}
	return queues, nil
}

// redrivePolicy points at a dead-letter queue created before. SQS moves a
// message after maxReceiveCount receives; goaws only after one more, so
// it is told one fewer.
func redrivePolicy(rp map[string]any, queues map[string]Queue) (string, error) {
	target, _ := rp["deadLetterTargetArn"].(map[string]any)
	att, _ := target["Fn::GetAtt"].([]string)
	if len(att) != 2 || att[1] != "Arn" {
		return "", fmt.Errorf("the dead-letter target must be !GetAtt <queue>.Arn, not %v", rp["deadLetterTargetArn"])
	}
	dlq, ok := queues[att[0]]
	if !ok {
		return "", fmt.Errorf("dead-letter queue %s is not a queue of the template", att[0])
	}
	n, _ := rp["maxReceiveCount"].(int)
	if n < 1 {
		return "", fmt.Errorf("maxReceiveCount %v", rp["maxReceiveCount"])
	}
	raw, _ := json.Marshal(map[string]string{"deadLetterTargetArn": dlq.ARN, "maxReceiveCount": strconv.Itoa(max(1, n-1))})
	return string(raw), nil
}

func createQueue(ctx context.Context, c *sqs.Client, name string, attrs map[string]string) (Queue, error) {
	out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		return Queue{}, err
	}
	got, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl,
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		return Queue{}, err
	}
	return Queue{Name: name, URL: aws.ToString(out.QueueUrl), ARN: got.Attributes["QueueArn"]}, nil
}
