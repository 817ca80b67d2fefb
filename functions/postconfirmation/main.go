// Command postconfirmation is the Cognito post-confirmation trigger.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/app"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/config"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/logging"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/trigger"
)

func main() {
	log := logging.New(os.Stdout)
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		app.StartFailed(log, err)
		return
	}
	svc, err := app.NewService(context.Background(), cfg, log)
	if err != nil {
		app.StartFailed(log, err)
		return
	}
	lambda.Start(trigger.New(svc, log, trigger.DefaultBudget).Handle)
}
