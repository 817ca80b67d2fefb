package localrun

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
)

func TestResolve(t *testing.T) {
	refs := map[string]string{"Table": "t1", "Key.Arn": "arn:key", "AWS::StackName": "local"}
	tests := []struct {
		in   any
		want string
	}{
		{map[string]any{"Ref": "Table"}, "t1"},
		{map[string]any{"Fn::GetAtt": []string{"Key", "Arn"}}, "arn:key"},
		{map[string]any{"Fn::GetAtt": []any{"Key", "Arn"}}, "arn:key"},
		{map[string]any{"Fn::Sub": "KandyProvisioner/${AWS::StackName}"}, "KandyProvisioner/local"},
		{"plain", "plain"},
	}
	for _, tt := range tests {
		got, err := resolve(tt.in, refs)
		if err != nil || got != tt.want {
			t.Errorf("resolve(%v) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []any{map[string]any{"Ref": "Missing"}, map[string]any{"Fn::Sub": "${Missing}"}, map[string]any{"Fn::GetAtt": []string{"Key", "Nope"}}} {
		if _, err := resolve(bad, refs); err == nil {
			t.Errorf("resolve(%v) resolved what the stack does not have", bad)
		}
	}
}

// TestFunctionEnvFollowsTheTemplate: every variable the template gives a
// function, with this stack's values, and the local endpoints.
func TestFunctionEnvFollowsTheTemplate(t *testing.T) {
	s := &Stack{Table: "accounts", SecretID: "kandy-project", KandyURL: "http://127.0.0.1:1/v1.2", KeyARN: "arn:aws:kms:us-east-1:111122223333:key/k",
		DynamoURL: "http://127.0.0.1:2", SQSURL: "http://127.0.0.1:3", Queues: map[string]Queue{
			"RetryQueue":           {Name: "RetryQueue", URL: "http://q/RetryQueue", ARN: "arn:q"},
			"RetryDeadLetterQueue": {Name: "RetryDeadLetterQueue", URL: "http://q/RetryDeadLetterQueue", ARN: "arn:dlq"},
		}, userPools: map[string]string{"UserPool": "us-east-1_local"}}
	tpl, err := samtemplate.Load(samtemplate.Path())
	if err != nil {
		t.Fatal(err)
	}
	defaults, err := samtemplate.ParameterDefaults(samtemplate.Path())
	if err != nil {
		t.Fatal(err)
	}
	started := 0
	for _, id := range tpl.Functions() {
		if !tpl.Deployed(id, defaults) {
			continue
		}
		started++
		env, err := s.FunctionEnv(id)
		if err != nil {
			t.Fatal(err)
		}
		for name := range tpl.Variables(id) {
			if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, name+"=") && len(e) > len(name)+1 }) {
				t.Errorf("%s: no value for the template's %s in %v", id, name, env)
			}
		}
		for _, e := range env {
			name, _, _ := strings.Cut(e, "=")
			if _, declared := tpl.Variables(id)[name]; !declared && !strings.HasPrefix(name, "AWS_") {
				t.Errorf("%s: %s, which the template does not give it", id, name)
			}
		}
		for _, want := range []string{"TABLE_NAME=accounts", "METRICS_NAMESPACE=KandyProvisioner/local", "AWS_ENDPOINT_URL_SQS=http://127.0.0.1:3", "AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:2"} {
			if !slices.Contains(env, want) {
				t.Errorf("%s: no %s", id, want)
			}
		}
	}
	if started != 4 {
		t.Errorf("%d functions deployed by default, want 4", started)
	}
	// The scheduled reconcile only with a schedule.
	if tpl.Deployed("ReconcileFunction", defaults) {
		t.Error("ReconcileFunction deployed without a schedule")
	}
	if !tpl.Deployed("ReconcileFunction", map[string]string{"ReconcileSchedule": "rate(1 day)"}) {
		t.Error("ReconcileFunction not deployed with a schedule")
	}
	post, _ := s.FunctionEnv("PostConfirmationFunction")
	retry, _ := s.FunctionEnv("RetryFunction")
	if want := "RETRY_QUEUE_URL=http://q/RetryQueue"; !slices.Contains(post, want) {
		t.Errorf("trigger's environment %v lacks %s", post, want)
	}
	if want := "DEAD_LETTER_QUEUE_URL=http://q/RetryDeadLetterQueue"; !slices.Contains(retry, want) {
		t.Errorf("worker's environment %v lacks %s", retry, want)
	}
}

// TestQueuesAndUserPoolFromTheTemplate starts goaws and cognito-local,
// twice on one DataDir: the template's settings, then the same pool, app
// client and KMS key after the restart.
func TestQueuesAndUserPoolFromTheTemplate(t *testing.T) {
	dir := t.TempDir()
	first := startWithPool(t, dir)
	ctx := context.Background()
	attrs, err := first.stack.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(first.stack.Queues["RetryQueue"].URL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	if vt := attrs.Attributes["VisibilityTimeout"]; vt != "180" {
		t.Errorf("RetryQueue VisibilityTimeout %q, want 180", vt)
	}
	if rp, dlq := attrs.Attributes["RedrivePolicy"], first.stack.Queues["RetryDeadLetterQueue"].Name; !strings.Contains(rp, dlq) {
		t.Errorf("RetryQueue RedrivePolicy %q does not name %s", rp, dlq)
	}
	pool, err := first.pool.Client.DescribeUserPool(ctx, &cip.DescribeUserPoolInput{UserPoolId: aws.String(first.pool.ID)})
	if err != nil {
		t.Fatal(err)
	}
	up := pool.UserPool
	if want := []ciptypes.UsernameAttributeType{"email"}; !slices.Equal(up.UsernameAttributes, want) {
		t.Errorf("pool's username attributes %q, want %q", up.UsernameAttributes, want)
	}
	if n := aws.ToInt32(up.Policies.PasswordPolicy.MinimumLength); n != 12 {
		t.Errorf("pool's minimum password length %d, want 12", n)
	}
	client, err := first.pool.Client.DescribeUserPoolClient(ctx, &cip.DescribeUserPoolClientInput{UserPoolId: aws.String(first.pool.ID), ClientId: aws.String(first.pool.ClientID)})
	if err != nil {
		t.Fatal(err)
	}
	flows := client.UserPoolClient.ExplicitAuthFlows
	for _, want := range []string{"ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_PASSWORD_AUTH"} {
		if !slices.ContainsFunc(flows, func(f ciptypes.ExplicitAuthFlowsType) bool { return string(f) == want }) {
			t.Errorf("app client flows %v lack %s", flows, want)
		}
	}
	first.stack.Stop()
	second := startWithPool(t, dir)
	type ids struct{ Pool, Client, Key string }
	before := ids{first.pool.ID, first.pool.ClientID, first.stack.KeyARN}
	if after := (ids{second.pool.ID, second.pool.ClientID, second.stack.KeyARN}); after != before {
		t.Errorf("after a restart: %+v, want as before %+v", after, before)
	}
}

type stackWithPool struct {
	stack *Stack
	pool  *UserPool
}

func startWithPool(t *testing.T, dir string) stackWithPool {
	t.Helper()
	s, err := Start(context.Background(), Options{SQS: true, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	p, err := s.StartUserPool(context.Background(), UserPoolOptions{LambdaURL: "http://127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	return stackWithPool{s, p}
}

// Every backing server is watched: each one's exit is reported, once.
func TestExitedTellsOfEachBackingServer(t *testing.T) {
	st := startWithPool(t, t.TempDir()).stack
	exited := st.Exited()
	var names []string
	for _, p := range st.servers {
		p.Stop()
		select {
		case got := <-exited:
			names = append(names, got.Name)
		case <-time.After(5 * time.Second):
			t.Fatalf("%s exited unreported", p.Name)
		}
	}
	slices.Sort(names)
	if want := []string{"cognito-local", "dynalite", "goaws", "local-kms"}; !slices.Equal(names, want) {
		t.Errorf("reported %v, want %v", names, want)
	}
}

// TestUserPoolFront: the pool's front refuses a sub chosen by the
// caller, issues tokens under its own address, and tells of each user
// deleted (by an administrator, or by the user's access token) once, with
// the user's sub; a delete of an unknown user tells of nothing.
func TestUserPoolFront(t *testing.T) {
	s, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	heard := make(chan UserDeleted, 10)
	up, err := s.StartUserPool(context.Background(), UserPoolOptions{LambdaURL: "http://127.0.0.1:9",
		OnUserDeleted: func(_ context.Context, d UserDeleted) { heard <- d }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, c := context.Background(), up.Client
	_, err = c.SignUp(ctx, &cip.SignUpInput{ClientId: aws.String(up.ClientID), Username: aws.String("mal@example.com"), Password: aws.String("Mallory-passw0rd!"),
		UserAttributes: []ciptypes.AttributeType{{Name: aws.String("email"), Value: aws.String("mal@example.com")}, {Name: aws.String("sub"), Value: aws.String("someone-else")}}})
	var invalid *ciptypes.InvalidParameterException
	if !errors.As(err, &invalid) {
		t.Errorf("SignUp with a sub: %v, want Cognito's InvalidParameterException", err)
	} else if msg, want := aws.ToString(invalid.Message), "Cannot modify the non-mutable attribute sub"; msg != want {
		t.Errorf("SignUp with a sub: message %q, want %q", msg, want)
	}

	subs := map[string]string{}
	for _, name := range []string{"ada@example.com", "bob@example.com"} {
		u, err := c.AdminCreateUser(ctx, &cip.AdminCreateUserInput{UserPoolId: aws.String(up.ID), Username: aws.String(name), MessageAction: ciptypes.MessageActionTypeSuppress,
			UserAttributes: []ciptypes.AttributeType{{Name: aws.String("email"), Value: aws.String(name)}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range u.User.Attributes {
			if aws.ToString(a.Name) == "sub" {
				subs[name] = aws.ToString(a.Value)
			}
		}
	}
	if _, err := c.AdminSetUserPassword(ctx, &cip.AdminSetUserPasswordInput{UserPoolId: aws.String(up.ID), Username: aws.String("bob@example.com"),
		Password: aws.String("Bob-local-passw0rd"), Permanent: true}); err != nil {
		t.Fatal(err)
	}
	auth, err := c.InitiateAuth(ctx, &cip.InitiateAuthInput{ClientId: aws.String(up.ClientID), AuthFlow: ciptypes.AuthFlowTypeUserPasswordAuth,
		AuthParameters: map[string]string{"USERNAME": "bob@example.com", "PASSWORD": "Bob-local-passw0rd"}})
	if err != nil {
		t.Fatal(err)
	}
	access := aws.ToString(auth.AuthenticationResult.AccessToken)
	if iss := jwtClaims(t, access)["iss"]; iss != up.Issuer {
		t.Errorf("the access token's iss is %v, want the pool's issuer %s", iss, up.Issuer)
	}
	if !strings.HasPrefix(up.Issuer, up.URL+"/") {
		t.Errorf("the pool's issuer %s is not under its URL %s", up.Issuer, up.URL)
	}

	if _, err := c.AdminDeleteUser(ctx, &cip.AdminDeleteUserInput{UserPoolId: aws.String(up.ID), Username: aws.String("ada@example.com")}); err != nil {
		t.Fatal(err)
	}
	var missing *ciptypes.UserNotFoundException
	if _, err := c.AdminDeleteUser(ctx, &cip.AdminDeleteUserInput{UserPoolId: aws.String(up.ID), Username: aws.String("ada@example.com")}); !errors.As(err, &missing) {
		t.Errorf("deleting ada again: %v", err)
	}
	if _, err := c.DeleteUser(ctx, &cip.DeleteUserInput{AccessToken: aws.String(access)}); err != nil {
		t.Fatal(err)
	}
	s.Stop() // waits for the hooks running
	close(heard)
	checkHeard(t, heard, subs, up.ID)
}

// checkHeard: the front reported ada's AdminDeleteUser and bob's own
// DeleteUser once each, of the pool poolID, and nothing else.
func checkHeard(t *testing.T, heard <-chan UserDeleted, subs map[string]string, poolID string) {
	t.Helper()
	got := map[string][]UserDeleted{}
	for d := range heard {
		got[d.Sub] = append(got[d.Sub], d)
	}
	for name, event := range map[string]string{"ada@example.com": "AdminDeleteUser", "bob@example.com": "DeleteUser"} {
		ds := got[subs[name]]
		if len(ds) != 1 {
			t.Errorf("%s (sub %s): heard %d deletions %+v, want one", name, subs[name], len(ds), ds)
			continue
		}
		if ds[0].EventName != event {
			t.Errorf("%s: heard %s, want %s", name, ds[0].EventName, event)
		}
		if ds[0].PoolID != poolID {
			t.Errorf("%s: heard of pool %s, want %s", name, ds[0].PoolID, poolID)
		}
	}
	if len(got) != 2 {
		t.Errorf("heard of %d users, want 2: %v", len(got), got)
	}
}

func jwtClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err != nil || json.Unmarshal(raw, &claims) != nil {
		t.Fatalf("not a JWT: %.20s…", token)
	}
	return claims
}

// TestTriggerPermissionsFromTheDeployedTemplate: the Invoke API lets
// Cognito invoke PostConfirmationFunction for the template's pool only,
// as the PostConfirmationPermission's SourceArn says, and no service
// invoke what no permission names it for.
func TestTriggerPermissionsFromTheDeployedTemplate(t *testing.T) {
	tpl, err := samtemplate.Load(samtemplate.Path())
	if err != nil {
		t.Fatal(err)
	}
	perms, err := lambdaPermissions()
	if err != nil {
		t.Fatal(err)
	}
	s := &Stack{userPools: map[string]string{"UserPool": "local_Mine"}}
	cognito := processes.Caller{Principal: cognitoPrincipal}
	tests := []struct {
		name, function string
		caller         processes.Caller
		event          string
		want           bool
	}{
		{"the template's pool", "PostConfirmationFunction", cognito, `{"userPoolId":"local_Mine"}`, true},
		{"another pool", "PostConfirmationFunction", cognito, `{"userPoolId":"local_Other"}`, false},
		{"no pool", "PostConfirmationFunction", cognito, `{}`, false},
		{"the pool's ARN, said", "PostConfirmationFunction", processes.Caller{Principal: cognitoPrincipal, SourceARN: userPoolARN("local_Mine")}, `{}`, true},
		{"another service", "PostConfirmationFunction", processes.Caller{Principal: "events.amazonaws.com", SourceARN: userPoolARN("local_Mine")}, `{}`, false},
		{"a function Cognito may not invoke", "RetryFunction", cognito, `{"userPoolId":"local_Mine"}`, false},
		{"an API of another stack", "ApiFunction", processes.Caller{Principal: "apigateway.amazonaws.com", SourceARN: "arn:aws:execute-api:us-east-1:000000000000:other/$default/GET/users/me"}, `{}`, false},
	}
	for _, tt := range tests {
		if got := s.permits(tpl, perms, tt.function, tt.caller, []byte(tt.event)); got != tt.want {
			t.Errorf("%s: permits %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestArnLike(t *testing.T) {
	for _, tt := range []struct {
		pattern, arn string
		want         bool
	}{
		{"arn:aws:execute-api:us-east-1:1:api/*/GET/users/me", "arn:aws:execute-api:us-east-1:1:api/$default/GET/users/me", true},
		{"arn:aws:execute-api:us-east-1:1:api/*/GET/users/me", "arn:aws:execute-api:us-east-1:1:api/$default/POST/users/me", false},
		{"arn:aws:cognito-idp:us-east-1:1:userpool/p.1", "arn:aws:cognito-idp:us-east-1:1:userpool/px1", false},
		{"arn:aws:cognito-idp:us-east-1:1:userpool/p?1", "arn:aws:cognito-idp:us-east-1:1:userpool/px1", true},
	} {
		if got := arnLike(tt.pattern, tt.arn); got != tt.want {
			t.Errorf("arnLike(%s, %s) = %v", tt.pattern, tt.arn, got)
		}
	}
}
