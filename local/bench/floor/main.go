// Command floor is the reference for warm latency: the hello-world plus the
// one DynamoDB call a repeated POST /users makes (the store's claim, an
// UpdateItem with if_not_exists that finds the item), built and run exactly
// like the functions. It takes the caller's sub from an HTTP API event or a
// Cognito trigger event and answers a fixed body.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/awsenv"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/config"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/store"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/userid"
)

// event holds only the sub, from either event shape.
type event struct {
	RequestContext struct {
		Authorizer struct {
			JWT struct {
				Claims struct {
					Sub string `json:"sub"`
				} `json:"claims"`
			} `json:"jwt"`
		} `json:"authorizer"`
	} `json:"requestContext"`
	Request struct {
		UserAttributes struct {
			Sub string `json:"sub"`
		} `json:"userAttributes"`
	} `json:"request"`
}

var errNoSub = errors.New("the event has no sub")

// answer is what the floor returns: an HTTP API response with no work in it.
var answer = json.RawMessage(`{"statusCode":200,"headers":{"content-type":"application/json"},"body":"{}"}`)

func main() {
	awsCfg, err := awsenv.Load(os.Getenv)
	if err != nil {
		panic(err)
	}
	accounts := store.NewAccounts(dynamodb.NewFromConfig(awsCfg), os.Getenv(config.EnvTableName))
	lambda.Start(func(ctx context.Context, ev event) (json.RawMessage, error) {
		sub := ev.RequestContext.Authorizer.JWT.Claims.Sub
		if sub == "" {
			sub = ev.Request.UserAttributes.Sub
		}
		uid, err := userid.FromSub(sub)
		if err != nil {
			return nil, errNoSub
		}
		now := time.Now()
		// A token of the length the service's claims have; on an existing
		// item if_not_exists keeps the stored one.
		c := provision.Claim{Sub: sub, UserID: uid, Token: "00000000000000000000000000000000", Now: now, ExpiresAt: now.Add(30 * time.Second)}
		if _, _, err := accounts.Claim(ctx, c); err != nil {
			return nil, err
		}
		return answer, nil
	})
}
