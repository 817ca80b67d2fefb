// Package awsdep tells which failures of the service's own AWS
// dependencies a caller may get past by retrying: those become
// provision.DependencyError (503 unavailable, with Retry-After); the rest
// (a missing table, a refused permission) stay what they are, a fault to
// fix (500 internal).
package awsdep

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// The dependencies, as DependencyError and the metrics name them.
const (
	DynamoDB       = "dynamodb"
	KMS            = "kms"
	SecretsManager = "secretsmanager"
)

var (
	retryables = retry.IsErrorRetryables(retry.DefaultRetryables)
	throttles  = retry.IsErrorThrottles(retry.DefaultThrottles)
)

// Failure is err as the caller should see it: a *provision.DependencyError
// when the SDK, having spent its own retries, would have tried again (a
// throttle, a 5xx, a lost connection) or the call ran out of time; err
// itself otherwise.
func Failure(dependency string, err error) error {
	if err == nil || !Transient(err) {
		return err
	}
	return &provision.DependencyError{Dependency: dependency, Err: err}
}

// Transient reports whether a retry may get past err.
func Transient(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) ||
		retryables.IsErrorRetryable(err) == aws.TrueTernary ||
		throttles.IsErrorThrottle(err) == aws.TrueTernary
}
