// Command hello is the reference for cold-start measurements: the smallest
// aws-lambda-go function, built and run exactly like ours.
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(_ context.Context, ev json.RawMessage) (json.RawMessage, error) { return ev, nil })
}
