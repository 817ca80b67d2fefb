package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/kandy-provisioner/kandy-provisioner/api/apiclient"
	"github.com/kandy-provisioner/kandy-provisioner/local/localrun"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
)

// portSettings are make run's port variables.
var portSettings = []string{"API_PORT", "AUTH_PORT", "LAMBDA_PORT", "SQS_PORT", "KANDY_PORT", "SECRETS_PORT", "DYNAMODB_PORT", "KMS_PORT"}

// testPassword meets the template's password policy.
const testPassword = "Test-passw0rd-local"

// localRun is make run on free ports of its own, so it runs beside the
// walkthrough's, and a client of its Cognito API.
type localRun struct {
	*makeRun
	ports            map[string]int
	cognito          *cip.Client
	poolID, clientID string
	http             *http.Client
}

// freePorts picks ports that are free now, below the kernel's ephemeral
// range: make run binds them seconds later, after its build, and in the
// meantime no outgoing connection or other server on port 0 can take them.
func freePorts(t *testing.T) map[string]int {
	t.Helper()
	ports := map[string]int{}
	taken := map[int]bool{}
	for _, name := range portSettings {
		for tries := 0; ; tries++ {
			p := 20000 + rand.IntN(12000)
			if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil && !taken[p] {
				l.Close()
				ports[name], taken[p] = p, true
				break
			}
			if tries == 100 {
				t.Fatal("no free port below the ephemeral range")
			}
		}
	}
	return ports
}

// startLocalRun starts make run on ports with extra environment.
func startLocalRun(t *testing.T, ports map[string]int, extra ...string) *localRun {
	t.Helper()
	env := append([]string(nil), extra...)
	for name, p := range ports {
		env = append(env, name+"="+strconv.Itoa(p))
	}
	r := &localRun{makeRun: startMakeRun(t, env...), ports: ports, http: &http.Client{Timeout: 30 * time.Second}}
	r.cognito = processes.Cognito(r.url("AUTH_PORT"))
	var err error
	if r.poolID, r.clientID, err = localrun.FindUserPool(context.Background(), r.cognito); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *localRun) url(setting string) string {
	return "http://127.0.0.1:" + strconv.Itoa(r.ports[setting])
}

// signUp signs email up and confirms it with the code the pool sent, as a
// frontend does, and returns its sub.
func (r *localRun) signUp(t *testing.T, email string) string {
	t.Helper()
	ctx := context.Background()
	out, err := r.cognito.SignUp(ctx, &cip.SignUpInput{ClientId: aws.String(r.clientID), Username: aws.String(email),
		Password: aws.String(testPassword), UserAttributes: []types.AttributeType{{Name: aws.String("email"), Value: aws.String(email)}}})
	if err != nil {
		t.Fatalf("SignUp %s: %v", email, err)
	}
	code := r.confirmationCode(t, email)
	if _, err := r.cognito.ConfirmSignUp(ctx, &cip.ConfirmSignUpInput{ClientId: aws.String(r.clientID), Username: aws.String(email),
		ConfirmationCode: aws.String(code)}); err != nil {
		t.Fatalf("ConfirmSignUp %s: %v", email, err)
	}
	return aws.ToString(out.UserSub)
}

// signIn returns the user's access and ID tokens (USER_PASSWORD_AUTH).
func (r *localRun) signIn(t *testing.T, email string) (access, id string) {
	t.Helper()
	out, err := r.cognito.InitiateAuth(context.Background(), &cip.InitiateAuthInput{ClientId: aws.String(r.clientID),
		AuthFlow: types.AuthFlowTypeUserPasswordAuth, AuthParameters: map[string]string{"USERNAME": email, "PASSWORD": testPassword}})
	if err != nil || out.AuthenticationResult == nil {
		t.Fatalf("InitiateAuth %s: %v", email, err)
	}
	return aws.ToString(out.AuthenticationResult.AccessToken), aws.ToString(out.AuthenticationResult.IdToken)
}

// simUsers is how many users the Kandy simulator holds.
func (r *localRun) simUsers(t *testing.T) int {
	t.Helper()
	resp, err := r.http.Get(r.url("KANDY_PORT") + "/_sim")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var state struct{ Users int }
	if err := json.NewDecoder(resp.Body).Decode(&state); err != nil {
		t.Fatal(err)
	}
	return state.Users
}

// invoke calls the Lambda endpoint as `aws lambda invoke` does.
func (r *localRun) invoke(t *testing.T, function, payload string) (*http.Response, string) {
	t.Helper()
	resp, err := r.http.Post(r.url("LAMBDA_PORT")+"/2015-03-31/functions/"+function+"/invocations", "application/json", strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// kandyUserID is the Kandy user id of a Cognito sub (see pkg/userid).
func kandyUserID(sub string) string { return "u" + strings.ReplaceAll(sub, "-", "") }

// TestMakeRunLikeTheDeployedStack runs make run as a frontend would use
// it: a Cognito client, overlapping requests, sign-ups at once, a page on
// an allowed origin; and as an attacker would: a page on another origin,
// a chosen sub, foreign hosts, another user pool, slow bodies. It checks
// what make run exposes and what its functions see.
func TestMakeRunLikeTheDeployedStack(t *testing.T) {
	pages := startCORSPages(t)
	run := startLocalRun(t, freePorts(t), "KANDY_QUOTA=100", "CORS_ALLOWED_ORIGINS="+pages.allowed.URL,
		"AWS_PROFILE=leak", "AWS_SESSION_TOKEN=leak", "SECRET_SHELL_VAR=leak")
	slow := startSlowBodies(run)
	t.Run("scripted Cognito client", func(t *testing.T) { scriptedClient(t, run) })
	t.Run("50 parallel requests", func(t *testing.T) { parallelRequests(t, run) })
	t.Run("20 parallel sign-ups", func(t *testing.T) { parallelSignUps(t, run) })
	t.Run("CORS and attacks from another origin", func(t *testing.T) { corsFromOtherOrigins(t, run, pages) })
	t.Run("no chosen sub", func(t *testing.T) { chosenSub(t, run) })
	t.Run("foreign hosts refused", func(t *testing.T) { foreignHosts(t, run) })
	t.Run("another pool's trigger refused", func(t *testing.T) { otherPoolsTrigger(t, run) })
	t.Run("Lambda Invoke API", func(t *testing.T) { lambdaEndpoint(t, run) })
	t.Run("leaving the pool deprovisions", func(t *testing.T) { leavingThePool(t, run) })
	t.Run("loopback only", func(t *testing.T) { loopbackOnly(t, run) })
	t.Run("clean environment", func(t *testing.T) { cleanEnvironment(t, run) })
	t.Run("make signup", func(t *testing.T) { makeSignUp(t, run) })
	t.Run("banner", func(t *testing.T) { bannerAddresses(t, run) })
	t.Run("OpenAPI description", func(t *testing.T) { servedDescription(t, run) })
	t.Run("slow bodies cut", func(t *testing.T) { slow.check(t, run) })
	for _, bad := range []string{"emulator exited", "api: invoke failed", "lambda: invoke failed", "provisioning failed", "api: contract violation", "front: proxying failed"} {
		if strings.Contains(run.output(), bad) {
			t.Errorf("make run logged %q:\n%s", bad, run.output())
		}
	}
	t.Run("contract checked", func(t *testing.T) { contractCheckedLive(t, run) })
}

// scriptedClient: SignUp, ConfirmSignUp with the emailed code,
// InitiateAuth, then the API with the access token; an ID token lacks the
// routes' scope.
func scriptedClient(t *testing.T, run *localRun) {
	sub := run.signUp(t, "sam@example.com")
	access, id := run.signIn(t, "sam@example.com")
	if !run.wantAccount(t, "after sign-up", access, kandyUserID(sub)) {
		t.FailNow()
	}
	status, token := run.loginToken(t, access)
	if status != 200 {
		t.Errorf("POST /users/me/token: status %d, want 200", status)
	}
	if !strings.HasPrefix(token, "UAT") {
		t.Errorf("POST /users/me/token: token %.3q…, want the prefix UAT", token)
	}
	resp, err := run.client(t, id).GetUserWithResponse(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if resp.JSON403 == nil {
		t.Fatalf("an ID token: %d %s, want 403 (no aws.cognito.signin.user.admin scope)", resp.StatusCode(), resp.Body)
	}
	if resp.JSON403.Message != apiclient.GatewayErrorMessageForbidden {
		t.Errorf("an ID token: message %q, want %q", resp.JSON403.Message, apiclient.GatewayErrorMessageForbidden)
	}
	// No route matches an unclean path; nothing redirects to one that
	// does. Not an operation of the API: a plain request.
	req, _ := http.NewRequest("GET", run.url("API_PORT")+"//users/me", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	raw, err := run.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(raw.Body).Decode(&body)
	// As API Gateway answers.
	if raw.StatusCode != 404 {
		t.Errorf("GET //users/me: status %d, want 404: %v", raw.StatusCode, body)
	}
	if body["message"] != "Not Found" {
		t.Errorf("GET //users/me: message %v, want Not Found", body["message"])
	}
}

// bannerAddresses: the simulator's control URL in the banner answers, and
// the outage commands carry this run's port.
func bannerAddresses(t *testing.T, run *localRun) {
	m := regexp.MustCompile(`local control: (http://\S+/_sim) \(state\), make kandy-down KANDY_PORT=(\d+)`).FindStringSubmatch(run.output())
	if m == nil {
		t.Fatalf("no control URL and kandy-down command in the banner:\n%s", run.output())
	}
	if want := strconv.Itoa(run.ports["KANDY_PORT"]); m[2] != want {
		t.Errorf("banner: KANDY_PORT=%s, want %s", m[2], want)
	}
	resp, err := run.http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET %s: %d", m[1], resp.StatusCode)
	}
}

// makeSignUp: make signup takes its name from the command line only, and
// passes it on as given, quotes and all.
func makeSignUp(t *testing.T, run *localRun) {
	makeTarget := func(args ...string) (string, error) {
		cmd := exec.Command("make", append([]string{"-s", "AUTH_PORT=" + strconv.Itoa(run.ports["AUTH_PORT"])}, args...)...)
		cmd.Dir, cmd.Env = processes.RepoRoot(), append(userEnv(), "USER=someone")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, c := range []struct {
		what, says string
		args       []string
	}{
		{"make signup with USER only from the environment", "give a name: make signup USER=name", []string{"signup"}},
		{"make token USER=", "a user name is needed", []string{"token", "USER="}},
	} {
		out, err := makeTarget(c.args...)
		if err == nil {
			t.Errorf("%s succeeded, want a refusal: %s", c.what, out)
		}
		if !strings.Contains(out, c.says) {
			t.Errorf("%s: output lacks %q: %s", c.what, c.says, out)
		}
	}
	name := `o'brien"$HOME`
	out, err := makeTarget("signup", "USER="+name)
	var got struct {
		Username  string
		Confirmed bool
	}
	if err != nil {
		t.Fatalf("make signup USER=%s: %v %s", name, err, out)
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("make signup USER=%s: %v: %s", name, err, out)
	}
	// make token signs this user in: it needs both.
	if want := name + "@example.com"; got.Username != want {
		t.Fatalf("make signup USER=%s: username %q, want %q", name, got.Username, want)
	}
	if !got.Confirmed {
		t.Fatalf("make signup USER=%s: the user is not confirmed", name)
	}
	out, err = makeTarget("token", "USER="+name)
	if err != nil {
		t.Errorf("make token USER=%s: %v %s", name, err, out)
	}
	if dots := strings.Count(strings.TrimSpace(out), "."); dots != 2 {
		t.Errorf("make token USER=%s: %d dots, want 2 (a JWT): %s", name, dots, out)
	}
}

// burst makes n API calls at once, each request(i) a route, and counts
// the answers by route and status.
func burst(t *testing.T, run *localRun, token string, n int, request func(i int) (route string)) map[string]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			route := request(i)
			<-start
			status := run.call(t, token, route)
			mu.Lock()
			counts[fmt.Sprintf("%s %d", route, status)]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return counts
}

// refill waits for a route's throttling bucket to be full again: the
// template's burst of 50 at 20 requests a second.
func refill() { time.Sleep(2600 * time.Millisecond) }

// parallelRequests: 50 POST /users at once for a user with no account
// yet, then 50 GET /users/me and POST /users at once: never a 500, and
// one Kandy user.
func parallelRequests(t *testing.T, run *localRun) {
	sub := run.signUp(t, "max@example.com")
	access, _ := run.signIn(t, "max@example.com")
	if status := run.call(t, access, "DELETE /users/me"); status != 204 {
		t.Fatalf("DELETE /users/me: %d", status)
	}
	before := run.simUsers(t)
	refill()
	first := burst(t, run, access, 50, func(int) string { return "POST /users" })
	refill()
	mixed := burst(t, run, access, 50, func(i int) string {
		if i%2 == 0 {
			return "GET /users/me"
		}
		return "POST /users"
	})
	fmt.Printf("make run concurrency: 50 parallel POST /users on a new user: %v; then 50 parallel GET /users/me and POST /users: %v; Kandy users %d -> %d\n",
		first, mixed, before, run.simUsers(t))
	if n := first["POST /users 201"]; n != 1 {
		t.Errorf("50 parallel POST /users: %d answered 201, want one: %v", n, first)
	}
	if n := first["POST /users 201"] + first["POST /users 200"] + first["POST /users 409"]; n != 50 {
		t.Errorf("50 parallel POST /users: %d answered 201, 200 or 409, want all 50: %v", n, first)
	}
	for _, route := range []string{"GET /users/me", "POST /users"} {
		if n := mixed[route+" 200"]; n != 25 {
			t.Errorf("50 parallel GET /users/me and POST /users: %d %s answered 200, want 25: %v", n, route, mixed)
		}
	}
	if after := run.simUsers(t); after != before+1 {
		t.Errorf("Kandy users went from %d to %d, want one more", before, after)
	}
	run.wantAccount(t, "the account", access, kandyUserID(sub))
}

// parallelSignUps: 20 users sign up and confirm at once; each trigger
// creates the user's account, once.
func parallelSignUps(t *testing.T, run *localRun) {
	before := run.simUsers(t)
	subs := make([]string, 20)
	var wg sync.WaitGroup
	for i := range subs {
		wg.Add(1)
		go func() { defer wg.Done(); subs[i] = run.signUp(t, fmt.Sprintf("crowd%02d@example.com", i)) }()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// A trigger's log line reaches make run's output through the emulator's
	// pipe, a little after Cognito has its answer.
	var created, failed int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		created, failed = triggerOutcomes(run.output(), subs)
		if created+failed == len(subs) || time.Now().After(deadline) {
			break
		}
	}
	for i, sub := range subs {
		access, _ := run.signIn(t, fmt.Sprintf("crowd%02d@example.com", i))
		run.wantAccount(t, fmt.Sprintf("user %d", i), access, kandyUserID(sub))
	}
	after := run.simUsers(t)
	fmt.Printf("make run concurrency: 20 parallel sign-ups: %d triggers created an account, %d failed; Kandy users %d -> %d\n", created, failed, before, after)
	if created != 20 {
		t.Errorf("20 sign-ups: %d accounts created by the trigger, want 20", created)
	}
	if failed != 0 {
		t.Errorf("20 sign-ups: %d triggers failed, want none", failed)
	}
	if after != before+20 {
		t.Errorf("20 sign-ups: Kandy users %d -> %d, want 20 more", before, after)
	}
}

// triggerOutcomes counts, in make run's output, the subs whose trigger
// created an account and those whose trigger failed.
func triggerOutcomes(logs string, subs []string) (created, failed int) {
	for _, sub := range subs {
		for _, line := range strings.Split(logs, "\n") {
			switch {
			case !strings.Contains(line, sub):
			case strings.Contains(line, "post-confirmation: Kandy account created"):
				created++
			case strings.Contains(line, "provisioning failed"):
				failed++
			}
		}
	}
	return created, failed
}

// lambdaEndpoint: the Invoke API by name, as `aws lambda invoke` calls it;
// it also runs RetryFunction and DeprovisionFunction once, for the
// environment check.
func lambdaEndpoint(t *testing.T, run *localRun) {
	event := loadEvent(t, "get-user.json", newSub())
	// want reports an invocation's status and header where unwanted.
	want := func(what string, resp *http.Response, body string, status int, header, value string) {
		t.Helper()
		if resp.StatusCode != status {
			t.Errorf("%s: status %d, want %d: %s", what, resp.StatusCode, status, body)
		}
		if got := resp.Header.Get(header); got != value {
			t.Errorf("%s: %s %q, want %q: %s", what, header, got, value, body)
		}
	}
	resp, body := run.invoke(t, "ApiFunction", string(mustJSON(t, event)))
	if resp.StatusCode != 200 {
		t.Errorf("ApiFunction: status %d, want 200: %s", resp.StatusCode, body)
	}
	for _, s := range []string{`"statusCode":404`, "not_provisioned"} {
		if !strings.Contains(body, s) {
			t.Errorf("ApiFunction: answer lacks %s: %s", s, body)
		}
	}
	resp, body = run.invoke(t, "RetryFunction", `{"Records":[]}`)
	want("RetryFunction", resp, body, 200, "X-Amz-Function-Error", "")
	// A deletion of a user the service never knew changes nothing.
	resp, body = run.invoke(t, "DeprovisionFunction", string(mustJSON(t, loadEvent(t, "user-deleted-admin.json", newSub()))))
	want("DeprovisionFunction", resp, body, 200, "X-Amz-Function-Error", "")
	resp, body = run.invoke(t, "RetryFunction", `{"Records":"not a list"}`)
	want("a function error", resp, body, 200, "X-Amz-Function-Error", "Unhandled")
	resp, body = run.invoke(t, "NoSuchFunction", `{}`)
	want("an unknown function", resp, body, 404, "X-Amzn-ErrorType", "ResourceNotFoundException")
}
