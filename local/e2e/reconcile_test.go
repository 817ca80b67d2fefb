package e2e

import (
	"context"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/emfcheck"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/metrics"
)

// TestScheduledReconcileReportsDrift runs the scheduled reconcile's real
// binary against a pool, a table and a simulator: it publishes the drift
// it finds, by class, and repairs nothing.
func TestScheduledReconcileReportsDrift(t *testing.T) {
	fs := newFaultStack(t)
	ctx := context.Background()
	cog := processes.Cognito(stack.CognitoURL)
	pool, err := cog.CreateUserPool(ctx, &cip.CreateUserPoolInput{PoolName: aws.String(t.Name())})
	if err != nil {
		t.Fatal(err)
	}
	poolID := aws.ToString(pool.UserPool.Id)
	var subs []string
	for _, name := range []string{"has@example.com", "lacks@example.com"} {
		u, err := cog.AdminCreateUser(ctx, &cip.AdminCreateUserInput{UserPoolId: aws.String(poolID), Username: aws.String(name),
			MessageAction: ciptypes.MessageActionTypeSuppress, TemporaryPassword: aws.String("Temporary-password-1")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cog.AdminSetUserPassword(ctx, &cip.AdminSetUserPasswordInput{UserPoolId: aws.String(poolID), Username: aws.String(name),
			Password: aws.String("Permanent-password-1"), Permanent: true}); err != nil {
			t.Fatal(err)
		}
		for _, a := range u.User.Attributes {
			if aws.ToString(a.Name) == "sub" {
				subs = append(subs, aws.ToString(a.Value))
			}
		}
	}
	api := fs.start(t, "ApiFunction", 0)
	if a := asUser(t, api, subs[0]).createUser(); a.StatusCode != 201 {
		t.Fatalf("POST /users = %d %s", a.StatusCode, a.Body)
	}
	fs.env = append(fs.env, "USER_POOL_ID="+poolID)
	fn := fs.start(t, "ReconcileFunction", 0)
	noteInvoked(t, fn.Process)
	creates, _ := fs.wire.counts()
	from := len(fn.Output())
	if _, err := fn.Invoke(ctx, mustJSON(t, events.EventBridgeEvent{DetailType: "Scheduled Event", Source: "aws.events"})); err != nil {
		t.Fatal(err)
	}
	data := emfSince(t, fn.Process, from, 10)
	for class, want := range map[string]float64{"missing": 1, "gone": 0, "orphan": 0, "stale": 0, "broken": 0} {
		if got := emfcheck.Sum(data, metrics.Drift, map[string]string{metrics.DimClass: class}); got != want {
			t.Errorf("Drift of %s = %v, want %v", class, got, want)
		}
	}
	if total := emfcheck.Sum(data, metrics.Drift, nil); total != 1 {
		t.Errorf("total drift %v", total)
	}
	if c, _ := fs.wire.counts(); c != creates {
		t.Fatal("the scheduled reconcile created a Kandy user; it must never repair")
	}
}
