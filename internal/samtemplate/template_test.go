package samtemplate_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/kandy-provisioner/kandy-provisioner/internal/samtemplate"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/config"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/httpapi"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/metrics"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/store"
)

func load(t *testing.T) *samtemplate.Template {
	t.Helper()
	tpl, err := samtemplate.Load(samtemplate.Path())
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func root() string { return filepath.Dir(samtemplate.Path()) }

func TestEveryFunctionHasAMakeTargetAndAFolder(t *testing.T) {
	tpl := load(t)
	fns := tpl.Functions()
	if len(fns) < 3 {
		t.Fatalf("functions = %v", fns)
	}
	for _, id := range fns {
		dir := samtemplate.FunctionDir(id)
		if _, err := os.Stat(filepath.Join(root(), dir, "main.go")); err != nil {
			t.Errorf("%s: no %s/main.go", id, dir)
		}
		// What sam build runs: it must build that folder for arm64 into ARTIFACTS_DIR.
		cmd := exec.Command("make", "--no-print-directory", "-n", "build-"+id, "ARTIFACTS_DIR=/artifacts")
		cmd.Dir = root()
		out, err := cmd.CombinedOutput()
		recipe := string(out)
		if err != nil || !strings.Contains(recipe, "GOARCH=arm64") || !strings.Contains(recipe, "-o /artifacts/bootstrap "+dir) {
			t.Errorf("make build-%s: %v\n%s", id, err, recipe)
		}
		r := tpl.Resources[id]
		if r.Metadata["BuildMethod"] != "makefile" {
			t.Errorf("%s: BuildMethod = %v", id, r.Metadata["BuildMethod"])
		}
	}
}

func TestGlobals(t *testing.T) {
	fn, _ := load(t).Globals["Function"].(map[string]any)
	want := map[string]string{"Runtime": "provided.al2023", "Handler": "bootstrap", "Architectures": "[arm64]", "Tracing": "Active"}
	for k, v := range want {
		if got := fmt.Sprint(fn[k]); got != v {
			t.Errorf("Globals.Function.%s = %s, want %s", k, got, v)
		}
	}
	if lc, _ := fn["LoggingConfig"].(map[string]any); lc["LogFormat"] != "JSON" {
		t.Errorf("LoggingConfig = %v", fn["LoggingConfig"])
	}
	if to, _ := fn["Timeout"].(int); to <= 0 || to > 30 {
		t.Errorf("global Timeout = %v", fn["Timeout"])
	}
}

func TestTriggerFitsCognitoLimit(t *testing.T) {
	tpl := load(t)
	pool := tpl.Resources["UserPool"].Properties
	lc, _ := pool["LambdaConfig"].(map[string]any)
	ref := fmt.Sprint(lc["PostConfirmation"])
	if ref != "map[Fn::GetAtt:[PostConfirmationFunction Arn]]" {
		t.Fatalf("PostConfirmation = %s", ref)
	}
	to, _ := tpl.Resources["PostConfirmationFunction"].Properties["Timeout"].(int)
	if to <= 0 || to > 5 {
		t.Fatalf("trigger Timeout = %v, want <= 5", to)
	}
	perm := tpl.Resources["PostConfirmationPermission"].Properties
	if perm["Principal"] != "cognito-idp.amazonaws.com" || fmt.Sprint(perm["SourceArn"]) != "map[Fn::GetAtt:[UserPool Arn]]" {
		t.Fatalf("permission = %v", perm)
	}
}

func TestTableIsDurableAndMatchesTheCode(t *testing.T) {
	tpl := load(t)
	id, err := tpl.Table()
	if err != nil {
		t.Fatal(err)
	}
	r := tpl.Resources[id]
	if r.DeletionPolicy != "Retain" {
		t.Errorf("DeletionPolicy = %q", r.DeletionPolicy)
	}
	if fmt.Sprint(r.Properties["PointInTimeRecoverySpecification"]) != "map[PointInTimeRecoveryEnabled:true]" {
		t.Errorf("PITR = %v", r.Properties["PointInTimeRecoverySpecification"])
	}
	if fmt.Sprint(r.Properties["SSESpecification"]) != "map[SSEEnabled:true]" {
		t.Errorf("SSE = %v", r.Properties["SSESpecification"])
	}
	if r.Properties["BillingMode"] != "PAY_PER_REQUEST" {
		t.Errorf("BillingMode = %v", r.Properties["BillingMode"])
	}
	in, err := tpl.CreateTableInput("x")
	if err != nil {
		t.Fatal(err)
	}
	if len(in.KeySchema) != 1 || *in.KeySchema[0].AttributeName != store.KeyAttribute || in.KeySchema[0].KeyType != "HASH" {
		t.Fatalf("key schema = %+v, the code uses %q as its only key", in.KeySchema, store.KeyAttribute)
	}
}

func TestPoliciesAreLeastPrivilege(t *testing.T) {
	tpl := load(t)
	for _, id := range tpl.Functions() {
		pols, _ := tpl.Resources[id].Properties["Policies"].([]any)
		if len(pols) == 0 {
			t.Errorf("%s has no policies", id)
		}
		for _, p := range pols {
			doc, ok := p.(map[string]any)
			if !ok {
				t.Errorf("%s: policy %v is not an inline document", id, p)
				continue
			}
			stmts, _ := doc["Statement"].([]any)
			for _, s := range stmts {
				st, _ := s.(map[string]any)
				if strings.Contains(fmt.Sprint(st["Resource"]), "*") {
					t.Errorf("%s: statement on %v", id, st["Resource"])
				}
				if strings.Contains(fmt.Sprint(st["Action"]), "*") {
					t.Errorf("%s: wildcard action %v", id, st["Action"])
				}
				if strings.Contains(fmt.Sprint(st["Action"]), "kms:Decrypt") {
					t.Errorf("%s may decrypt", id)
				}
			}
		}
	}
}

func TestCredentialsKeyRotatesAndFunctionsOnlyEncrypt(t *testing.T) {
	tpl := load(t)
	key := tpl.Resources["CredentialsKey"]
	if key.Type != "AWS::KMS::Key" || key.Properties["EnableKeyRotation"] != true || key.DeletionPolicy != "Retain" {
		t.Fatalf("CredentialsKey = %+v", key)
	}
	fn, _ := tpl.Globals["Function"].(map[string]any)
	env, _ := fn["Environment"].(map[string]any)
	vars, _ := env["Variables"].(map[string]any)
	if fmt.Sprint(vars["KMS_KEY_ID"]) != "map[Fn::GetAtt:[CredentialsKey Arn]]" {
		t.Fatalf("KMS_KEY_ID = %v", vars["KMS_KEY_ID"])
	}
	for _, id := range tpl.Functions() {
		pols, _ := tpl.Resources[id].Properties["Policies"].([]any)
		found := false
		for _, p := range pols {
			doc, _ := p.(map[string]any)
			stmts, _ := doc["Statement"].([]any)
			for _, s := range stmts {
				st, _ := s.(map[string]any)
				if fmt.Sprint(st["Action"]) == "kms:Encrypt" && fmt.Sprint(st["Resource"]) == "map[Fn::GetAtt:[CredentialsKey Arn]]" {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("%s cannot encrypt with CredentialsKey", id)
		}
	}
}

func TestNoSecretValueInTheTemplate(t *testing.T) {
	raw, err := os.ReadFile(samtemplate.Path())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "{{resolve:") {
		t.Fatal("template resolves a secret into a property")
	}
	fn, _ := load(t).Globals["Function"].(map[string]any)
	env, _ := fn["Environment"].(map[string]any)
	vars, _ := env["Variables"].(map[string]any)
	for k, v := range vars {
		if _, isString := v.(string); isString {
			t.Errorf("env %s is a literal; every value comes from a parameter or resource", k)
		}
		if regexp.MustCompile(`\b(DA[KS]|UA[KS])[0-9a-f]`).MatchString(fmt.Sprint(v)) {
			t.Errorf("env %s holds a Kandy key", k)
		}
	}
	if fmt.Sprint(vars["KANDY_SECRET_ID"]) != "map[Ref:KandySecretArn]" {
		t.Errorf("KANDY_SECRET_ID = %v, want the secret's ARN, never its value", vars["KANDY_SECRET_ID"])
	}
}

func TestRoutesMatchTheHandler(t *testing.T) {
	got := load(t).HTTPRoutes("ApiFunction")
	want := httpapi.New(nil, nil).Routes()
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("template routes %v, handler routes %v", got, want)
	}
}

func TestHttpApiUsesTheCognitoAuthorizer(t *testing.T) {
	api := load(t).Resources["HttpApi"].Properties
	auth, _ := api["Auth"].(map[string]any)
	name, _ := auth["DefaultAuthorizer"].(string)
	authorizers, _ := auth["Authorizers"].(map[string]any)
	a, _ := authorizers[name].(map[string]any)
	jwt, _ := a["JwtConfiguration"].(map[string]any)
	if !strings.Contains(fmt.Sprint(jwt["issuer"]), "${UserPool}") || fmt.Sprint(jwt["audience"]) != "[map[Ref:UserPoolClient]]" {
		t.Fatalf("JWT configuration = %v", jwt)
	}
	rs, _ := api["DefaultRouteSettings"].(map[string]any)
	if rs["ThrottlingBurstLimit"] == nil || rs["ThrottlingRateLimit"] == nil {
		t.Fatalf("no throttling: %v", rs)
	}
	cors, _ := api["CorsConfiguration"].(map[string]any)
	if fmt.Sprint(cors["AllowOrigins"]) != "map[Ref:CorsAllowedOrigins]" {
		t.Fatalf("CORS origins = %v", cors["AllowOrigins"])
	}
}

func TestOutputs(t *testing.T) {
	out := load(t).Outputs
	for _, k := range []string{"ApiUrl", "UserPoolId", "UserPoolClientId", "TableName"} {
		if out[k] == nil {
			t.Errorf("no output %s", k)
		}
	}
}

func TestRetryPath(t *testing.T) {
	tpl := load(t)
	esm := tpl.Resources["RetryEventSource"]
	p := esm.Properties
	if esm.Type != "AWS::Lambda::EventSourceMapping" || fmt.Sprint(p["FunctionName"]) != "map[Ref:RetryFunction]" ||
		fmt.Sprint(p["EventSourceArn"]) != "map[Fn::GetAtt:[RetryQueue Arn]]" ||
		fmt.Sprint(p["FunctionResponseTypes"]) != "[ReportBatchItemFailures]" || p["MaximumBatchingWindowInSeconds"] == nil {
		t.Fatalf("retry event source = %+v", esm)
	}
	q := tpl.Resources["RetryQueue"].Properties
	rp, _ := q["RedrivePolicy"].(map[string]any)
	if n, _ := rp["maxReceiveCount"].(int); n <= 0 || n > 10 || fmt.Sprint(rp["deadLetterTargetArn"]) != "map[Fn::GetAtt:[RetryDeadLetterQueue Arn]]" {
		t.Fatalf("redrive = %v", rp)
	}
	fnTimeout, _ := tpl.Resources["RetryFunction"].Properties["Timeout"].(int)
	if vt, _ := q["VisibilityTimeout"].(int); vt < 6*fnTimeout {
		t.Fatalf("visibility timeout %d < 6 x the worker's timeout %d", vt, fnTimeout)
	}
	alarm := tpl.Resources["RetryDeadLetterAlarm"]
	if alarm.Type != "AWS::CloudWatch::Alarm" || !strings.Contains(fmt.Sprint(alarm.Properties["Dimensions"]), "RetryDeadLetterQueue") {
		t.Fatalf("DLQ alarm = %+v", alarm)
	}
	env, _ := tpl.Resources["PostConfirmationFunction"].Properties["Environment"].(map[string]any)
	if !strings.Contains(fmt.Sprint(env), "RETRY_QUEUE_URL:map[Ref:RetryQueue]") {
		t.Fatalf("trigger environment = %v", env)
	}
}

// The alarms watch the metrics pkg/metrics emits, in the namespace the
// functions are given.
func TestAlarmsWatchTheEmittedMetrics(t *testing.T) {
	tpl := load(t)
	fn, _ := tpl.Globals["Function"].(map[string]any)
	env, _ := fn["Environment"].(map[string]any)
	vars, _ := env["Variables"].(map[string]any)
	ns := fmt.Sprint(vars[config.EnvMetricsNamespace])
	if !strings.Contains(ns, "AWS::StackName") {
		t.Fatalf("%s = %s: one namespace per stack, so two stacks' alarms do not mix", config.EnvMetricsNamespace, ns)
	}
	watched := map[string]bool{}
	for id, r := range tpl.Resources {
		if r.Type != "AWS::CloudWatch::Alarm" {
			continue
		}
		if fmt.Sprint(r.Properties["AlarmActions"]) == "<nil>" {
			t.Errorf("%s notifies nobody", id)
		}
		if name, ok := r.Properties["MetricName"].(string); ok && fmt.Sprint(r.Properties["Namespace"]) == ns {
			watched[name] = true
		}
	}
	for _, m := range []string{metrics.KandyErrors, metrics.QuotaExceeded} {
		if !watched[m] {
			t.Errorf("no alarm on %s in %s", m, ns)
		}
	}
	if tpl.Resources["FunctionErrorsAlarm"].Type != "AWS::CloudWatch::Alarm" {
		t.Error("no alarm on the functions' errors")
	}
}
