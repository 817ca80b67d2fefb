// Command api is the HTTP API function.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/app"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/config"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/httpapi"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/logging"
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
	lambda.Start(httpapi.New(svc, log).Handle)
}
