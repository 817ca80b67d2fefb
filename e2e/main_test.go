// Package e2e runs the built bootstrap binaries under aws-lambda-rie against
// dynalite, the Kandy simulator and a GetSecretValue endpoint. It calls the
// HTTP API through its generated client, checking every exchange against
// api/openapi.yaml, and drives the other functions with the events in
// events/.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kandy-provisioner/kandy-provisioner/internal/emfcheck"
	"github.com/kandy-provisioner/kandy-provisioner/internal/localenv"
	"github.com/kandy-provisioner/kandy-provisioner/internal/localstack"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/fieldcrypt"
)

const (
	table    = "kandy-accounts"
	secretID = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kandy-project-AbCdEf"
)

// stack is everything the functions talk to, shared by the whole suite.
var stack struct {
	*localstack.Stack
	sim       *localstack.Kandy
	api       *localenv.Function
	trigger   *localenv.Function
	env       []string
	projectKS [2]string
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	build := exec.Command("make", "--no-print-directory", "build")
	build.Dir = localenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return 1, fmt.Errorf("make build: %v\n%s", err, out)
	}
	s, err := localstack.Start(context.Background(), localstack.Options{Table: table, SecretID: secretID, Cognito: true})
	if err != nil {
		return 1, err
	}
	defer s.Stop()
	stack.Stack, stack.sim = s, s.Kandy
	sims = append(sims, stack.sim)
	key, secret := stack.sim.ProjectKey()
	stack.projectKS = [2]string{key, secret}
	stack.env = s.Env()
	if stack.api, err = s.StartFunction("ApiFunction", recordCalls("ApiFunction", stack.env)); err != nil {
		return 1, err
	}
	if stack.trigger, err = s.StartFunction("PostConfirmationFunction", recordCalls("PostConfirmationFunction", stack.env)); err != nil {
		return 1, err
	}
	functionsStarted = append(functionsStarted, stack.api.Process, stack.trigger.Process)

	code := m.Run()
	if code == 0 {
		if err := checkLogs(); err != nil {
			return 1, err
		}
		if err := checkIAM(); err != nil {
			return 1, err
		}
	}
	return code, nil
}

// checkLogs fails the suite if any function's output, in any test, carries
// a secret: the project key or secret, a stored password or user API secret
// (sealed or decrypted), a token, or the raw Cognito event.
func checkLogs() error {
	forbidden := []string{stack.projectKS[0], stack.projectKS[1]}
	for _, sim := range sims {
		forbidden = append(forbidden, sim.Issued()...)
	}
	for _, tbl := range tablesInUse {
		out, err := stack.DB.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(tbl)})
		if err != nil {
			return err
		}
		for _, it := range out.Items {
			sub, _ := it["sub"].(*types.AttributeValueMemberS)
			sealed, ok := it["user_password"].(*types.AttributeValueMemberS)
			if !ok || sub == nil {
				continue
			}
			secrets, err := fieldcrypt.Open(context.Background(), stack.KMS, tbl, sub.Value, sealed.Value)
			if err != nil {
				return fmt.Errorf("stored credentials of %s in %s do not decrypt: %w", sub.Value, tbl, err)
			}
			forbidden = append(forbidden, sealed.Value, secrets.UserPassword, secrets.UserAPISecret)
		}
	}
	invokedMu.Lock()
	defer invokedMu.Unlock()
	for _, p := range functionsStarted {
		logs := p.Output()
		if invoked[p] && strings.TrimSpace(logs) == "" {
			return fmt.Errorf("%s wrote no logs; the check would prove nothing", p.Name)
		}
		for _, f := range forbidden {
			if f != "" && strings.Contains(logs, f) {
				return fmt.Errorf("%s logs contain a secret (a %d-character value)", p.Name, len(f))
			}
		}
		if m := tokenLike.FindString(logs); m != "" {
			return fmt.Errorf("%s logs contain a key or token (%s…)", p.Name, m[:3])
		}
		if strings.Contains(logs, "ada@example.com") {
			return fmt.Errorf("%s logs contain the raw Cognito event", p.Name)
		}
		for _, line := range strings.Split(logs, "\n") {
			if !emfcheck.IsEMF([]byte(line)) {
				continue
			}
			if _, err := emfcheck.Parse([]byte(line)); err != nil {
				return fmt.Errorf("%s wrote a metric CloudWatch would drop: %v", p.Name, err)
			}
		}
	}
	fmt.Printf("log scan: %d function processes, %d forbidden values, no leak\n", len(functionsStarted), len(forbidden))
	return nil
}

// tablesInUse, functionsStarted and sims are everything the suite
// created, for the log scan.
var (
	sims             []*localstack.Kandy
	tablesInUse      = []string{table}
	functionsStarted []*localenv.Process
)

// tokenLike matches Kandy keys, secrets and tokens.
var tokenLike = regexp.MustCompile(`\b(DA[KST]|UA[ST])[0-9a-f]{16,}`)

// noteInvoked notes that t invoked the function process p: it must have
// written logs for the log scan to prove anything.
func noteInvoked(t *testing.T, p *localenv.Process) {
	invokedMu.Lock()
	defer invokedMu.Unlock()
	invoked[p] = true
}

var (
	invokedMu sync.Mutex
	invoked   = map[*localenv.Process]bool{}
)

// loadEvent reads events/<name> and replaces its sub with sub, wherever the
// event carries one.
func loadEvent(t *testing.T, name, sub string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(localenv.RepoRoot(), "events", name))
	if err != nil {
		t.Fatal(err)
	}
	const fileSub = "6f1c2a9e-4b7d-4e2a-9c3f-1a2b3c4d5e6f"
	raw = []byte(strings.ReplaceAll(string(raw), fileSub, sub))
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func record(t *testing.T, sub string) map[string]string {
	t.Helper()
	return recordIn(t, table, sub)
}

// recordIn reads a record's string and number attributes; nil if there
// is none.
func recordIn(t *testing.T, tbl, sub string) map[string]string {
	t.Helper()
	out, err := stack.DB.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(tbl), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"sub": &types.AttributeValueMemberS{Value: sub}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.Item == nil {
		return nil
	}
	m := map[string]string{}
	for k, v := range out.Item {
		switch a := v.(type) {
		case *types.AttributeValueMemberS:
			m[k] = a.Value
		case *types.AttributeValueMemberN:
			m[k] = a.Value
		}
	}
	return m
}

var outMu sync.Mutex

// syncWriter lets two pipes share one buffer.
type syncWriter struct{ b *bytes.Buffer }

func (w *syncWriter) Write(p []byte) (int, error) {
	outMu.Lock()
	defer outMu.Unlock()
	return w.b.Write(p)
}
