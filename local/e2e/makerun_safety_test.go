package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/kandy-provisioner/kandy-provisioner/local/internal/slowclient"
)

// servers are make run's servers by port setting, as they name
// themselves in the log of refused requests.
var servers = map[string]string{
	"API_PORT": "http-api", "LAMBDA_PORT": "lambda", "AUTH_PORT": "cognito-local", "DYNAMODB_PORT": "dynalite",
	"KMS_PORT": "local-kms", "SQS_PORT": "goaws", "SECRETS_PORT": "secrets-manager", "KANDY_PORT": "kandy-simulator",
}

// attacks are issue 21's attacks, replayed by a page of another origin
// against a victim with an account: the calls the page makes and what
// each must get.
type attacks struct {
	run        *localRun
	calls      []pageCall
	want       map[string]string // by call: "error" (the browser refused it) or "opaque" (sent blind)
	victim     string            // sub
	access     string            // the victim's access token
	madeUp     string            // a sub no one signed up with
	before     int               // the simulator's users
	passwordBy string            // the password the page tries to give the victim
}

func newAttacks(t *testing.T, run *localRun) *attacks {
	a := &attacks{run: run, want: map[string]string{}, madeUp: newSub(), passwordBy: "Mallory-chose-this-1"}
	a.victim = run.signUp(t, "vic@example.com")
	a.access, _ = run.signIn(t, "vic@example.com")
	if status, _ := run.account(t, a.access); status != 200 {
		t.Fatalf("the victim has no account: %d", status)
	}
	a.before = run.simUsers(t)
	awsJSON := func(version, target string) map[string]string {
		return map[string]string{"Content-Type": "application/x-amz-json-" + version, "X-Amz-Target": target}
	}
	invoke := func(fn string) string { return run.url("LAMBDA_PORT") + "/2015-03-31/functions/" + fn + "/invocations" }
	key := fmt.Sprintf(`{"sub":{"S":%q}}`, a.victim)
	a.add("error", pageCall{Name: "Cognito ListUsers", URL: run.url("AUTH_PORT") + "/", Method: "POST",
		Headers: awsJSON("1.1", "AWSCognitoIdentityProviderService.ListUsers"), Body: fmt.Sprintf(`{"UserPoolId":%q}`, run.poolID)})
	a.add("error", pageCall{Name: "Cognito AdminSetUserPassword", URL: run.url("AUTH_PORT") + "/", Method: "POST",
		Headers: awsJSON("1.1", "AWSCognitoIdentityProviderService.AdminSetUserPassword"),
		Body:    fmt.Sprintf(`{"UserPoolId":%q,"Username":"vic@example.com","Password":%q,"Permanent":true}`, run.poolID, a.passwordBy)})
	a.add("opaque", pageCall{Name: "Invoke ApiFunction: DELETE /users/me", URL: invoke("ApiFunction"), Method: "POST", Mode: "no-cors",
		Headers: map[string]string{"Content-Type": "text/plain"}, Body: string(mustJSON(t, loadEvent(t, "delete-user.json", a.victim)))})
	a.add("opaque", pageCall{Name: "Invoke PostConfirmationFunction: a made-up sign-up", URL: invoke("PostConfirmationFunction"), Method: "POST", Mode: "no-cors",
		Headers: map[string]string{"Content-Type": "text/plain"}, Body: string(mustJSON(t, loadEvent(t, "post-confirmation-signup.json", a.madeUp)))})
	a.add("error", pageCall{Name: "DynamoDB Scan", URL: run.url("DYNAMODB_PORT") + "/", Method: "POST",
		Headers: awsJSON("1.0", "DynamoDB_20120810.Scan"), Body: `{"TableName":"kandy-accounts"}`})
	a.add("error", pageCall{Name: "DynamoDB UpdateItem", URL: run.url("DYNAMODB_PORT") + "/", Method: "POST",
		Headers: awsJSON("1.0", "DynamoDB_20120810.UpdateItem"),
		Body:    `{"TableName":"kandy-accounts","Key":` + key + `,"UpdateExpression":"SET user_id = :u","ExpressionAttributeValues":{":u":{"S":"umallory"}}}`})
	a.add("opaque", pageCall{Name: "simulator outage", URL: run.url("KANDY_PORT") + "/_sim/outage", Method: "POST", Mode: "no-cors"})
	a.add("error", pageCall{Name: "simulator state", URL: run.url("KANDY_PORT") + "/_sim", Method: "GET"})
	a.add("error", pageCall{Name: "KMS ListKeys", URL: run.url("KMS_PORT") + "/", Method: "POST", Headers: awsJSON("1.1", "TrentService.ListKeys"), Body: "{}"})
	a.add("error", pageCall{Name: "SQS ListQueues", URL: run.url("SQS_PORT") + "/", Method: "POST", Headers: awsJSON("1.0", "AmazonSQS.ListQueues"), Body: "{}"})
	a.add("error", pageCall{Name: "Secrets Manager GetSecretValue", URL: run.url("SECRETS_PORT") + "/", Method: "POST",
		Headers: awsJSON("1.1", "secretsmanager.GetSecretValue"), Body: `{"SecretId":"kandy-project"}`})
	return a
}

func (a *attacks) add(want string, c pageCall) {
	a.calls = append(a.calls, c)
	a.want[c.Name] = want
}

// check: each attack got what it must, changed nothing, and every server
// logged refusing the page's origin.
func (a *attacks) check(t *testing.T, saw map[string]string, origin string) {
	for name, want := range a.want {
		if got := saw[name]; !strings.HasPrefix(got, want) {
			t.Errorf("attack %q from another origin saw %q, want %s", name, got, want)
		}
	}
	run := a.run
	run.wantAccount(t, "the victim's account after the attacks", a.access, kandyUserID(a.victim))
	if _, err := run.cognito.InitiateAuth(context.Background(), &cip.InitiateAuthInput{ClientId: aws.String(run.clientID),
		AuthFlow: types.AuthFlowTypeUserPasswordAuth, AuthParameters: map[string]string{"USERNAME": "vic@example.com", "PASSWORD": a.passwordBy}}); err == nil {
		t.Error("the victim signs in with the password the page set")
	}
	run.signIn(t, "vic@example.com")
	if after := run.simUsers(t); after != a.before {
		t.Errorf("Kandy users went from %d to %d during the attacks", a.before, after)
	}
	resp, err := run.http.Get(run.url("KANDY_PORT") + "/_sim")
	if err != nil {
		t.Fatal(err)
	}
	state, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(state), `"healthy":true`) {
		t.Errorf("the simulator after the attacks: %s", state)
	}
	for setting, name := range servers {
		if !refusedInLog(run.output(), name, origin) {
			t.Errorf("%s (%s) logged no refusal of %s", name, setting, origin)
		}
	}
}

// refusedInLog: make run logged that server refused a request from origin.
func refusedInLog(log, server, origin string) bool {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `msg="refused a request" server=`+server+" ") && strings.Contains(line, origin) {
			return true
		}
	}
	return false
}

// foreignHosts: every server refuses a request whose Host is not a
// loopback name, and serves the same request under each loopback name.
func foreignHosts(t *testing.T, run *localRun) {
	client := &http.Client{Timeout: 10 * time.Second}
	for setting, name := range servers {
		port := fmt.Sprint(run.ports[setting])
		for host, refused := range map[string]bool{
			"evil.example:" + port: true, "127.0.0.1.nip.io:" + port: true, "localhost.evil.example:" + port: true,
			"127.0.0.1:" + port: false, "localhost:" + port: false, "[::1]:" + port: false,
		} {
			req, _ := http.NewRequest(http.MethodPost, run.url(setting)+"/", strings.NewReader("{}"))
			req.Host = host
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("%s, Host %s: %v", name, host, err)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			gotRefused := resp.StatusCode == http.StatusForbidden && strings.Contains(string(body), "refused: Host")
			if gotRefused != refused {
				t.Errorf("%s, Host %s: %d %s; want refused %v", name, host, resp.StatusCode, body, refused)
			}
		}
	}
}

// chosenSub: no caller chooses a user's sub. Mallory's SignUp with Bob's
// sub fails as Cognito fails it, and so does every other write of sub,
// by a client or an administrator.
func chosenSub(t *testing.T, run *localRun) {
	ctx := context.Background()
	bob := run.signUp(t, "bob@example.com")
	access, _ := run.signIn(t, "bob@example.com")
	sub := []types.AttributeType{{Name: aws.String("sub"), Value: aws.String(bob)}}
	withEmail := func(email string) []types.AttributeType {
		return append([]types.AttributeType{{Name: aws.String("email"), Value: aws.String(email)}}, sub...)
	}
	another := []types.AttributeType{{Name: aws.String("sub"), Value: aws.String(newSub())}}
	_, signUp := run.cognito.SignUp(ctx, &cip.SignUpInput{ClientId: aws.String(run.clientID), Username: aws.String("mallory@example.com"),
		Password: aws.String(testPassword), UserAttributes: withEmail("mallory@example.com")})
	_, create := run.cognito.AdminCreateUser(ctx, &cip.AdminCreateUserInput{UserPoolId: aws.String(run.poolID), Username: aws.String("mallory2@example.com"),
		UserAttributes: withEmail("mallory2@example.com"), MessageAction: types.MessageActionTypeSuppress})
	_, update := run.cognito.UpdateUserAttributes(ctx, &cip.UpdateUserAttributesInput{AccessToken: aws.String(access), UserAttributes: another})
	_, adminUpdate := run.cognito.AdminUpdateUserAttributes(ctx, &cip.AdminUpdateUserAttributesInput{UserPoolId: aws.String(run.poolID),
		Username: aws.String("bob@example.com"), UserAttributes: another})
	for op, err := range map[string]error{"SignUp": signUp, "AdminCreateUser": create, "UpdateUserAttributes": update, "AdminUpdateUserAttributes": adminUpdate} {
		var invalid *types.InvalidParameterException
		if !errors.As(err, &invalid) {
			t.Errorf("%s with a sub: %v, want Cognito's InvalidParameterException", op, err)
		} else if msg, want := aws.ToString(invalid.Message), "Cannot modify the non-mutable attribute sub"; msg != want {
			t.Errorf("%s with a sub: message %q, want %q", op, msg, want)
		}
	}
	for _, name := range []string{"mallory@example.com", "mallory2@example.com"} {
		var missing *types.UserNotFoundException
		if _, err := run.cognito.AdminGetUser(ctx, &cip.AdminGetUserInput{UserPoolId: aws.String(run.poolID), Username: aws.String(name)}); !errors.As(err, &missing) {
			t.Errorf("%s exists after a refused sign-up: %v", name, err)
		}
	}
	run.wantAccount(t, "Bob's account", access, kandyUserID(bob))
}

// otherPoolsTrigger: a second pool in the local Cognito fires the
// trigger too (cognito-local's triggers are for every pool), but the
// Invoke API refuses the invocation, as PostConfirmationPermission's
// SourceArn makes Lambda refuse it: no Kandy user for that pool's user.
func otherPoolsTrigger(t *testing.T, run *localRun) {
	ctx := context.Background()
	pool, err := run.cognito.CreateUserPool(ctx, &cip.CreateUserPoolInput{PoolName: aws.String("Intruder"),
		UsernameAttributes: []types.UsernameAttributeType{types.UsernameAttributeTypeEmail}})
	if err != nil {
		t.Fatal(err)
	}
	client, err := run.cognito.CreateUserPoolClient(ctx, &cip.CreateUserPoolClientInput{UserPoolId: pool.UserPool.Id, ClientName: aws.String("intruder")})
	if err != nil {
		t.Fatal(err)
	}
	before := run.simUsers(t)
	out, err := run.cognito.SignUp(ctx, &cip.SignUpInput{ClientId: client.UserPoolClient.ClientId, Username: aws.String("eve@example.com"),
		Password: aws.String(testPassword), UserAttributes: []types.AttributeType{{Name: aws.String("email"), Value: aws.String("eve@example.com")}}})
	if err != nil {
		t.Fatal(err)
	}
	// cognito-local logs a failed post-confirmation trigger and confirms
	// the user all the same.
	if _, err := run.cognito.AdminConfirmSignUp(ctx, &cip.AdminConfirmSignUpInput{UserPoolId: pool.UserPool.Id, Username: aws.String("eve@example.com")}); err != nil {
		t.Fatal(err)
	}
	if after := run.simUsers(t); after != before {
		t.Errorf("Kandy users went from %d to %d: the trigger provisioned another pool's user", before, after)
	}
	if strings.Contains(run.output(), aws.ToString(out.UserSub)) {
		t.Errorf("the trigger ran for another pool's user %s", aws.ToString(out.UserSub))
	}
	refused := regexp.MustCompile(`lambda: invocation refused by the function's permissions" function=PostConfirmationFunction principal=cognito-idp.amazonaws.com`)
	if !refused.MatchString(run.output()) {
		t.Errorf("make run logged no refused invocation for pool %s (user %s)", aws.ToString(pool.UserPool.Id), aws.ToString(out.UserSub))
	}
}

// slowBodies are requests to every server whose body comes a byte every
// 2 s, started at once so they run beside the other checks.
type slowBodies struct {
	wg   sync.WaitGroup
	took map[string]time.Duration // by server; how long its connection lasted
	errs map[string]error
	mu   sync.Mutex
}

// slowBodyLimit is the longest read timeout of make run's servers
// (the guard's: 30 s), with room for a busy machine.
const slowBodyLimit = 40 * time.Second

func startSlowBodies(run *localRun) *slowBodies {
	s := &slowBodies{took: map[string]time.Duration{}, errs: map[string]error{}}
	for setting, name := range servers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			addr := "127.0.0.1:" + fmt.Sprint(run.ports[setting])
			took, err := slowclient.Trickle(addr, "POST /users HTTP/1.1\r\nHost: "+addr+"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", 2*time.Second, slowBodyLimit+20*time.Second)
			s.mu.Lock()
			s.took[name], s.errs[name] = took, err
			s.mu.Unlock()
		}()
	}
	return s
}

// check: each server cut its slow body within its read timeout, and
// serves on: a body cut short never reached a server behind a front
// (dynalite dies of one).
func (s *slowBodies) check(t *testing.T, run *localRun) {
	s.wg.Wait()
	for name, took := range s.took {
		switch err := s.errs[name]; {
		case err != nil:
			t.Errorf("%s: %v", name, err)
		case took > slowBodyLimit:
			t.Errorf("%s held a slow body's connection for %v", name, took)
		}
	}
	fmt.Printf("make run slow bodies (a byte every 2 s): connections cut after %v\n", s.took)
	select {
	case <-run.done:
		t.Fatalf("make run exited:\n%s", run.output())
	default:
	}
	for setting, name := range servers {
		resp, err := run.http.Post(run.url(setting)+"/", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Errorf("%s after the slow bodies: %v", name, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusBadGateway {
			t.Errorf("%s after the slow bodies: 502, the server behind is gone", name)
		}
	}
}
