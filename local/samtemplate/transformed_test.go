package samtemplate_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/config"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/httpapi"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/metrics"
)

// The parameter values the deployed stack is checked with: the required
// one alone, or every optional one set too.
const (
	secretArn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kandy-project-AbCdEf"
	secretKey = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	topicArn  = "arn:aws:sns:us-east-1:123456789012:kandy-alarms"
)

var optional = map[string]string{
	"KandySecretKmsKeyArn": secretKey, "AlarmTopicArn": topicArn, "CorsAllowedOrigins": "https://a.example,https://b.example",
	"ReconcileSchedule": "rate(1 day)",
}

var stacks sync.Map // bool → *samtemplate.Transformed

// deployed is template.yaml through the real SAM transform, with the
// optional parameters at their defaults or, if custom, all set.
func deployed(t *testing.T, custom bool) *samtemplate.Transformed {
	t.Helper()
	if s, ok := stacks.Load(custom); ok {
		return s.(*samtemplate.Transformed)
	}
	params := map[string]string{"KandySecretArn": secretArn}
	if custom {
		for k, v := range optional {
			params[k] = v
		}
	}
	s, err := samtemplate.Transform(params)
	if err != nil {
		t.Fatal(err)
	}
	stacks.Store(custom, s)
	return s
}

// variants are both ways the stack is checked.
func variants(t *testing.T) map[string]*samtemplate.Transformed {
	return map[string]*samtemplate.Transformed{"defaults": deployed(t, false), "every option set": deployed(t, true)}
}

func props(s *samtemplate.Transformed, id string) map[string]any {
	p, _ := s.Resolve(s.Resources[id].Properties).(map[string]any)
	return p
}

func get(v any, path ...string) any {
	for _, k := range path {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

func TestEveryRouteRequiresTheCognitoScope(t *testing.T) {
	s := deployed(t, false)
	body := get(props(s, "HttpApi"), "Body")
	paths, _ := get(body, "paths").(map[string]any)
	var routes []string
	for p, ops := range paths {
		methods, _ := ops.(map[string]any)
		for m, op := range methods {
			routes = append(routes, strings.ToUpper(m)+" "+p)
			if sec := fmt.Sprint(get(op, "security")); sec != "[map[CognitoJwt:[aws.cognito.signin.user.admin]]]" {
				t.Errorf("%s %s: security %s, want the Cognito authorizer with the user-pool scope", m, p, sec)
			}
			if uri := fmt.Sprint(get(op, "x-amazon-apigateway-integration", "uri")); !strings.Contains(uri, "{ApiFunction.Arn}") {
				t.Errorf("%s %s integrates %s", m, p, uri)
			}
		}
	}
	auth := get(body, "components", "securitySchemes", "CognitoJwt", "x-amazon-apigateway-authorizer")
	if get(auth, "type") != "jwt" || get(auth, "identitySource") != "$request.header.Authorization" ||
		get(auth, "jwtConfiguration", "issuer") != "https://cognito-idp.us-east-1.amazonaws.com/{UserPool}" ||
		fmt.Sprint(get(auth, "jwtConfiguration", "audience")) != "[{UserPoolClient}]" {
		t.Errorf("CognitoJwt authorizer = %v", auth)
	}
	sort.Strings(routes)
	want := httpapi.New(nil, nil).Routes()
	sort.Strings(want)
	if strings.Join(routes, ",") != strings.Join(want, ",") {
		t.Errorf("deployed routes %v, handler routes %v", routes, want)
	}
}

func TestHttpApiIsThrottledAndNamesItsOrigins(t *testing.T) {
	s := deployed(t, true)
	if o := fmt.Sprint(get(props(s, "HttpApi"), "Body", "x-amazon-apigateway-cors", "allowOrigins")); o != "[https://a.example https://b.example]" {
		t.Errorf("CORS origins = %s", o)
	}
	stage := props(s, "HttpApiApiGatewayDefaultStage")
	for _, limit := range []string{"ThrottlingBurstLimit", "ThrottlingRateLimit"} {
		if get(stage, "DefaultRouteSettings", limit) == nil {
			t.Errorf("no %s: %v", limit, stage["DefaultRouteSettings"])
		}
	}
}

func TestHttpApiWritesAJSONAccessLog(t *testing.T) {
	s := deployed(t, false)
	ids := s.OfType("AWS::ApiGatewayV2::Stage")
	if len(ids) != 1 {
		t.Fatalf("stages %v", ids)
	}
	als := get(props(s, ids[0]), "AccessLogSettings")
	if get(als, "DestinationArn") != "{HttpApiAccessLogGroup.Arn}" {
		t.Fatalf("access log goes to %v", get(als, "DestinationArn"))
	}
	group := s.Resources["HttpApiAccessLogGroup"]
	if group.Type != "AWS::Logs::LogGroup" {
		t.Errorf("access log group is a %s, want AWS::Logs::LogGroup", group.Type)
	}
	if days := fmt.Sprint(props(s, "HttpApiAccessLogGroup")["RetentionInDays"]); days != s.Values["LogRetentionDays"] {
		t.Errorf("access log group keeps logs %s days, want LogRetentionDays %s", days, s.Values["LogRetentionDays"])
	}
	var line map[string]string
	if err := json.Unmarshal([]byte(fmt.Sprint(get(als, "Format"))), &line); err != nil {
		t.Fatalf("access log format is not one JSON object: %v", err)
	}
	for k, v := range map[string]string{
		"requestId": "$context.requestId", "routeKey": "$context.routeKey", "status": "$context.status",
		"responseLatency": "$context.responseLatency", "integrationErrorMessage": "$context.integrationErrorMessage",
		"sub": "$context.authorizer.claims.sub",
	} {
		if line[k] != v {
			t.Errorf("access log %s = %q, want %q", k, line[k], v)
		}
	}
}

func TestEveryLambdaPermissionNamesItsSource(t *testing.T) {
	s := deployed(t, false)
	perms := s.OfType("AWS::Lambda::Permission")
	if len(perms) < 5 {
		t.Fatalf("permissions %v", perms)
	}
	for _, id := range perms {
		p := props(s, id)
		src, _ := p["SourceArn"].(string)
		if src == "" {
			t.Errorf("%s lets any %v resource invoke %v", id, p["Principal"], p["FunctionName"])
		}
		if p["Principal"] == "apigateway.amazonaws.com" && !strings.Contains(src, ":{HttpApi}/") {
			t.Errorf("%s: API Gateway source %s is not this API", id, src)
		}
	}
}

func TestTriggerIsInvokedByItsUserPool(t *testing.T) {
	s := deployed(t, false)
	if lc := get(props(s, "UserPool"), "LambdaConfig", "PostConfirmation"); lc != "{PostConfirmationFunction.Arn}" {
		t.Fatalf("PostConfirmation = %v", lc)
	}
	found := false
	for _, id := range s.OfType("AWS::Lambda::Permission") {
		p := props(s, id)
		fn := fmt.Sprint(p["FunctionName"])
		if (fn == "{PostConfirmationFunction.Arn}" || fn == "{PostConfirmationFunction}") && p["Principal"] == "cognito-idp.amazonaws.com" &&
			p["SourceArn"] == "{UserPool.Arn}" && p["Action"] == "lambda:InvokeFunction" {
			found = true
		}
	}
	if !found {
		t.Fatal("no permission lets the user pool invoke PostConfirmationFunction")
	}
}

// Each function's environment in the deployed stack names exactly the
// variables its code reads (config.Spec), each from a parameter or a
// resource, never a literal.
func TestEachFunctionGetsExactlyTheVariablesItReads(t *testing.T) {
	s := deployed(t, true)
	specs := map[string]config.Spec{}
	for _, sp := range config.Functions() {
		specs[sp.Function] = sp
	}
	fns := s.OfType("AWS::Lambda::Function")
	if len(fns) != len(specs) {
		t.Errorf("stack functions %v, specs %v", fns, specs)
	}
	for _, id := range fns {
		raw, _ := get(s.Resources[id].Properties, "Environment", "Variables").(map[string]any)
		var names []string
		for name, v := range raw {
			names = append(names, name)
			if _, literal := v.(string); literal {
				t.Errorf("%s: %s is a literal; every value comes from a parameter or a resource", id, name)
			}
		}
		sort.Strings(names)
		want := append([]string(nil), specs[id].Vars...)
		sort.Strings(want)
		if strings.Join(names, ",") != strings.Join(want, ",") {
			t.Errorf("%s's environment names %v; its code reads %v", id, names, want)
		}
	}
	env := func(id, name string) string { return fmt.Sprint(get(props(s, id), "Environment", "Variables", name)) }
	for name, want := range map[string]string{
		config.EnvKandySecretID: secretArn, config.EnvKMSKeyID: "{CredentialsKey.Arn}", config.EnvTableName: "{AccountsTable}",
		config.EnvMetricsNamespace: "KandyProvisioner/kandy-provisioner",
	} {
		if got := env("ApiFunction", name); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
	if env("PostConfirmationFunction", config.EnvRetryQueueURL) != "{RetryQueue}" || env("RetryFunction", config.EnvRetryQueueURL) != "{RetryQueue}" ||
		env("RetryFunction", config.EnvDeadLetterQueueURL) != "{RetryDeadLetterQueue}" {
		t.Error("the queues' variables do not name the template's queues")
	}
}

func TestTimeoutsFitTheirCallers(t *testing.T) {
	s := deployed(t, false)
	timeout := func(id string) int {
		n, _ := props(s, id)["Timeout"].(float64)
		return int(n)
	}
	// Cognito waits 5 s for a trigger, cold start included.
	if to := timeout("PostConfirmationFunction"); to <= 0 || to >= 5 {
		t.Errorf("trigger timeout %d s, want under 5", to)
	}
	// An HTTP API integration gives up after 30 s.
	if to := timeout("ApiFunction"); to <= 0 || to >= 30 {
		t.Errorf("API timeout %d s, want under 30", to)
	}
	for _, id := range s.OfType("AWS::Lambda::EventSourceMapping") {
		esm := props(s, id)
		fn := strings.Trim(fmt.Sprint(esm["FunctionName"]), "{}")
		queue := strings.TrimSuffix(strings.Trim(fmt.Sprint(esm["EventSourceArn"]), "{}"), ".Arn")
		vt, _ := props(s, queue)["VisibilityTimeout"].(float64)
		if timeout(fn) <= 0 {
			t.Errorf("%s: %s has no timeout", id, fn)
		}
		if int(vt) < 6*timeout(fn) {
			t.Errorf("%s: %s's visibility timeout %v s is under six times %s's timeout %d s", id, queue, vt, fn, timeout(fn))
		}
	}
	if len(s.OfType("AWS::Lambda::EventSourceMapping")) == 0 {
		t.Error("no event source mapping")
	}
}

func TestFunctionsRunAsBuilt(t *testing.T) {
	s := deployed(t, false)
	groups := map[string]bool{}
	for _, id := range s.OfType("AWS::Logs::LogGroup") {
		p := props(s, id)
		if p["RetentionInDays"] == nil {
			t.Errorf("%s keeps logs forever", id)
		}
		groups[fmt.Sprint(p["LogGroupName"])] = true
	}
	for _, id := range s.OfType("AWS::Lambda::Function") {
		p := props(s, id)
		got := fmt.Sprintf("%v %v %v %v %v", p["Runtime"], p["Handler"], p["Architectures"], get(p, "TracingConfig", "Mode"), get(p, "LoggingConfig", "LogFormat"))
		if got != "provided.al2023 bootstrap [arm64] Active JSON" {
			t.Errorf("%s runs as %s", id, got)
		}
		if !groups["/aws/lambda/{"+id+"}"] {
			t.Errorf("%s has no log group of its own with a retention", id)
		}
	}
}

func TestOutputs(t *testing.T) {
	s := deployed(t, false)
	for _, k := range []string{"ApiUrl", "UserPoolId", "UserPoolClientId", "TableName", "RetryDeadLetterQueueUrl", "CredentialsKeyArn"} {
		if s.Outputs[k] == nil {
			t.Errorf("no output %s", k)
		}
	}
}

func TestNoSecretValueInTheStack(t *testing.T) {
	raw, err := json.Marshal(deployed(t, true))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "{{resolve:") {
		t.Error("the stack resolves a secret into a property")
	}
	if m := regexp.MustCompile(`\b(DA[KS]|UA[KS])[0-9a-f]{8}`).FindString(string(raw)); m != "" {
		t.Errorf("the stack holds a Kandy key (%s…)", m[:3])
	}
}

// The alarms watch the metrics pkg/metrics emits, in the namespace the
// functions are given, and every function's errors.
func TestAlarmsWatchTheEmittedMetrics(t *testing.T) {
	s := deployed(t, false)
	ns := fmt.Sprint(get(props(s, "ApiFunction"), "Environment", "Variables", config.EnvMetricsNamespace))
	watched := map[string]bool{}
	for _, id := range s.OfType("AWS::CloudWatch::Alarm") {
		p := props(s, id)
		if p["AlarmActions"] != nil {
			t.Errorf("%s notifies %v without a topic", id, p["AlarmActions"])
		}
		if got := fmt.Sprint(props(deployed(t, true), id)["AlarmActions"]); got != "["+topicArn+"]" {
			t.Errorf("%s notifies %s with a topic, want [%s]", id, got, topicArn)
		}
		if p["Namespace"] == ns {
			watched[fmt.Sprint(p["MetricName"])] = true
		}
	}
	for _, m := range []string{metrics.KandyErrors, metrics.QuotaExceeded, metrics.DependencyErrors} {
		if !watched[m] {
			t.Errorf("no alarm on %s in %s", m, ns)
		}
	}
	terms := fmt.Sprint(props(s, "FunctionErrorsAlarm")["Metrics"])
	for _, fn := range s.OfType("AWS::Lambda::Function") {
		if !strings.Contains(terms, "Value:{"+fn+"}") {
			t.Errorf("FunctionErrorsAlarm does not watch %s", fn)
		}
	}
}

// The scheduled reconcile exists only with a schedule: it runs on that
// schedule, may list the pool, scan the table and read the secret, and
// nothing more, and its drift and its failures each have an alarm.
func TestScheduledReconcile(t *testing.T) {
	if fns := deployed(t, false).OfType("AWS::Lambda::Function"); strings.Contains(strings.Join(fns, ","), "Reconcile") {
		t.Fatalf("without a schedule the stack deploys %v", fns)
	}
	s := deployed(t, true)
	var schedules []string
	for _, id := range s.OfType("AWS::Events::Rule") {
		p := props(s, id)
		if strings.Contains(fmt.Sprint(p["Targets"]), "ReconcileFunction") {
			schedules = append(schedules, fmt.Sprint(p["ScheduleExpression"]))
		}
	}
	if strings.Join(schedules, ",") != "rate(1 day)" {
		t.Fatalf("schedules of ReconcileFunction: %v", schedules)
	}
	var got []string
	for _, g := range functionGrants(t, s, "ReconcileFunction") {
		if !strings.HasPrefix(g.Action, "logs:") && !strings.HasPrefix(g.Action, "xray:") {
			got = append(got, g.Action+" "+g.Resource)
		}
	}
	sort.Strings(got)
	want := "cognito-idp:ListUsers {UserPool.Arn},dynamodb:Scan {AccountsTable.Arn},kms:Decrypt " + secretKey +
		",secretsmanager:GetSecretValue " + secretArn
	if strings.Join(got, ",") != want {
		t.Fatalf("ReconcileFunction may %v\nwant %s", got, want)
	}
	ns := fmt.Sprint(get(props(s, "ApiFunction"), "Environment", "Variables", config.EnvMetricsNamespace))
	drift, failed := props(s, "DriftAlarm"), props(s, "ReconcileFailedAlarm")
	if drift["MetricName"] != metrics.Drift || drift["Namespace"] != ns || !strings.Contains(fmt.Sprint(failed["Dimensions"]), "{ReconcileFunction}") ||
		fmt.Sprint(drift["AlarmActions"]) != "["+topicArn+"]" || fmt.Sprint(failed["AlarmActions"]) != "["+topicArn+"]" {
		t.Fatalf("drift alarm %v, failure alarm %v", drift, failed)
	}
}
