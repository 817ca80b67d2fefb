package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/kandysim"
	"github.com/kandy-provisioner/kandy-provisioner/local/localrun"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
)

// ddbFault is a failure the DynamoDB proxy injects.
type ddbFault int

const (
	ddbThrottle       ddbFault = iota + 1 // 400 ThrottlingException
	ddbServerError                        // 500 InternalServerError
	ddbDropAfterWrite                     // the write is applied, then the connection drops
	ddbHang                               // never answers; the scenario kills the function
)

type ddbRule struct {
	op    string
	fault ddbFault
	left  int
}

// ddbProxy sits between the functions and dynalite and injects faults.
type ddbProxy struct {
	proxy    *httputil.ReverseProxy
	mu       sync.Mutex
	rules    []*ddbRule
	injected int
	hung     chan struct{}
}

func newDDBProxy(target string) *ddbProxy {
	u, _ := url.Parse(target)
	return &ddbProxy{proxy: httputil.NewSingleHostReverseProxy(u), hung: make(chan struct{}, 16)}
}

// opClaim names the store's claim, an UpdateItem, for the rules.
const opClaim = "UpdateItem(claim)"

func (p *ddbProxy) inject(op string, f ddbFault, n int) {
	p.mu.Lock()
	p.rules = append(p.rules, &ddbRule{op: op, fault: f, left: n})
	p.mu.Unlock()
}

func (p *ddbProxy) take(op string) ddbFault {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, r := range p.rules {
		if r.op == op {
			r.left--
			if r.left <= 0 {
				p.rules = append(p.rules[:i], p.rules[i+1:]...)
			}
			p.injected++
			return r.fault
		}
	}
	return 0
}

func (p *ddbProxy) count() int { p.mu.Lock(); defer p.mu.Unlock(); return p.injected }

func ddbError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":%q}`, typ, msg)
}

func (p *ddbProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	if op == "UpdateItem" {
		// The store's claim is an UpdateItem too; rules tell it apart from
		// the finalize.
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if bytes.Contains(body, []byte("if_not_exists")) {
			op = opClaim
		}
	}
	switch p.take(op) {
	case ddbThrottle:
		ddbError(w, http.StatusBadRequest, "ThrottlingException", "Rate of requests exceeds the allowed throughput.")
	case ddbServerError:
		ddbError(w, http.StatusInternalServerError, "InternalServerError", "Internal server error")
	case ddbDropAfterWrite:
		p.proxy.ServeHTTP(httptest.NewRecorder(), r)
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	case ddbHang:
		// The server notices a departed client only once the body is read;
		// the bound keeps a wedged client from blocking the server's Close.
		_, _ = io.Copy(io.Discard, r.Body)
		p.hung <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
	default:
		p.proxy.ServeHTTP(w, r)
	}
}

// faultStack is a stack of its own, so invariants can cover a whole table
// and a whole simulator: its own table, reached through a fault proxy, and
// its own simulator and secret.
type faultStack struct {
	sim   *localrun.Kandy
	wire  *kandyWire
	proxy *ddbProxy
	env   []string
	table string
}

func newFaultStack(t *testing.T) *faultStack {
	t.Helper()
	fs := &faultStack{table: fmt.Sprintf("faults-%d", subs.Add(1))}
	var err error
	if fs.sim, err = stack.NewKandy(0, 1000, nil); err != nil {
		t.Fatal(err)
	}
	sims = append(sims, fs.sim)
	if err := stack.CreateTable(context.Background(), fs.table); err != nil {
		t.Fatal(err)
	}
	tablesInUse = append(tablesInUse, fs.table)
	fs.proxy = newDDBProxy(stack.DynamoURL)
	proxySrv := httptest.NewServer(fs.proxy)
	t.Cleanup(proxySrv.Close)
	stack.Secrets.Put(secretID+"-"+fs.table, fs.sim.Secret)
	fs.wire = newKandyWire(fs.sim.Sim)
	fs.env = stack.Env("TABLE_NAME="+fs.table, "KANDY_SECRET_ID="+secretID+"-"+fs.table,
		"KANDY_API_URL="+serveWire(t, fs.wire)+"/v1.2", "AWS_ENDPOINT_URL_DYNAMODB="+proxySrv.URL)
	return fs
}

// start runs a function against this stack with the template's timeout,
// or another one in seconds.
func (fs *faultStack) start(t *testing.T, id string, timeout int) *processes.Function {
	t.Helper()
	env := fs.env
	if timeout > 0 {
		env = localrun.MergeEnv(env, "AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(timeout))
	}
	fn, err := stack.StartFunction(id, recordCalls(id, env))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fn.Stop)
	functionsStarted = append(functionsStarted, fn.Process)
	scenarioRan(t)
	return fn
}

// provision calls POST /users for sub until it is provisioned, as a client
// retrying on 409 and 5xx would, and returns how many calls it took.
func provisionUntilDone(t *testing.T, fn *processes.Function, sub string, patience time.Duration) int {
	t.Helper()
	user := asUser(t, fn, sub)
	deadline := time.Now().Add(patience)
	for calls := 1; ; calls++ {
		a, err := user.tryCreateUser()
		if err == nil && (a.StatusCode == 200 || a.StatusCode == 201) {
			return calls
		}
		if err == nil && a.StatusCode != 409 && a.StatusCode != 502 && a.StatusCode != 500 {
			t.Fatalf("POST /users for %s answered %d %s", sub, a.StatusCode, a.Body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not provisioned after %d calls in %v; last answer %d %s (%v)", sub, calls, patience, a.StatusCode, a.Body, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkInvariants asserts, over the whole table and the simulator: every
// sub has one ACTIVE record; every Kandy user, as Kandy lists them, has a
// record holding its credentials and vice versa; no tombstone keeps
// credentials; and the creates minus the deletes Kandy carried out,
// counted on the wire, equal the users Kandy lists. A PENDING record whose
// claim ended is evidence of a creation given up, which the next request
// recovers.
func (fs *faultStack) checkInvariants(t *testing.T, subs []string) {
	t.Helper()
	out, err := stack.DB.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(fs.table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	listed := listKandyUsers(t, fs.sim)
	unclaimed := map[string]bool{}
	for id := range listed {
		unclaimed[id] = true
	}
	active := map[string]bool{}
	for _, it := range out.Items {
		str := func(a string) string { v, _ := it[a].(*types.AttributeValueMemberS); return aws.ToString(&v.Value) }
		switch str("status") {
		case "ACTIVE":
			active[str("sub")] = true
			if issued, ok := fs.sim.User(str("user_id")); !ok {
				t.Errorf("record of %s: no Kandy user %s", str("sub"), str("user_id"))
			} else if issued.APIKey != str("user_api_key") {
				t.Errorf("record of %s does not hold its Kandy user's API key", str("sub"))
			}
			if !listed[str("user_id")] {
				t.Errorf("record of %s: Kandy does not list its user %s", str("sub"), str("user_id"))
			}
			delete(unclaimed, str("user_id"))
		case "DELETED":
			if _, ok := it["user_api_key"]; ok {
				t.Errorf("the tombstone of %s keeps credentials", str("sub"))
			}
		}
	}
	for _, s := range subs {
		if !active[s] {
			t.Errorf("%s has no ACTIVE account", s)
		}
	}
	for id := range unclaimed {
		t.Errorf("Kandy user %s has no stored credentials", id)
	}
	if c, d := fs.wire.counts(); c-d != len(listed) {
		t.Errorf("Kandy carried out %d creates and %d deletes, but lists %d users", c, d, len(listed))
	}
}

func TestFaultInjection(t *testing.T) {
	fs := newFaultStack(t)
	api := fs.start(t, "ApiFunction", 0)
	scenarios := []struct {
		name   string
		inject func()
	}{
		{"Kandy HTTP 500s", func() { fs.sim.Inject(kandysim.EndpointCreateUser, kandysim.FaultHTTP500, 3) }},
		{"Kandy time-out", func() { fs.sim.Inject(kandysim.EndpointCreateUser, kandysim.FaultTimeout, 1) }},
		{"Kandy malformed JSON", func() { fs.sim.Inject(kandysim.EndpointCreateUser, kandysim.FaultMalformed, 2) }},
		{"Kandy status 10 mid-run", func() { fs.sim.ExpireTokens() }},
		{"Kandy status 50 after a lost answer", func() { fs.wire.loseAnswers("create", 2) }},
		{"Kandy internal error (status 1)", func() { fs.sim.Inject("", kandysim.FaultInternal, 2) }},
		{"DynamoDB throttling", func() {
			fs.proxy.inject(opClaim, ddbThrottle, 2)
			fs.proxy.inject("UpdateItem", ddbThrottle, 2)
		}},
		{"DynamoDB 500s", func() {
			fs.proxy.inject("UpdateItem", ddbServerError, 2)
			fs.proxy.inject(opClaim, ddbServerError, 1)
		}},
		{"DynamoDB drops the connection after the write", func() {
			fs.proxy.inject(opClaim, ddbDropAfterWrite, 1)
			fs.proxy.inject("UpdateItem", ddbDropAfterWrite, 1)
		}},
	}
	var subs []string
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			kandyBefore, ddbBefore := fs.sim.Stats().FaultsInjected+fs.wire.answersLost(), fs.proxy.count()
			sc.inject()
			calls := 0
			for i := 0; i < 3; i++ {
				sub := newSub()
				subs = append(subs, sub)
				calls += provisionUntilDone(t, api, sub, 30*time.Second)
			}
			fs.checkInvariants(t, subs)
			injected := fs.sim.Stats().FaultsInjected + fs.wire.answersLost() - kandyBefore + fs.proxy.count() - ddbBefore
			if injected == 0 {
				t.Errorf("no fault was injected")
			}
			fmt.Fprintf(os.Stdout, "fault scenario %-48q ops=%d calls=%d faults_injected=%d invariants=%s\n",
				sc.name, 3, calls, injected, map[bool]string{true: "held", false: "BROKEN"}[!t.Failed()])
		})
	}
}

// TestCrashBetweenKandyCreateAndFinalize kills the function while its
// finalize is in flight: Kandy has created the user, the table does not
// know its credentials. The next attempt, once the claim expires, must end
// with exactly one Kandy user whose credentials are stored.
func TestCrashBetweenKandyCreateAndFinalize(t *testing.T) {
	fs := newFaultStack(t)
	const timeout = 3 // seconds; the claim expires 5 s after the deadline
	crashing := fs.start(t, "ApiFunction", timeout)
	fs.proxy.inject("UpdateItem", ddbHang, 1)
	sub := newSub()
	user := asUser(t, crashing, sub)
	go func() { _, _ = user.tryCreateUser() }()
	select {
	case <-fs.proxy.hung:
	case <-time.After(10 * time.Second):
		t.Fatal("the finalize never arrived")
	}
	if c, _ := fs.wire.counts(); c != 1 {
		t.Fatalf("Kandy creates before the crash = %d", c)
	}
	crashing.Stop() // SIGTERM to the emulator and the function, then SIGKILL
	if rec := recordIn(t, fs.table, sub); rec["status"] != "PENDING" {
		t.Fatalf("after the crash the record is %v, want PENDING", rec["status"])
	}

	fs.recoverOnce(t, sub, "process killed between Kandy create and finalize", "crash")
}

// recoverOnce provisions sub in a fresh container after a fault that left
// a Kandy user without stored credentials: that orphan must be deleted and
// the user created once more.
func (fs *faultStack) recoverOnce(t *testing.T, sub, scenario, fault string) {
	t.Helper()
	api := fs.start(t, "ApiFunction", 0)
	calls := provisionUntilDone(t, api, sub, 30*time.Second)
	fs.checkInvariants(t, []string{sub})
	// The orphan is deleted and created once more.
	c, d := fs.wire.counts()
	if c != 2 {
		t.Errorf("%d Kandy creates, want 2", c)
	}
	if d != 1 {
		t.Errorf("%d Kandy deletes, want 1", d)
	}
	fmt.Fprintf(os.Stdout, "fault scenario %-48q ops=1 calls=%d faults_injected=1 (%s) invariants=%s\n",
		scenario, calls, fault, map[bool]string{true: "held", false: "BROKEN"}[!t.Failed()])
}

// TestSlowKandyPastTheTriggerBudget: Kandy answers after the trigger gave
// up, so the user exists in Kandy with no stored credentials. The trigger
// still answers Cognito in time, and the next attempt recovers the orphan.
func TestSlowKandyPastTheTriggerBudget(t *testing.T) {
	fs := newFaultStack(t)
	trig := fs.start(t, "PostConfirmationFunction", 0)
	const late = 4500 * time.Millisecond
	fs.wire.delay = func(r *http.Request) time.Duration {
		if operation(r) == "create" {
			return late
		}
		return 0
	}
	sub := newSub()
	in := mustJSON(t, loadEvent(t, "post-confirmation-signup.json", sub))
	start := time.Now()
	out, err := trig.Invoke(context.Background(), in)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("trigger: %v", err)
	}
	if took > 5*time.Second {
		t.Errorf("trigger took %v, over Cognito's 5 s", took)
	}
	if want := strings.TrimSpace(string(compactJSON(t, in))); string(out) != want {
		t.Errorf("trigger answered %s, want the event back: %s", out, want)
	}
	if rec := recordIn(t, fs.table, sub); rec != nil && rec["status"] == "ACTIVE" {
		t.Fatal("the trigger finished although Kandy answered after its budget")
	}
	// Kandy carries the create out late, after the trigger gave up on it.
	for deadline := start.Add(late + 5*time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, _ := fs.wire.counts(); c == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Kandy never carried out the late create")
		}
	}
	fs.wire.delay = nil
	fs.recoverOnce(t, sub, "Kandy slower than the trigger's budget", "4.5 s latency")
}

func compactJSON(t *testing.T, raw []byte) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	return b
}
