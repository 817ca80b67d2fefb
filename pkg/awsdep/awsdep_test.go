package awsdep

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

func TestFailure(t *testing.T) {
	for _, tt := range []struct {
		name      string
		err       error
		transient bool
	}{
		{"a throttle", &smithy.GenericAPIError{Code: "ThrottlingException"}, true},
		{"DynamoDB's throttle", &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException"}, true},
		{"a time-out", fmt.Errorf("operation error: %w", context.DeadlineExceeded), true},
		{"a lost connection", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{"no such table", &smithy.GenericAPIError{Code: "ResourceNotFoundException"}, false},
		{"access denied", &smithy.GenericAPIError{Code: "AccessDeniedException"}, false},
		{"a plain error", errors.New("boom"), false},
	} {
		err := Failure(DynamoDB, tt.err)
		var dep *provision.DependencyError
		if got := errors.As(err, &dep); got != tt.transient {
			t.Errorf("%s: a DependencyError = %v, want %v", tt.name, got, tt.transient)
			continue
		}
		if !errors.Is(err, tt.err) {
			t.Errorf("%s: the cause is lost", tt.name)
		}
		if tt.transient {
			if dep.Dependency != DynamoDB {
				t.Errorf("%s: dependency %q, want %q", tt.name, dep.Dependency, DynamoDB)
			}
			if !errors.Is(err, provision.ErrUnavailable) {
				t.Errorf("%s: %v is not ErrUnavailable", tt.name, err)
			}
		}
	}
	if Failure(KMS, nil) != nil {
		t.Error("Failure of nil is not nil")
	}
}
