// Command deprovision deletes the Kandy account of a user who left the
// user pool, on the CloudTrail event EventBridge delivers.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/app"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/config"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/deprovision"
)

func main() {
	// It stores no credentials, so it has no sealer and links no KMS client.
	d := app.Setup(config.Deprovision, nil)
	lambda.Start(deprovision.New(d.Service, d.Config.UserPoolID, d.Log, d.Metrics).Handle)
}
