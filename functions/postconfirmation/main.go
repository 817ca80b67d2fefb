// Command postconfirmation is the Cognito post-confirmation trigger.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/app"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/config"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/logging"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/signupqueue"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/trigger"
)

func main() {
	log := logging.New(os.Stdout)
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		app.StartFailed(log, err)
		return
	}
	awsCfg, err := app.AWSConfig(context.Background())
	if err != nil {
		app.StartFailed(log, err)
		return
	}
	svc, err := app.NewService(awsCfg, cfg, log)
	if err != nil {
		app.StartFailed(log, err)
		return
	}
	var retry trigger.Retrier
	if cfg.RetryQueueURL != "" {
		retry = signupqueue.New(sqs.NewFromConfig(awsCfg), cfg.RetryQueueURL)
	} else {
		log.Warn("RETRY_QUEUE_URL is not set: failed sign-ups are only logged")
	}
	lambda.Start(trigger.New(svc, log, trigger.DefaultBudget, retry).Handle)
}
