// Command postconfirmation is the Cognito post-confirmation trigger.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/app"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/config"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/fieldcrypt"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/signupqueue"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/trigger"
)

func main() {
	d := app.Setup(config.PostConfirmation, fieldcrypt.KMS)
	var retry trigger.Retrier
	if d.Config.RetryQueueURL != "" {
		retry = signupqueue.New(sqs.NewFromConfig(d.AWS), d.Config.RetryQueueURL).Delayed(trigger.RetryDelay)
	} else {
		d.Log.Warn("RETRY_QUEUE_URL is not set: failed sign-ups are only logged")
	}
	lambda.Start(trigger.New(d.Service, d.Log, 0, retry, d.Metrics).Handle)
}
