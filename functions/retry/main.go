// Command retry provisions, from the retry queue, the sign-ups the trigger
// could not finish.
package main

import (
	"context"
	"errors"
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
	if err == nil && cfg.DeadLetterQueueURL == "" {
		err = errors.New("invalid configuration: missing required environment variable " + config.EnvDeadLetterQueueURL)
	}
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
	dlq := signupqueue.New(sqs.NewFromConfig(awsCfg), cfg.DeadLetterQueueURL)
	lambda.Start(trigger.NewRetryWorker(svc, dlq, log).Handle)
}
