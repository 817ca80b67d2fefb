package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/kandy-provisioner/kandy-provisioner/local/internal/listeners"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
)

// rebound is a name Chromium resolves to 127.0.0.1 in the attack: a page
// of an attacker whose DNS answer changed to this machine.
const rebound = "rebound.attacker.test"

// TestAWebPageReachesNothingOfMakeRun: a page of another loopback origin,
// open in Chromium while make run runs, finds every port make run's
// process tree listens on (read from /proc, not from a list) and sends
// each what a page can: a no-cors text/plain POST of a forged Lambda
// event to Lambda's invoke paths, a form POST, a no-cors GET of the
// Runtime API's next invocation, and the same under a rebound name. Then
// the four shapes that once wrote a chosen sub, and a page of
// localhost:3000 with the API moved. Nothing changes: the simulator, the
// pool, the table, the execution environments; and the next real request
// is answered as before.
func TestAWebPageReachesNothingOfMakeRun(t *testing.T) {
	run := startLocalRun(t, freePorts(t), "KANDY_QUOTA=100")
	victim := run.signUp(t, "victim@example.com")
	access, _ := run.signIn(t, "victim@example.com")
	run.wantAccount(t, "the victim's account before", access, kandyUserID(victim))
	before := attackSnapshot(t, run)
	ports := treePorts(t, run)
	if len(ports) < len(portSettings)+1 {
		t.Fatalf("make run listens on %v; want its %d documented ports and the Runtime API's", ports, len(portSettings))
	}
	page := startAttackPage(t)
	saw := browseWith(t, []string{"--host-resolver-rules=MAP " + rebound + " 127.0.0.1"}, map[string][]pageCall{
		page.URL: attackCalls(t, "127.0.0.1", ports, victim),
		"http://" + rebound + ":" + portOf(page.URL): attackCalls(t, rebound, ports, victim),
	})
	if len(saw) != 2 {
		t.Fatalf("the attack pages reported %d of 2: %v", len(saw), saw)
	}
	for origin, calls := range saw {
		for name, got := range calls {
			if strings.HasPrefix(got, "status 2") {
				t.Errorf("from %s, %s was answered: %.200s", origin, name, got)
			}
		}
	}
	t.Run("the shapes that wrote a chosen sub", func(t *testing.T) { chosenSubShapes(t, run, victim) })
	t.Run("localhost:3000 with the API moved", func(t *testing.T) { templateOriginRefused(t, run) })
	after := attackSnapshot(t, run)
	if diff := before.diff(after); diff != "" {
		t.Errorf("the attacks changed make run: %s", diff)
	}
	start := time.Now()
	run.wantAccount(t, "the victim's account after", access, kandyUserID(victim))
	if status, _ := run.loginToken(t, access); status != http.StatusOK {
		t.Errorf("the victim's login token after the attacks: %d", status)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the next real requests took %v", took)
	}
	fmt.Printf("attack page: %d ports of make run's tree %v, %d calls each from 2 origins, nothing reached\n",
		len(ports), ports, len(attackCalls(t, "127.0.0.1", ports[:1], victim)))
}

// processTree is pid and every process under it.
func processTree(t *testing.T, pid int) []int {
	t.Helper()
	tree, err := listeners.Tree(pid)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// treePorts are the TCP ports make run's process tree listens on.
func treePorts(t *testing.T, run *localRun) []int {
	t.Helper()
	ports, err := listeners.TCPPorts(processTree(t, run.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// startAttackPage serves planPage on a loopback origin of its own.
func startAttackPage(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, planPage)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func portOf(url string) string { return url[strings.LastIndex(url, ":")+1:] }

// attackCalls are what the page sends each port, under host.
func attackCalls(t *testing.T, host string, ports []int, victim string) []pageCall {
	t.Helper()
	forged := string(mustJSON(t, loadEvent(t, "delete-user.json", victim)))
	signUp := string(mustJSON(t, loadEvent(t, "post-confirmation-signup.json", newSub())))
	var calls []pageCall
	for _, p := range ports {
		base := "http://" + host + ":" + strconv.Itoa(p)
		name := func(what string) string { return fmt.Sprintf("%s:%d %s", host, p, what) }
		text := map[string]string{"Content-Type": "text/plain"}
		calls = append(calls,
			pageCall{Name: name("invoke ApiFunction"), URL: base + "/2015-03-31/functions/ApiFunction/invocations", Method: "POST", Mode: "no-cors", Headers: text, Body: forged},
			pageCall{Name: name("invoke the trigger"), URL: base + "/2015-03-31/functions/PostConfirmationFunction/invocations", Method: "POST", Mode: "no-cors", Headers: text, Body: signUp},
			pageCall{Name: name("invoke the emulator's path"), URL: base + "/2015-03-31/functions/function/invocations", Method: "POST", Mode: "no-cors", Headers: text, Body: forged},
			pageCall{Name: name("the next invocation"), URL: base + "/2018-06-01/runtime/invocation/next", Method: "GET", Mode: "no-cors"},
			pageCall{Name: name("a form POST"), URL: base + "/", Method: "POST", Form: map[string]string{"event": forged}},
			pageCall{Name: name("a read"), URL: base + "/_sim", Method: "GET"},
		)
	}
	return calls
}

// runState is what an attack could change.
type runState struct {
	kandy     string   // the simulator's state
	poolUsers int      // the pool's users
	records   string   // the table's items
	sandboxes []string // the execution environments' pids
}

func attackSnapshot(t *testing.T, run *localRun) runState {
	t.Helper()
	ctx := context.Background()
	var s runState
	resp, err := run.http.Get(run.url("KANDY_PORT") + "/_sim")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	s.kandy = string(bytes.TrimSpace(b))
	users, err := run.cognito.ListUsers(ctx, &cip.ListUsersInput{UserPoolId: aws.String(run.poolID)})
	if err != nil {
		t.Fatal(err)
	}
	s.poolUsers = len(users.Users)
	items, err := processes.DynamoDB(run.url("DYNAMODB_PORT")).Scan(ctx, &dynamodb.ScanInput{TableName: aws.String("kandy-accounts")})
	if err != nil {
		t.Fatal(err)
	}
	// Each record by its sub, status and generation: enough to see any
	// write, and no credential in a failure's message.
	var records []struct {
		Sub        string `dynamodbav:"sub"`
		Status     string `dynamodbav:"status"`
		Generation string `dynamodbav:"claim_token"`
		Updated    string `dynamodbav:"updated_at"`
	}
	if err := attributevalue.UnmarshalListOfMaps(items.Items, &records); err != nil {
		t.Fatal(err)
	}
	s.records = fmt.Sprintf("%+v", records)
	s.sandboxes = sandboxes(t, run)
	return s
}

// sandboxes are the pids of make run's running bootstrap processes.
func sandboxes(t *testing.T, run *localRun) []string {
	t.Helper()
	var out []string
	for _, pid := range processTree(t, run.cmd.Process.Pid) {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err == nil && filepath.Base(exe) == "bootstrap" {
			out = append(out, strconv.Itoa(pid)+" "+filepath.Base(filepath.Dir(exe)))
		}
	}
	slices.Sort(out)
	return out
}

func (s runState) diff(o runState) string {
	var d []string
	if s.kandy != o.kandy {
		d = append(d, fmt.Sprintf("the simulator went from %s to %s", s.kandy, o.kandy))
	}
	if s.poolUsers != o.poolUsers {
		d = append(d, fmt.Sprintf("the pool went from %d users to %d", s.poolUsers, o.poolUsers))
	}
	if s.records != o.records {
		d = append(d, fmt.Sprintf("the table went from %s to %s", s.records, o.records))
	}
	if !slices.Equal(s.sandboxes, o.sandboxes) {
		d = append(d, fmt.Sprintf("the execution environments went from %v to %v", s.sandboxes, o.sandboxes))
	}
	return strings.Join(d, "; ")
}

// chosenSubShapes: the four ways a call once stored a chosen sub, sent as
// any program on this machine could, are each refused, and create no user.
func chosenSubShapes(t *testing.T, run *localRun, victim string) {
	sub := fmt.Sprintf(`{"Name":"sub","Value":%q}`, victim)
	signUp := func(email, attrs string) string {
		return fmt.Sprintf(`{"ClientId":%q,"Username":%q,"Password":%q,"UserAttributes":%s}`, run.clientID, email, testPassword, attrs)
	}
	for _, c := range []struct{ name, target, body, email string }{
		{"a prefixed target", "Foo.SignUp", signUp("m1@example.com", "["+sub+"]"), "m1@example.com"},
		{"a second key in another case", "AWSCognitoIdentityProviderService.SignUp",
			strings.TrimSuffix(signUp("m2@example.com", "[]"), "}") + `,"userAttributes":[` + sub + `]}`, "m2@example.com"},
		{"an attribute with a second name", "AWSCognitoIdentityProviderService.SignUp",
			signUp("m3@example.com", fmt.Sprintf(`[{"Name":"sub","name":"email","Value":%q}]`, victim)), "m3@example.com"},
		{"a type error elsewhere", "AWSCognitoIdentityProviderService.SignUp",
			strings.TrimSuffix(signUp("m4@example.com", "["+sub+"]"), "}") + `,"AccessToken":1}`, "m4@example.com"},
		{"a prefixed AdminCreateUser", "Evil.AdminCreateUser",
			fmt.Sprintf(`{"UserPoolId":%q,"Username":"m5@example.com","UserAttributes":[%s]}`, run.poolID, sub), "m5@example.com"},
	} {
		req, _ := http.NewRequest(http.MethodPost, run.url("AUTH_PORT")+"/", strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", c.target)
		resp, err := run.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", c.name, resp.StatusCode, body)
		}
		if _, err := run.cognito.AdminGetUser(context.Background(), &cip.AdminGetUserInput{UserPoolId: aws.String(run.poolID),
			Username: aws.String(c.email)}); err == nil {
			t.Errorf("%s: %s exists", c.name, c.email)
		}
	}
}

// templateOriginRefused: with the API off port 3000, a page of
// http://localhost:3000 (whatever runs there) is no allowed origin: the
// API and Cognito refuse it as any other.
func templateOriginRefused(t *testing.T, run *localRun) {
	if run.ports["API_PORT"] == 3000 {
		t.Fatal("the API is on port 3000; the check needs it moved")
	}
	for setting, target := range map[string]string{"API_PORT": "", "AUTH_PORT": "AWSCognitoIdentityProviderService.ListUsers"} {
		req, _ := http.NewRequest(http.MethodPost, run.url(setting)+"/", strings.NewReader(fmt.Sprintf(`{"UserPoolId":%q}`, run.poolID)))
		req.Header.Set("Origin", "http://localhost:3000")
		req.Header.Set("Sec-Fetch-Site", "same-site")
		req.Header.Set("Sec-Fetch-Mode", "cors")
		req.Header.Set("X-Amz-Target", target)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		resp, err := run.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s from http://localhost:3000: %d, want 403", setting, resp.StatusCode)
		}
	}
}
