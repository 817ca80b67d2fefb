// Command reconcile is the scheduled comparison of the user pool, the table
// and Kandy: it publishes the drift it finds, and never repairs.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/app"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/config"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/reconcile"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/reconcilesources"
)

// segments of the table scanned in parallel.
const segments = 4

func main() {
	d := app.Configure(config.Reconcile)
	k, err := app.NewKandy(d.AWS, d.Config, d.Metrics)
	if err != nil {
		app.Fail(d.Log, err)
	}
	src := reconcilesources.New(cip.NewFromConfig(d.AWS), d.Config.UserPoolID, dynamodb.NewFromConfig(d.AWS), d.Config.TableName, segments, k)
	lambda.Start(reconcile.NewReporter(src, d.Metrics, d.Log).Handle)
}
