// Command api is the HTTP API function.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/app"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/config"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/fieldcrypt"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/httpapi"
)

func main() {
	d := app.Setup(config.API, fieldcrypt.KMS)
	lambda.Start(httpapi.New(d.Service, d.Log).Handle)
}
