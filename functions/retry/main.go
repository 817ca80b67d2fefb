// Command retry provisions, from the retry queue, the sign-ups the trigger
// could not finish.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/app"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/config"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/fieldcrypt"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/signupqueue"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/signupretry"
)

func main() {
	d := app.Setup(config.Retry, fieldcrypt.KMS)
	client := sqs.NewFromConfig(d.AWS)
	dlq := signupqueue.New(client, d.Config.DeadLetterQueueURL)
	retries := signupqueue.NewRedelivery(client, d.Config.RetryQueueURL)
	lambda.Start(signupretry.New(d.Service, dlq, retries, d.Log, d.Metrics).Handle)
}
