package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httputil"
	"net/url"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/local/localrun"
	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/signupqueue"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/store"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/userid"
)

// awsCall is one AWS API request a function made.
type awsCall struct {
	Service, Operation string
	Resource           string // the table, key, secret or queue it names
}

// recorder stands in front of every AWS endpoint of one function process
// and records each request before passing it on unchanged.
type recorder struct {
	function string
	env      map[string]string
	upstream map[string]*httputil.ReverseProxy

	mu    sync.Mutex
	calls map[awsCall]int
}

// endpoints are the JSON-protocol services the functions call: the
// X-Amz-Target prefix, IAM's service prefix, the endpoint variable and the
// request field that names the resource.
var endpoints = map[string]struct{ service, env, resource string }{
	"DynamoDB_20120810":                 {"dynamodb", "AWS_ENDPOINT_URL_DYNAMODB", "TableName"},
	"TrentService":                      {"kms", "AWS_ENDPOINT_URL_KMS", "KeyId"},
	"secretsmanager":                    {"secretsmanager", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "SecretId"},
	"AmazonSQS":                         {"sqs", "AWS_ENDPOINT_URL_SQS", "QueueUrl"},
	"AWSCognitoIdentityProviderService": {"cognito-idp", "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", "UserPoolId"},
}

var (
	recordersMu sync.Mutex
	recorders   []*recorder
	recordErrs  []error
)

// recordCalls returns env with every AWS endpoint of the function id,
// and any other service, pointed at a recorder of its own.
func recordCalls(id string, env []string) []string {
	r := &recorder{function: id, env: map[string]string{}, upstream: map[string]*httputil.ReverseProxy{}, calls: map[awsCall]int{}}
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		r.env[k] = v
	}
	for _, ep := range endpoints {
		endpoint := r.env[ep.env]
		if endpoint == "" {
			endpoint = r.env["AWS_ENDPOINT_URL"]
		}
		if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
			p := httputil.NewSingleHostReverseProxy(u)
			p.Transport = recorderTransport
			// A dropped or hung upstream reaches the function as it is.
			p.ErrorHandler = func(http.ResponseWriter, *http.Request, error) { panic(http.ErrAbortHandler) }
			r.upstream[ep.service] = p
		}
	}
	base, err := stack.Serve(0, r)
	recordersMu.Lock()
	defer recordersMu.Unlock()
	if err != nil {
		recordErrs = append(recordErrs, fmt.Errorf("recorder of %s: %w", id, err))
		return env
	}
	recorders = append(recorders, r)
	out := []string{"AWS_ENDPOINT_URL=" + base}
	for _, ep := range endpoints {
		if r.upstream[ep.service] != nil {
			out = append(out, ep.env+"="+base)
		}
	}
	return localrun.MergeEnv(env, out...)
}

var recorderTransport = &http.Transport{MaxIdleConnsPerHost: 16}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	prefix, op, _ := strings.Cut(req.Header.Get("X-Amz-Target"), ".")
	ep, known := endpoints[prefix]
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	var fields map[string]any
	_ = json.Unmarshal(body, &fields)
	call := awsCall{Service: ep.service, Operation: op, Resource: fmt.Sprint(fields[ep.resource])}
	if !known {
		call = awsCall{Service: "unknown", Operation: req.Method + " " + req.URL.Path + " " + req.Header.Get("X-Amz-Target")}
	}
	r.mu.Lock()
	r.calls[call]++
	r.mu.Unlock()
	up := r.upstream[ep.service]
	if up == nil {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"__type":"UnknownOperationException","message":"no local endpoint for %s"}`, prefix)
		return
	}
	up.ServeHTTP(w, req)
}

// iamAction is the IAM action an operation needs. For these services it is
// the operation's name, but for batches of one action; an operation whose
// actions depend on its content must be taught here.
func iamAction(c awsCall) (string, error) {
	switch {
	case c.Service == "unknown":
		return "", fmt.Errorf("a request to no known service (%s)", c.Operation)
	case c.Service == "sqs" && strings.HasSuffix(c.Operation, "Batch"):
		return "sqs:" + strings.TrimSuffix(c.Operation, "Batch"), nil
	case strings.HasPrefix(c.Operation, "Transact"), strings.Contains(c.Operation, "Statement"), c.Operation == "ExecuteTransaction":
		return "", fmt.Errorf("%s:%s needs the actions of what it contains: map it in iamAction", c.Service, c.Operation)
	}
	return c.Service + ":" + c.Operation, nil
}

// use is one permission a function needs: an action on a resource, as the
// stack names it, in a request with these condition keys.
type use struct {
	action, resource string
	keys             map[string]string
	why              string // what needs it
}

// platform lists, once, the permissions Lambda uses with a function's
// role on the function's behalf, not its code, each with the reason the
// AWS documentation gives.
func platform(s *samtemplate.Transformed, fn string) []use {
	logs := "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/{" + fn + "}"
	uses := []use{
		// "Lambda needs logs:CreateLogGroup, logs:CreateLogStream and logs:PutLogEvents
		// in the execution role to send logs to CloudWatch Logs"
		// (Lambda Developer Guide, Sending Lambda function logs to CloudWatch Logs).
		{action: "logs:CreateLogGroup", resource: logs, why: "Lambda creates the function's log group"},
		{action: "logs:CreateLogStream", resource: logs + ":log-stream:*", why: "Lambda writes the function's output"},
		{action: "logs:PutLogEvents", resource: logs + ":log-stream:*", why: "Lambda writes the function's output"},
	}
	// With active tracing, Lambda runs the X-Ray daemon with the execution
	// role: it relays trace segments and telemetry and fetches the sampling
	// rules and targets (AWSXRayDaemonWriteAccess; Lambda Developer Guide,
	// Visualize Lambda function invocations using AWS X-Ray).
	for _, a := range []string{"PutTraceSegments", "PutTelemetryRecords", "GetSamplingRules", "GetSamplingTargets", "GetSamplingStatisticSummaries"} {
		uses = append(uses, use{action: "xray:" + a, resource: "*", why: "Lambda's X-Ray daemon, with active tracing"})
	}
	// An SQS event source mapping polls the queue with the function's
	// execution role, which "needs sqs:ReceiveMessage, sqs:DeleteMessage and
	// sqs:GetQueueAttributes" (Lambda Developer Guide, Using Lambda with
	// Amazon SQS).
	for _, id := range s.OfType("AWS::Lambda::EventSourceMapping") {
		p, _ := s.Resolve(s.Resources[id].Properties).(map[string]any)
		if p["FunctionName"] == "{"+fn+"}" {
			for _, a := range []string{"ReceiveMessage", "DeleteMessage", "GetQueueAttributes"} {
				uses = append(uses, use{action: "sqs:" + a, resource: fmt.Sprint(p["EventSourceArn"]), why: "the event source mapping " + id})
			}
		}
	}
	// Lambda sends the record of an asynchronous invocation that failed
	// every retry to the on-failure destination with the function's
	// execution role (Lambda Developer Guide, Capturing records of Lambda
	// asynchronous invocations).
	for _, id := range s.OfType("AWS::Lambda::EventInvokeConfig") {
		p, _ := s.Resolve(s.Resources[id].Properties).(map[string]any)
		dc, _ := p["DestinationConfig"].(map[string]any)
		onFailure, _ := dc["OnFailure"].(map[string]any)
		if p["FunctionName"] == "{"+fn+"}" && onFailure["Destination"] != nil {
			uses = append(uses, use{action: "sqs:SendMessage", resource: fmt.Sprint(onFailure["Destination"]), why: "the on-failure destination of " + id})
		}
	}
	return uses
}

// target names the resource of a call as the stack does: the local value
// is that of one of the function's variables, and the template sets that
// variable from a resource or a parameter.
func target(s *samtemplate.Transformed, r *recorder, c awsCall) (string, error) {
	vars, _ := s.Resources[r.function].Properties["Environment"].(map[string]any)
	tvars, _ := vars["Variables"].(map[string]any)
	for name, v := range tvars {
		if r.env[name] != c.Resource || c.Resource == "" {
			continue
		}
		m, _ := v.(map[string]any)
		if ref, ok := m["Ref"].(string); ok && s.Resources[ref].Type != "" {
			return "{" + ref + ".Arn}", nil
		}
		return fmt.Sprint(s.Resolve(v)), nil
	}
	return "", fmt.Errorf("%s calls %s:%s on %q, which none of its template variables names", r.function, c.Service, c.Operation, c.Resource)
}

// uses returns what each function of the stack needs: every recorded call,
// what Secrets Manager does with the caller's permissions, and the
// platform's own uses.
func uses(s *samtemplate.Transformed) (map[string][]use, []error) {
	out, errs := map[string][]use{}, []error{}
	for _, fn := range s.OfType("AWS::Lambda::Function") {
		out[fn] = platform(s, fn)
	}
	type key struct{ function, action, resource string }
	counts := map[key]int{}
	for _, r := range recorders {
		for c, n := range r.calls {
			action, err := iamAction(c)
			if err == nil {
				var res string
				if res, err = target(s, r, c); err == nil {
					counts[key{r.function, action, res}] += n
				}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", r.function, err))
			}
		}
	}
	for k, n := range counts {
		out[k.function] = append(out[k.function], use{action: k.action, resource: k.resource, why: fmt.Sprintf("%d calls", n)})
		out[k.function] = append(out[k.function], viaSecretsManager(s, k.action, k.resource)...)
	}
	return out, errs
}

// viaSecretsManager: GetSecretValue on a secret under a customer-managed
// key makes Secrets Manager call kms:Decrypt with the caller's permissions
// (Secrets Manager User Guide, Secret encryption and decryption).
func viaSecretsManager(s *samtemplate.Transformed, action, secret string) []use {
	key := s.Values["KandySecretKmsKeyArn"]
	if action != "secretsmanager:GetSecretValue" || key == "" {
		return nil
	}
	keys := map[string]string{"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com", "kms:EncryptionContext:SecretARN": secret}
	return []use{{action: "kms:Decrypt", resource: key, keys: keys, why: "Secrets Manager, for GetSecretValue"}}
}

const secretKeyArn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

// grantUseScenarios are the tests that run functions under the
// recorders. Once all of them have run and passed, a grant no call used
// is one no scenario needs. A test that runs such functions and is not
// listed fails TestIAMAllowsEveryCallAndEveryGrantIsUsed.
var grantUseScenarios = []func(*testing.T){
	TestAccountLifecycle, TestRequestErrors, TestBase64Body, TestKandyDown, TestQuotaExceeded,
	TestTriggerConfirmSignUp, TestTriggerForgotPasswordDoesNothing, TestTriggerReturnsEventWhenProvisioningFails, TestMalformedTriggerEvent,
	TestFaultInjection, TestCrashBetweenKandyCreateAndFinalize, TestSlowKandyPastTheTriggerBudget,
	TestTriggerAndWorkerRecoverLikeTheAPI, TestDeleteDeletePostAcrossContainers, TestDeprovisionFunction, TestMetricsAreEmitted,
	TestScheduledReconcileReportsDrift, TestRetryWorkerBeatsItsDeadline, TestRetryQueue, TestALateRetryNeverUndoesADelete, TestRetryBacksOff,
	TestAVanishedKandyUserIsRebuilt, TestARotatedSecretIsUsedAtOnce,
}

// TestIAMAllowsEveryCallAndEveryGrantIsUsed holds every function's role in
// the deployed stack, with and without a key of the secret's own, to the
// calls the scenarios recorded: each call is allowed, and, once every one
// of grantUseScenarios has run and passed, each grant is used. It runs
// after them (afterEveryScenario).
func TestIAMAllowsEveryCallAndEveryGrantIsUsed(t *testing.T) {
	afterEveryScenario(t)
	whole := grantUseCheckable(t)
	recordersMu.Lock()
	defer recordersMu.Unlock()
	for _, err := range recordErrs {
		t.Error(err)
	}
	problems := map[string][]string{} // problem → the variants it shows in
	for variant, key := range map[string]string{"the secret under aws/secretsmanager": "", "the secret under its own key": secretKeyArn} {
		s, err := samtemplate.Transform(map[string]string{"KandySecretArn": secretID, "KandySecretKmsKeyArn": key, "ReconcileSchedule": "rate(1 day)"})
		if err != nil {
			t.Fatal(err)
		}
		needs, errs := uses(s)
		for _, e := range errs {
			problems[e.Error()] = append(problems[e.Error()], variant)
		}
		for _, fn := range s.OfType("AWS::Lambda::Function") {
			p, err := checkRole(s, fn, needs[fn], whole)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range p {
				problems[q] = append(problems[q], variant)
			}
		}
	}
	for _, p := range slices.Sorted(maps.Keys(problems)) {
		sort.Strings(problems[p])
		t.Errorf("IAM does not match the calls: %s [%s]", p, strings.Join(problems[p], ", "))
	}
	if t.Failed() {
		return
	}
	fmt.Printf("iam: %d function processes recorded; every call allowed by its role%s\n", len(recorders),
		map[bool]string{true: ", every grant used", false: " (grants' use not checked)"}[whole])
	called := map[string]map[string]bool{}
	for _, r := range recorders {
		for c := range r.calls {
			if called[r.function] == nil {
				called[r.function] = map[string]bool{}
			}
			called[r.function][c.Service+":"+c.Operation] = true
		}
	}
	for _, fn := range slices.Sorted(maps.Keys(called)) {
		fmt.Printf("iam: %s called %s\n", fn, strings.Join(slices.Sorted(maps.Keys(called[fn])), " "))
	}
}

// grantUseCheckable reports whether every one of grantUseScenarios ran
// and passed; when not, it says so plainly, and why. It fails t for a
// test that ran functions under the recorders without being listed.
func grantUseCheckable(t *testing.T) bool {
	listed := map[string]bool{}
	for _, f := range grantUseScenarios {
		name := runtime.FuncForPC(reflect.ValueOf(f).Pointer()).Name()
		listed[name[strings.LastIndex(name, ".")+1:]] = true
	}
	scenarios.Lock()
	defer scenarios.Unlock()
	for _, name := range slices.Sorted(maps.Keys(scenarios.ran)) {
		if !listed[name] {
			t.Errorf("%s runs functions under the recorders and is not in grantUseScenarios: add it", name)
		}
	}
	var notRun, failed []string
	for _, name := range slices.Sorted(maps.Keys(listed)) {
		switch {
		case !scenarios.ran[name]:
			notRun = append(notRun, name)
		case scenarios.failed[name]:
			failed = append(failed, name)
		}
	}
	for _, why := range []struct {
		tests  []string
		reason string
	}{
		{notRun, "did not run (a -run or -skip chose a subset)"},
		{failed, "failed, and may have left calls unmade"},
	} {
		if len(why.tests) > 0 {
			fmt.Printf("iam: grants' use NOT checked: %d of the %d scenarios it needs %s: %s\n",
				len(why.tests), len(listed), why.reason, strings.Join(why.tests, ", "))
		}
	}
	return len(notRun) == 0 && len(failed) == 0
}

// checkRole returns what is wrong with one function's role: a use it does
// not allow, or, when the whole suite ran, a grant no use needs.
func checkRole(s *samtemplate.Transformed, fn string, needs []use, whole bool) ([]string, error) {
	role, err := s.RoleOf(fn)
	if err != nil {
		return nil, err
	}
	grants, err := s.RoleGrants(role)
	if err != nil {
		return nil, err
	}
	used := make([]bool, len(grants))
	var problems []string
	for _, u := range needs {
		ok := false
		for i, g := range grants {
			if g.Allows(u.action, u.resource, u.keys) {
				used[i], ok = true, true
			}
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("%s needs %s on %s (%s), which its role does not allow: AccessDenied", fn, u.action, u.resource, u.why))
		}
	}
	for i, g := range grants {
		if whole && !used[i] {
			problems = append(problems, fmt.Sprintf("%s is granted %s, which no scenario uses", fn, g))
		}
	}
	return problems, nil
}

// The trigger and the retry worker provision through the same Ensure as
// the API, so they too take over a claim a crashed attempt left (PutItem)
// and read the record when a finalize's answer was lost (GetItem). This
// proves those grants of theirs with real calls.
func TestTriggerAndWorkerRecoverLikeTheAPI(t *testing.T) {
	r := newRetryRig(t)
	var subs []string
	for _, p := range []struct {
		name      string
		provision func(sub string)
	}{
		{"trigger", func(sub string) { r.signUp(t, sub) }},
		{"retry worker", func(sub string) {
			m := signupqueue.Message{Sub: sub, UserPoolID: "us-east-1_local", Attempt: 1}
			if err := signupqueue.New(r.q, r.queues.RetryURL).Send(context.Background(), m, provision.CodeKandyUnavailable); err != nil {
				t.Fatal(err)
			}
			r.drain(t, 15*time.Second)
		}},
	} {
		stale, lost := newSub(), newSub()
		staleClaim(t, r.fs.table, stale)
		p.provision(stale)
		before := r.fs.proxy.count()
		r.fs.proxy.inject("UpdateItem", ddbDropAfterWrite, 1)
		p.provision(lost)
		if r.fs.proxy.count() != before+1 {
			t.Errorf("%s: the finalize's answer was not dropped", p.name)
		}
		for what, sub := range map[string]string{"a stale claim": stale, "a lost finalize answer": lost} {
			if rec := recordIn(t, r.fs.table, sub); rec["status"] != "ACTIVE" {
				t.Errorf("%s after %s: record %v", p.name, what, redact(rec))
			}
		}
		subs = append(subs, stale, lost)
	}
	r.fs.checkInvariants(t, subs)
}

// staleClaim leaves what an attempt that crashed before creating the Kandy
// user leaves: a PENDING item whose claim has expired.
func staleClaim(t *testing.T, table, sub string) {
	t.Helper()
	uid, err := userid.FromSub(sub)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c := provision.Claim{Sub: sub, UserID: uid, Token: "crashed-attempt", ExpiresAt: now.Add(-time.Second), Now: now.Add(-10 * time.Second)}
	if _, claimed, err := store.NewAccounts(stack.DB, table).Claim(context.Background(), c); err != nil || !claimed {
		t.Fatalf("stale claim: %v, %v", claimed, err)
	}
}
