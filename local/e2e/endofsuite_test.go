package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/emfcheck"
	"github.com/kandy-provisioner/kandy-provisioner/local/localrun"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/fieldcrypt"
)

// The end-of-suite checks, TestNoSecretInAnyLog and
// TestIAMAllowsEveryCallAndEveryGrantIsUsed, judge what every other test
// of the package left: the function processes' output, and the AWS calls
// they made. They run last by package testing's rule, not by the order of
// files or functions (nor -shuffle's): a top-level test that calls
// t.Parallel runs only with other parallel tests, once every sequential
// top-level test has returned. Every other test of the package is
// sequential; scenarioRan fails one that runs functions alongside a check.

// afterEveryScenario holds an end-of-suite check until every sequential
// test of the package has returned.
func afterEveryScenario(t *testing.T) {
	t.Parallel()
	scenarios.Lock()
	scenarios.checking++
	scenarios.Unlock()
	t.Cleanup(func() {
		scenarios.Lock()
		scenarios.checking--
		scenarios.Unlock()
	})
}

// scenarios are the top-level tests that ran functions under the suite's
// recorders, and those of them that failed.
var scenarios = struct {
	sync.Mutex
	ran, failed map[string]bool
	noted       map[*testing.T]bool
	checking    int // end-of-suite checks under way
}{ran: map[string]bool{}, failed: map[string]bool{}, noted: map[*testing.T]bool{}}

// scenarioRan notes that t's top-level test runs functions under the
// recorders, and whether it fails.
func scenarioRan(t *testing.T) {
	name, _, _ := strings.Cut(t.Name(), "/")
	scenarios.Lock()
	defer scenarios.Unlock()
	if scenarios.checking > 0 {
		t.Errorf("%s runs functions while the end-of-suite checks run, which then miss its calls: it must not call t.Parallel", name)
	}
	scenarios.ran[name] = true
	if !scenarios.noted[t] {
		scenarios.noted[t] = true
		t.Cleanup(func() {
			scenarios.Lock()
			defer scenarios.Unlock()
			scenarios.failed[name] = scenarios.failed[name] || t.Failed()
		})
	}
}

// noteInvoked notes that t invoked the function process p: it must have
// written logs for the log scan to prove anything.
func noteInvoked(t *testing.T, p *processes.Process) {
	scenarioRan(t)
	invokedMu.Lock()
	defer invokedMu.Unlock()
	invoked[p] = true
}

var (
	invokedMu sync.Mutex
	invoked   = map[*processes.Process]bool{}
)

// tablesInUse, functionsStarted and sims are everything the suite
// created, for the log scan.
var (
	sims             []*localrun.Kandy
	tablesInUse      = []string{table}
	functionsStarted []*processes.Process
)

// tokenLike matches Kandy keys, secrets and tokens.
var tokenLike = regexp.MustCompile(`\b(DA[KST]|UA[ST])[0-9a-f]{16,}`)

// TestNoSecretInAnyLog: no function's output, in any test, carries a
// secret (the project key or secret, a stored password or user API
// secret, sealed or decrypted, a token) or the raw Cognito event; and
// every metric line is one CloudWatch keeps.
func TestNoSecretInAnyLog(t *testing.T) {
	afterEveryScenario(t)
	forbidden := []string{stack.projectKS[0], stack.projectKS[1]}
	for _, sim := range sims {
		forbidden = append(forbidden, sim.Issued()...)
	}
	for _, tbl := range tablesInUse {
		forbidden = append(forbidden, storedSecrets(t, tbl)...)
	}
	invokedMu.Lock()
	defer invokedMu.Unlock()
	for _, p := range functionsStarted {
		logs := p.Output()
		if invoked[p] && strings.TrimSpace(logs) == "" {
			t.Errorf("%s wrote no logs; the scan would prove nothing", p.Name)
		}
		for _, f := range forbidden {
			if f != "" && strings.Contains(logs, f) {
				t.Errorf("%s logs contain a secret (a %d-character value)", p.Name, len(f))
			}
		}
		if m := tokenLike.FindString(logs); m != "" {
			t.Errorf("%s logs contain a key or token (%s…)", p.Name, m[:3])
		}
		if strings.Contains(logs, "ada@example.com") {
			t.Errorf("%s logs contain the raw Cognito event", p.Name)
		}
		for _, line := range strings.Split(logs, "\n") {
			if !emfcheck.IsEMF([]byte(line)) {
				continue
			}
			if _, err := emfcheck.Parse([]byte(line)); err != nil {
				t.Errorf("%s wrote a metric CloudWatch would drop: %v", p.Name, err)
			}
		}
	}
	if !t.Failed() {
		fmt.Printf("log scan: %d function processes, %d forbidden values, no leak\n", len(functionsStarted), len(forbidden))
	}
}

// storedSecrets are the sealed credentials of every record in tbl, and
// what they decrypt to.
func storedSecrets(t *testing.T, tbl string) []string {
	t.Helper()
	out, err := stack.DB.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(tbl)})
	if err != nil {
		t.Fatal(err)
	}
	var secrets []string
	for _, it := range out.Items {
		sub, _ := it["sub"].(*types.AttributeValueMemberS)
		sealed, ok := it["user_password"].(*types.AttributeValueMemberS)
		if !ok || sub == nil {
			continue
		}
		plain, err := fieldcrypt.Open(context.Background(), stack.KMS, tbl, sub.Value, sealed.Value)
		if err != nil {
			t.Errorf("stored credentials of %s in %s do not decrypt: %v", sub.Value, tbl, err)
			continue
		}
		secrets = append(secrets, sealed.Value, plain.UserPassword, plain.UserAPISecret)
	}
	return secrets
}
