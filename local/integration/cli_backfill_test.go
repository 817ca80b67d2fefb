package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/kandysim"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/fieldcrypt"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/userid"
)

// pool creates a cognito-local pool with confirmed users and, every
// tenth one, a user who never set a password. It returns the pool id and
// the confirmed users' subs.
func pool(t *testing.T, users int) (string, []string) {
	t.Helper()
	ctx := context.Background()
	c := processes.Cognito(stack.CognitoURL)
	p, err := c.CreateUserPool(ctx, &cognitoidentityprovider.CreateUserPoolInput{PoolName: aws.String(t.Name())})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(p.UserPool.Id)
	var subs []string
	for i := 0; i < users; i++ {
		name := fmt.Sprintf("user%03d@example.com", i)
		u, err := c.AdminCreateUser(ctx, &cognitoidentityprovider.AdminCreateUserInput{
			UserPoolId: aws.String(id), Username: aws.String(name), MessageAction: ciptypes.MessageActionTypeSuppress,
			TemporaryPassword: aws.String("Temporary-password-1"),
			UserAttributes:    []ciptypes.AttributeType{{Name: aws.String("email"), Value: aws.String(name)}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 || (users < 10 && i == users-1) {
			continue
		}
		if _, err := c.AdminSetUserPassword(ctx, &cognitoidentityprovider.AdminSetUserPasswordInput{
			UserPoolId: aws.String(id), Username: aws.String(name), Password: aws.String("Permanent-password-1"), Permanent: true,
		}); err != nil {
			t.Fatal(err)
		}
		for _, a := range u.User.Attributes {
			if aws.ToString(a.Name) == "sub" {
				subs = append(subs, aws.ToString(a.Value))
			}
		}
	}
	return id, subs
}

var summaryRow = regexp.MustCompile(`(?m)^  (created|would be created|already present|not confirmed|failed) +(\d+)$`)

func summary(t *testing.T, out string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, m := range summaryRow.FindAllStringSubmatch(out, -1) {
		got[m[1]], _ = strconv.Atoi(m[2])
	}
	if len(got) != 4 {
		t.Fatalf("no summary in:\n%s", out)
	}
	return got
}

func want(t *testing.T, got map[string]int, pairs ...any) {
	t.Helper()
	for i := 0; i < len(pairs); i += 2 {
		if got[pairs[i].(string)] != pairs[i+1].(int) {
			t.Fatalf("summary %v, want %s = %d", got, pairs[i], pairs[i+1])
		}
	}
}

// TestBackfillAgainstCognitoLocal runs the command over a pool of 300
// users: a dry run, a run that meets Kandy failures and then its quota, a
// resumed run that finishes, and a run that finds nothing to do.
func TestBackfillAgainstCognitoLocal(t *testing.T) {
	id, subs := pool(t, 300)
	if len(subs) != 270 {
		t.Fatalf("%d confirmed users", len(subs))
	}
	dir := t.TempDir()
	checkpoint := filepath.Join(dir, "cp.json")
	args := []string{"backfill", "--user-pool-id", id, "--concurrency", "8", "--rate", "0", "--checkpoint", checkpoint}
	creates := func() int { return stack.sim.Calls(kandysim.EndpointCreateUser) }
	defer stack.sim.SetQuota(100_000)
	defer stack.sim.ClearFaults()

	before := creates()
	code, out, errOut := cmd(t, nil, append(args, "--dry-run")...)
	t.Logf("dry run:\n%s%s", out, errOut)
	if code != 0 {
		t.Errorf("dry run: exit %d, want 0", code)
	}
	// The next runs count on the dry run having created nobody.
	if n := creates() - before; n != 0 {
		t.Fatalf("dry run: %d Kandy creates, want 0", n)
	}
	expectContains(t, "dry run's stdout", out, "dry run: nothing changed")
	want(t, summary(t, out), "would be created", 270, "already present", 0, "not confirmed", 30, "failed", 0)

	stack.sim.SetQuota(len(stack.sim.UserIDs()) + 150)
	stack.sim.Inject(kandysim.EndpointCreateUser, kandysim.FaultHTTP500, 3)
	code, out, errOut = cmd(t, nil, args...)
	t.Logf("run into the quota:\n%s%s", out, errOut)
	got := summary(t, out)
	if code != 1 {
		t.Errorf("run into the quota: exit %d, want 1", code)
	}
	// The resumed run expects exactly 150 already present.
	if got["created"] != 150 {
		t.Fatalf("run into the quota: created %d, want 150 (summary %v)", got["created"], got)
	}
	if got["failed"] < 4 {
		t.Errorf("run into the quota: failed %d, want at least 4 (summary %v)", got["failed"], got)
	}
	expectContains(t, "run into the quota: stderr", errOut, "quota")
	// Failures are reported by reason.
	expectContains(t, "run into the quota: stdout", out, "3 × ", "kandy: unavailable", "quota exceeded")
	if lines := strings.Count(errOut, "backfill: "); lines < 2 {
		t.Fatalf("no progress lines off a terminal:\n%s", errOut)
	}

	stack.sim.SetQuota(100_000)
	before = creates()
	code, out, errOut = cmd(t, nil, args...)
	t.Logf("resumed run:\n%s%s", out, errOut)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	want(t, summary(t, out), "created", 120, "already present", 150, "not confirmed", 30, "failed", 0)
	if creates()-before != 120 {
		t.Fatalf("%d Kandy creates for 120 users", creates()-before)
	}
	if _, err := os.Stat(checkpoint); !os.IsNotExist(err) {
		t.Fatalf("the checkpoint outlived a complete walk: %v", err)
	}

	before = creates()
	code, out, _ = cmd(t, nil, args...)
	if code != 0 {
		t.Errorf("third run: exit %d, want 0", code)
	}
	if n := creates() - before; n != 0 {
		t.Errorf("third run: %d Kandy creates, want 0", n)
	}
	want(t, summary(t, out), "created", 0, "already present", 270)

	checkEveryUserHasOneSealedAccount(t, subs)
}

// checkEveryUserHasOneSealedAccount: every confirmed user has exactly one
// sealed, ACTIVE record and one Kandy user; nobody else has either.
func checkEveryUserHasOneSealedAccount(t *testing.T, subs []string) {
	t.Helper()
	ctx := context.Background()
	kandyUsers := map[string]bool{}
	for _, u := range stack.sim.UserIDs() {
		kandyUsers[u] = true
	}
	for _, sub := range subs {
		it, err := stack.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{"sub": &types.AttributeValueMemberS{Value: sub}}})
		if err != nil || it.Item == nil {
			t.Fatalf("no record for %s: %v", sub, err)
		}
		status := it.Item["status"].(*types.AttributeValueMemberS).Value
		uid := it.Item["user_id"].(*types.AttributeValueMemberS).Value
		sealed := it.Item["user_password"].(*types.AttributeValueMemberS).Value
		// Fatal, not Error: one broken record tends to mean hundreds.
		if status != "ACTIVE" {
			t.Fatalf("%s: status %s, want ACTIVE", sub, status)
		}
		if !kandyUsers[uid] {
			t.Fatalf("%s: no Kandy user %s", sub, uid)
		}
		if want, _ := userid.FromSub(sub); uid != want {
			t.Fatalf("%s: user id %s, want %s", sub, uid, want)
		}
		if _, err := fieldcrypt.Open(ctx, stack.KMS, table, sub, sealed); err != nil {
			t.Fatalf("%s: credentials not sealed for the sub: %v", sub, err)
		}
	}
}

func TestBackfillRefusesBadUsage(t *testing.T) {
	for _, c := range []struct {
		extra map[string]string
		args  []string
		want  string
	}{
		{nil, []string{"backfill"}, "--user-pool-id is required"},
		{nil, []string{"backfill", "--user-pool-id", "p", "--concurrency", "0"}, "--concurrency"},
		{nil, []string{"backfill", "--user-pool-id", "p", "--progress", "fancy"}, "--progress"},
		{map[string]string{"KMS_KEY_ID": ""}, []string{"backfill", "--user-pool-id", "p"}, "--kms-key-id"},
		{map[string]string{"KANDY_SECRET_ID": ""}, []string{"backfill", "--user-pool-id", "p"}, "KANDY_SECRET_ID"},
	} {
		code, _, errOut := cmd(t, c.extra, c.args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2", c.args, code)
		}
		expectContains(t, fmt.Sprintf("%v: stderr", c.args), errOut, c.want)
	}
	code, _, errOut := cmd(t, nil, "backfill", "--user-pool-id", "us-east-1_nope", "--rate", "0")
	if code != 1 {
		t.Errorf("unknown pool: exit %d, want 1", code)
	}
	expectContains(t, "unknown pool: stderr", errOut, "listing users")
}

// --progress bar draws the bar (as on a terminal); cognito-local does not
// estimate a pool's size, so the bar has no total there.
func TestBackfillProgressBar(t *testing.T) {
	id, _ := pool(t, 5)
	code, out, errOut := cmd(t, nil, "backfill", "--user-pool-id", id, "--dry-run", "--progress", "bar")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	want(t, summary(t, out), "would be created", 4, "not confirmed", 1)
	// A bar redraws its line; no total, so "5/-".
	expectContains(t, "stderr", errOut, "\r", "4 created, 0 present, 0 failed (5/-")
	if strings.Contains(errOut, "\nbackfill: ") {
		t.Errorf("progress lines, not a bar, on stderr: %q", errOut)
	}
}
