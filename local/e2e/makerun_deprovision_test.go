package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kandy-provisioner/kandy-provisioner/local/localrun"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// leavingThePool: under make run, a user signed up through the Cognito API
// (so the trigger provisions them) who then leaves the pool, by their own
// DeleteUser or an administrator's AdminDeleteUser, loses their Kandy user
// within 10 s, and their record becomes a tombstone that expires. Their
// access token, still valid, then brings nothing back: POST /users answers
// 403 account_closed and Kandy gains no user.
func leavingThePool(t *testing.T, run *localRun) {
	ctx := context.Background()
	for _, how := range []string{"DeleteUser", "AdminDeleteUser"} {
		email := fmt.Sprintf("leaver-%s@example.com", how)
		before := run.simUsers(t)
		sub := run.signUp(t, email)
		if got := run.simUsers(t); got != before+1 {
			t.Fatalf("%s: the sign-up gave the simulator %d users, want %d", how, got, before+1)
		}
		access, _ := run.signIn(t, email)
		start := time.Now()
		switch how {
		case "DeleteUser":
			if _, err := run.cognito.DeleteUser(ctx, &cip.DeleteUserInput{AccessToken: aws.String(access)}); err != nil {
				t.Fatal(err)
			}
		default:
			if _, err := run.cognito.AdminDeleteUser(ctx, &cip.AdminDeleteUserInput{UserPoolId: aws.String(run.poolID), Username: aws.String(email)}); err != nil {
				t.Fatal(err)
			}
		}
		var rec map[string]types.AttributeValue
		for {
			rec = run.record(t, sub)
			if s, _ := rec["status"].(*types.AttributeValueMemberS); s != nil && s.Value == string(provision.StatusDeleted) && run.simUsers(t) == before {
				break
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("%s: 10 s later the record is %v and the simulator holds %d users, want %d", how, rec["status"], run.simUsers(t), before)
			}
			time.Sleep(200 * time.Millisecond)
		}
		ttl, _ := rec["expires_at"].(*types.AttributeValueMemberN)
		if n, _ := strconv.ParseInt(aws.ToString(&ttl.Value), 10, 64); ttl == nil || time.Until(time.Unix(n, 0)) < provision.TombstoneTTL-time.Minute {
			t.Fatalf("%s: the tombstone expires %v", how, rec["expires_at"])
		}
		if status := run.call(t, access, "POST /users"); status != 403 {
			t.Errorf("%s: POST /users with the departed user's token answered %d, want 403", how, status)
		}
		if got := run.simUsers(t); got != before {
			t.Errorf("%s: after the departed user's POST the simulator holds %d users, want %d", how, got, before)
		}
		fmt.Fprintf(os.Stdout, "make run: %s of a signed-up user: Kandy user gone and the record a tombstone expiring in 30 days, %v after the call\n",
			how, time.Since(start).Round(100*time.Millisecond))
	}
}

// record reads sub's record from make run's DynamoDB.
func (r *localRun) record(t *testing.T, sub string) map[string]types.AttributeValue {
	t.Helper()
	out, err := processes.DynamoDB(r.url("DYNAMODB_PORT")).GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(localrun.DefaultTable),
		ConsistentRead: aws.Bool(true), Key: map[string]types.AttributeValue{"sub": &types.AttributeValueMemberS{Value: sub}}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}
