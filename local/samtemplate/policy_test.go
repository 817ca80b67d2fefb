package samtemplate_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/config"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/store"
)

// dataServices hold the data: none of their actions may be granted on
// every resource.
var dataServices = map[string]bool{"dynamodb": true, "secretsmanager": true, "kms": true, "sqs": true}

// unscoped returns the grants of data actions on a wildcard resource, or
// with a wildcard action.
func unscoped(grants []samtemplate.Grant) []samtemplate.Grant {
	var bad []samtemplate.Grant
	for _, g := range grants {
		if dataServices[samtemplate.ServiceOf(g.Action)] && (strings.Contains(g.Resource, "*") || strings.Contains(g.Action, "*")) {
			bad = append(bad, g)
		}
	}
	return bad
}

// Every role of the stack, inline and managed policies alike, names the
// resources of its data actions.
func TestNoRoleGrantsDataActionsOnEveryResource(t *testing.T) {
	for name, s := range variants(t) {
		roles := s.OfType("AWS::IAM::Role")
		if len(roles) < 3 {
			t.Fatalf("%s: roles %v", name, roles)
		}
		for _, role := range roles {
			grants, err := s.RoleGrants(role)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range unscoped(grants) {
				t.Errorf("%s: %s grants %s", name, role, g)
			}
		}
	}
	// The check sees through managed policies: the one SAM attaches for an
	// SQS event may read every queue of the account.
	sqsRole, err := samtemplate.ManagedGrants("arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole")
	if err != nil {
		t.Fatalf("AWSLambdaSQSQueueExecutionRole: %v", err)
	}
	if u := unscoped(sqsRole); len(u) != 3 {
		t.Fatalf("AWSLambdaSQSQueueExecutionRole: %d unscoped grants, want 3: %v", len(u), u)
	}
	if _, err := samtemplate.ManagedGrants("arn:aws:iam::aws:policy/AdministratorAccess"); err == nil {
		t.Fatal("an unknown managed policy passed")
	}
}

// The functions seal credentials with the credentials key and can never
// open them; kms:Decrypt exists only on the secret's own key, only through
// Secrets Manager, only for this secret.
func TestFunctionsEncryptButNeverDecryptStoredCredentials(t *testing.T) {
	if p := props(deployed(t, false), "CredentialsKey"); p["EnableKeyRotation"] != true {
		t.Errorf("CredentialsKey = %v", p)
	}
	viaSecretsManager := map[string]string{"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com", "kms:EncryptionContext:SecretARN": secretArn}
	seals := map[string]bool{}
	for _, sp := range config.Functions() {
		seals[sp.Function] = slices.Contains(sp.Vars, config.EnvKMSKeyID)
	}
	for name, s := range variants(t) {
		for _, fn := range s.OfType("AWS::Lambda::Function") {
			grants := functionGrants(t, s, fn)
			if allowed(grants, "kms:Encrypt", "{CredentialsKey.Arn}", nil) != seals[fn] {
				t.Errorf("%s: %s may encrypt with CredentialsKey: %v; it seals credentials: %v", name, fn, !seals[fn], seals[fn])
			}
			if allowed(grants, "kms:Decrypt", "{CredentialsKey.Arn}", viaSecretsManager) {
				t.Errorf("%s: %s may decrypt stored credentials", name, fn)
			}
			decrypt := allowed(grants, "kms:Decrypt", secretKey, viaSecretsManager)
			if decrypt != (s.Values["KandySecretKmsKeyArn"] != "") {
				t.Errorf("%s: %s may decrypt with the secret's key: %v", name, fn, decrypt)
			}
			other := map[string]string{"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com", "kms:EncryptionContext:SecretARN": secretArn + "x"}
			if allowed(grants, "kms:Decrypt", secretKey, map[string]string{"kms:ViaService": "s3.us-east-1.amazonaws.com", "kms:EncryptionContext:SecretARN": secretArn}) ||
				allowed(grants, "kms:Decrypt", secretKey, other) || allowed(grants, "kms:Decrypt", secretKey, nil) {
				t.Errorf("%s: %s may use the secret's key beyond reading the secret", name, fn)
			}
		}
	}
}

func functionGrants(t *testing.T, s *samtemplate.Transformed, fn string) []samtemplate.Grant {
	t.Helper()
	role, err := s.RoleOf(fn)
	if err != nil {
		t.Fatal(err)
	}
	grants, err := s.RoleGrants(role)
	if err != nil {
		t.Fatal(err)
	}
	return grants
}

func allowed(grants []samtemplate.Grant, action, resource string, keys map[string]string) bool {
	for _, g := range grants {
		if g.Allows(action, resource, keys) {
			return true
		}
	}
	return false
}

// Users, their accounts, the key of their credentials and the sign-ups
// still pending are data: deleting or replacing the stack keeps them.
func TestStatefulResourcesOutliveTheStack(t *testing.T) {
	s := deployed(t, false)
	for _, id := range []string{"AccountsTable", "CredentialsKey", "UserPool", "RetryQueue", "RetryDeadLetterQueue"} {
		r := s.Resources[id]
		if r.DeletionPolicy != "Retain" {
			t.Errorf("%s: DeletionPolicy %q, want Retain", id, r.DeletionPolicy)
		}
		if r.UpdateReplacePolicy != "Retain" {
			t.Errorf("%s: UpdateReplacePolicy %q, want Retain", id, r.UpdateReplacePolicy)
		}
	}
	if p := props(s, "UserPool"); p["DeletionProtection"] != "ACTIVE" {
		t.Errorf("UserPool DeletionProtection = %v", p["DeletionProtection"])
	}
	table := props(s, "AccountsTable")
	if fmt.Sprintf("%v %v %v", table["PointInTimeRecoverySpecification"], table["SSESpecification"], table["BillingMode"]) !=
		"map[PointInTimeRecoveryEnabled:true] map[SSEEnabled:true] PAY_PER_REQUEST" {
		t.Errorf("AccountsTable = %v", table)
	}
	for _, q := range s.OfType("AWS::SQS::Queue") {
		if props(s, q)["SqsManagedSseEnabled"] != true {
			t.Errorf("%s is not encrypted", q)
		}
	}
}

var filled = regexp.MustCompile(`FILL\(\s*(\w+)\s*,\s*0\s*\)`)

// Lambda publishes no Errors datum for an idle function: a metric-math
// term without FILL leaves the expression without data, and the alarm
// silent while another function fails.
func TestMetricMathAlarmsFillEveryTerm(t *testing.T) {
	s := deployed(t, false)
	checked := 0
	for _, id := range s.OfType("AWS::CloudWatch::Alarm") {
		queries, _ := props(s, id)["Metrics"].([]any)
		stats := map[string]bool{}
		for _, q := range queries {
			if get(q, "MetricStat") != nil {
				stats[fmt.Sprint(get(q, "Id"))] = true
			}
		}
		for _, q := range queries {
			expr, ok := get(q, "Expression").(string)
			if !ok {
				continue
			}
			checked++
			for _, w := range regexp.MustCompile(`\w+`).FindAllString(filled.ReplaceAllString(expr, "0"), -1) {
				if stats[w] {
					t.Errorf("%s: %q uses %s without FILL(%s, 0)", id, expr, w, w)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no metric-math alarm: FunctionErrorsAlarm sums the functions' errors")
	}
}

// KandySecretArn is named exactly by the policies: a partial ARN deploys
// and then meets AccessDenied, so the parameter refuses it.
func TestSecretParametersTakeOnlyWhatThePoliciesMatch(t *testing.T) {
	s := deployed(t, false)
	for name, cases := range map[string]map[string]bool{
		"KandySecretArn": {
			secretArn: true,
			"arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/kandy_project.v2-Zx9Yw8": true,
			"arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:kandy-AbCdEf":      true,
			"arn:aws:secretsmanager:us-east-1:123456789012:secret:kandy-project":                false,
			"arn:aws:secretsmanager:us-east-1:123456789012:secret:kandy-project-AbCdE":          false,
			"kandy-project-AbCdEf": false, "": false,
		},
		"KandySecretKmsKeyArn": {
			"": true, secretKey: true,
			"arn:aws:kms:us-east-1:123456789012:alias/kandy": false,
			"1234abcd-12ab-34cd-56ef-1234567890ab":           false,
		},
	} {
		pattern := regexp.MustCompile(s.Parameters[name].AllowedPattern)
		for v, ok := range cases {
			if pattern.MatchString(v) != ok {
				t.Errorf("%s %q: accepted %v, want %v", name, v, !ok, ok)
			}
		}
	}
}

func TestRetryPath(t *testing.T) {
	s := deployed(t, false)
	esm := props(s, "RetryEventSource")
	for _, p := range []struct{ key, want string }{
		{"FunctionName", "{RetryFunction}"},
		{"EventSourceArn", "{RetryQueue.Arn}"},
		{"FunctionResponseTypes", "[ReportBatchItemFailures]"},
	} {
		if got := fmt.Sprint(esm[p.key]); got != p.want {
			t.Errorf("retry event source %s %s, want %s", p.key, got, p.want)
		}
	}
	if esm["MaximumBatchingWindowInSeconds"] == nil {
		t.Errorf("retry event source has no MaximumBatchingWindowInSeconds: %v", esm)
	}
	redrive := get(props(s, "RetryQueue"), "RedrivePolicy")
	// pkg/trigger's tests hold maxReceiveCount to the backoff's hour.
	if n, _ := get(redrive, "maxReceiveCount").(float64); n <= 0 {
		t.Errorf("redrive maxReceiveCount %v, want one: %v", get(redrive, "maxReceiveCount"), redrive)
	}
	if arn := get(redrive, "deadLetterTargetArn"); arn != "{RetryDeadLetterQueue.Arn}" {
		t.Errorf("redrive deadLetterTargetArn %v, want {RetryDeadLetterQueue.Arn}", arn)
	}
	if d := fmt.Sprint(props(s, "RetryDeadLetterAlarm")["Dimensions"]); !strings.Contains(d, "{RetryDeadLetterQueue.QueueName}") {
		t.Errorf("dead-letter alarm watches %s", d)
	}
	if n := len(s.OfType("AWS::Lambda::EventSourceMapping")); n != 1 {
		t.Errorf("%d event source mappings", n)
	}
}

// The deprovision path: the rule matches the CloudTrail events the
// function handles (the fixtures in events/) and no failed call; a failed
// delivery and a failed invocation are both retried, then land in a
// retained dead-letter queue with an alarm; tombstones expire by TTL on
// the attribute the store writes.
func TestDeprovisionPath(t *testing.T) {
	s := deployed(t, false)
	rule := props(s, "DeprovisionFunctionUserDeleted")
	pattern, _ := rule["EventPattern"].(map[string]any)
	admin := eventFile(t, "user-deleted-admin.json")
	if samtemplate.MatchEventPattern(pattern, admin) {
		t.Errorf("the rule matches an AdminDeleteUser of another pool")
	}
	for _, name := range []string{"user-deleted-admin.json", "user-deleted-self.json"} {
		ev := eventFile(t, name)
		if params, ok := get(ev, "detail", "requestParameters").(map[string]any); ok && params["userPoolId"] != nil {
			params["userPoolId"] = "{UserPool}" // this stack's pool
		}
		if !samtemplate.MatchEventPattern(pattern, ev) {
			t.Errorf("the rule's pattern %v does not match events/%s", pattern, name)
		}
		get(ev, "detail").(map[string]any)["errorCode"] = "AccessDenied"
		if samtemplate.MatchEventPattern(pattern, ev) {
			t.Errorf("the rule matches a denied %s", name)
		}
	}
	targets, _ := rule["Targets"].([]any)
	if len(targets) != 1 {
		t.Fatalf("%d rule targets, want 1: %v", len(targets), targets)
	}
	target, _ := targets[0].(map[string]any)
	if target["Arn"] != "{DeprovisionFunction.Arn}" {
		t.Fatalf("rule target %v, want {DeprovisionFunction.Arn}", target["Arn"])
	}
	if n, _ := get(target, "RetryPolicy", "MaximumEventAgeInSeconds").(float64); n < 3600 {
		t.Errorf("rule target retries for %v s, want at least 3600: %v", get(target, "RetryPolicy", "MaximumEventAgeInSeconds"), target)
	}
	if dl := get(target, "DeadLetterConfig", "Arn"); dl != "{DeprovisionDeadLetterQueue.Arn}" {
		t.Errorf("rule target's dead letters go to %v, want {DeprovisionDeadLetterQueue.Arn}", dl)
	}
	invoke := props(s, "DeprovisionFunctionEventInvokeConfig")
	if n := get(invoke, "MaximumRetryAttempts"); n != float64(2) {
		t.Errorf("asynchronous invocation MaximumRetryAttempts %v, want 2", n)
	}
	if d := get(invoke, "DestinationConfig", "OnFailure", "Destination"); d != "{DeprovisionDeadLetterQueue.Arn}" {
		t.Errorf("asynchronous invocation's failures go to %v, want {DeprovisionDeadLetterQueue.Arn}", d)
	}
	if d := fmt.Sprint(props(s, "DeprovisionDeadLetterAlarm")["Dimensions"]); !strings.Contains(d, "{DeprovisionDeadLetterQueue.QueueName}") {
		t.Errorf("dead-letter alarm watches %s", d)
	}
	if s.Resources["DeprovisionDeadLetterQueue"].DeletionPolicy != "Retain" {
		t.Error("the deprovision dead-letter queue is not retained")
	}
	qp := fmt.Sprint(props(s, "DeprovisionDeadLetterQueuePolicy")["PolicyDocument"])
	// EventBridge may send, for this rule only.
	for _, want := range []string{"events.amazonaws.com", "{DeprovisionFunctionUserDeleted.Arn}"} {
		if !strings.Contains(qp, want) {
			t.Errorf("queue policy lacks %s: %s", want, qp)
		}
	}
	ttl := get(props(s, "AccountsTable"), "TimeToLiveSpecification")
	if a := get(ttl, "AttributeName"); a != store.TTLAttribute {
		t.Errorf("TTL attribute %v, want %s (the store writes it)", a, store.TTLAttribute)
	}
	if e := get(ttl, "Enabled"); e != true {
		t.Errorf("TTL Enabled %v, want true", e)
	}
}

func eventFile(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root(), "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// Only the retry worker reschedules messages, and only in the retry queue;
// the IAM test of e2e proves the grant from its recorded calls.
func TestOnlyTheWorkerReschedulesAndOnlyRetries(t *testing.T) {
	s := deployed(t, false)
	for _, fn := range s.OfType("AWS::Lambda::Function") {
		grants := functionGrants(t, s, fn)
		for _, q := range []string{"{RetryQueue.Arn}", "{RetryDeadLetterQueue.Arn}", "arn:aws:sqs:us-east-1:123456789012:another-queue"} {
			want := fn == "RetryFunction" && q == "{RetryQueue.Arn}"
			if got := allowed(grants, "sqs:ChangeMessageVisibility", q, nil); got != want {
				t.Errorf("%s may change the visibility of messages in %s: %v, want %v", fn, q, got, want)
			}
		}
	}
}
