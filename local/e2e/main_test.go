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
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kandy-provisioner/kandy-provisioner/local/localrun"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

const (
	table    = localrun.DefaultTable
	secretID = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kandy-project-AbCdEf"
)

// stack is everything the functions talk to, shared by the whole suite.
var stack struct {
	*localrun.Stack
	sim       *localrun.Kandy
	api       *processes.Function
	trigger   *processes.Function
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
	build.Dir = processes.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return 1, fmt.Errorf("make build: %v\n%s", err, out)
	}
	s, err := localrun.Start(context.Background(), localrun.Options{Table: table, SecretID: secretID, Cognito: true})
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

	return m.Run(), nil
}

// loadEvent reads events/<name> and replaces its sub with sub, wherever the
// event carries one.
func loadEvent(t *testing.T, name, sub string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(processes.RepoRoot(), "events", name))
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

// deleted is Service.Delete as the API answers it: no account to delete
// is ErrNotProvisioned.
func deleted(s *provision.Service, ctx context.Context, sub string) error {
	had, err := s.Delete(ctx, sub)
	if err == nil && !had {
		return provision.ErrNotProvisioned
	}
	return err
}
