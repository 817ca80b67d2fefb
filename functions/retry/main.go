// Command retry provisions, from the retry queue, the sign-ups the trigger
// could not finish.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/app"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/config"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/signupqueue"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/trigger"
)

func main() {
	d := app.Setup(config.Retry)
	dlq := signupqueue.New(sqs.NewFromConfig(d.AWS), d.Config.DeadLetterQueueURL)
	w := trigger.NewRetryWorker(d.Service, dlq, d.Log)
	w.Deleted = d.Metrics
	lambda.Start(w.Handle)
}
