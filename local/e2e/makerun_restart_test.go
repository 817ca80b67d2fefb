package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/fieldcrypt"
)

// TestMakeRunKeepsDataDir restarts make run on one DATA_DIR: the pool and
// client ids, the pool's users, the simulator's users and the KMS keys are
// kept, old tokens still work, and so does every account.
func TestMakeRunKeepsDataDir(t *testing.T) {
	dir, ports := t.TempDir(), freePorts(t)
	first := startLocalRun(t, ports, "DATA_DIR="+dir)
	type account struct{ email, sub, access, userID string }
	var accounts []account
	for _, email := range []string{"ann@example.com", "ben@example.com"} {
		a := account{email: email, sub: first.signUp(t, email)}
		a.access, _ = first.signIn(t, email)
		status, acc := first.account(t, a.access)
		if status != 200 {
			t.Fatalf("%s before the restart: %d", email, status)
		}
		a.userID = acc.UserId
		accounts = append(accounts, a)
	}
	before := snapshot(t, first)
	first.stop(t)

	second := startLocalRun(t, ports, "DATA_DIR="+dir)
	if after := snapshot(t, second); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("after the restart %+v, before %+v", after, before)
	}
	for _, a := range accounts {
		second.wantAccount(t, a.email+"'s old token", a.access, a.userID)
		status, token := second.loginToken(t, a.access)
		if status != 200 {
			t.Errorf("%s's Kandy login token: status %d, want 200", a.email, status)
		}
		if !strings.HasPrefix(token, "UAT") {
			t.Errorf("%s's Kandy login token %.3q…, want the prefix UAT", a.email, token)
		}
		second.signIn(t, a.email)
		checkCredentialsOpen(t, second, a.sub)
	}
	newcomer := second.signUp(t, "cal@example.com")
	access, _ := second.signIn(t, "cal@example.com")
	second.wantAccount(t, "a sign-up after the restart", access, kandyUserID(newcomer))
	serverDeathStopsTheRun(t, second)
}

// serverDeathStopsTheRun kills make run's dynalite: make run must stop
// and say why, not answer 500s from then on.
func serverDeathStopsTheRun(t *testing.T, run *localRun) {
	pid := processUnder(t, run.cmd.Process.Pid, "dynalite/cli.js")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-run.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("make run kept running without its dynalite:\n%s", run.output())
	}
	if code := run.cmd.ProcessState.ExitCode(); code == 0 {
		t.Errorf("make run exited 0 without its dynalite, want an error:\n%s", run.output())
	}
	if !strings.Contains(run.output(), "dynalite exited (its last lines are above); stopping the local run") {
		t.Errorf("make run did not say that dynalite exited:\n%s", run.output())
	}
}

// processUnder is the one process under root whose command line holds
// part. dynalite listens on a socket behind its front, so no port finds
// it.
func processUnder(t *testing.T, root int, part string) int {
	t.Helper()
	var found []int
	for _, pid := range processTree(t, root) {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(string(cmdline), part) {
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		t.Fatalf("processes under %d with %q: %v, want one", root, part, found)
	}
	return found[0]
}

// checkCredentialsOpen decrypts a stored account's credentials with the
// restarted KMS.
func checkCredentialsOpen(t *testing.T, run *localRun, sub string) {
	t.Helper()
	ctx := context.Background()
	out, err := processes.DynamoDB(run.url("DYNAMODB_PORT")).GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"sub": &types.AttributeValueMemberS{Value: sub}}})
	if err != nil {
		t.Fatal(err)
	}
	sealed, ok := out.Item["user_password"].(*types.AttributeValueMemberS)
	if !ok {
		t.Fatalf("no stored credentials for %s", sub)
	}
	if _, err := fieldcrypt.Open(ctx, processes.KMS(run.url("KMS_PORT")), table, sub, sealed.Value); err != nil {
		t.Errorf("the credentials of %s do not decrypt after the restart: %v", sub, err)
	}
}
