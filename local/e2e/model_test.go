package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kandy-provisioner/kandy-provisioner/local/localrun"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/fieldcrypt"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/kandy"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/reconcile"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/reconcilesources"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/store"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/userid"
)

// The model-based concurrency test: random histories of the account's
// whole life over a few subs: the user's own POST /users, the trigger,
// a queued retry delivered late, GET, the token route, DELETE, and the
// user leaving the pool, whose event is delivered once or twice, possibly
// late. They run from independent service instances (each with its own
// clients, like separate containers), against dynalite, local-kms and the
// simulator, with random latency in front of each, and some Kandy answers
// held past the caller's deadline after Kandy carried the call out. After
// every history, and again once what was left half-way has been retried
// as a user, EventBridge or reconcile would, the invariants of the
// account's life are checked over the whole table and the whole simulator.
const (
	modelWorkers      = 8
	modelOpsPerWorker = 50
	modelSubs         = 3
	modelFixedSeed    = 20261125
	// modelLateAnswers bounds the answers held late in one history: each
	// costs its caller a call time-out.
	modelLateAnswers = 5
	// modelReconcilePercent is how often, late in a history, a worker
	// runs reconcile --fix instead of one request.
	modelReconcilePercent = 2
)

func TestModelBasedConcurrency(t *testing.T) {
	seeds := []uint64{modelFixedSeed}
	// MODEL_SEEDS adds that many random seeds (make model); one by default.
	more := 1
	if s := os.Getenv("MODEL_SEEDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			t.Fatalf("MODEL_SEEDS=%q", s)
		}
		more = n
	}
	for range more {
		seeds = append(seeds, rand.Uint64())
	}
	if s := os.Getenv("MODEL_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("MODEL_SEED=%q", s)
		}
		seeds = []uint64{n}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			fmt.Printf("model test: seed %d (replay with MODEL_SEED=%d go test ./e2e -run TestModelBasedConcurrency)\n", seed, seed)
			// Whatever fails, the seed is in the failure's own output.
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("replay with MODEL_SEED=%d", seed)
				}
			})
			runModel(t, seed)
		})
	}
}

// delays is a source of random latency, shared by the proxies of one run.
type delays struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func (d *delays) upTo(max time.Duration) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return time.Duration(d.rng.Int64N(int64(max)))
}

// heavy is mostly short and sometimes long: the long tail is what lets a
// stale request land after others have moved on.
func (d *delays) heavy(short, long time.Duration) time.Duration {
	d.mu.Lock()
	tail := d.rng.IntN(2) == 0
	d.mu.Unlock()
	if tail {
		return d.upTo(long)
	}
	return d.upTo(short)
}

// delayed proxies target, sleeping first for delay(r).
func delayed(t *testing.T, target string, delay func(*http.Request) time.Duration) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	h := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay(r))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// modelRig is one history's world: its own table, simulator and secret,
// behind latency.
type modelRig struct {
	table, secretID string
	sim             *localrun.Kandy
	wire            *kandyWire
	env             map[string]string
}

func newModelRig(t *testing.T, seed uint64) *modelRig {
	t.Helper()
	r := &modelRig{table: fmt.Sprintf("model-%d", subs.Add(1))}
	r.secretID = secretID + "-" + r.table
	var err error
	if r.sim, err = stack.NewKandy(0, 1000, nil); err != nil {
		t.Fatal(err)
	}
	sims = append(sims, r.sim)
	if err := stack.CreateTable(context.Background(), r.table); err != nil {
		t.Fatal(err)
	}
	tablesInUse = append(tablesInUse, r.table)
	stack.Secrets.Put(r.secretID, r.sim.Secret)
	d := &delays{rng: rand.New(rand.NewPCG(seed, 1))}
	kandyDelay := func(r *http.Request) time.Duration {
		if r.Method == http.MethodPost || r.Method == http.MethodDelete {
			return d.heavy(30*time.Millisecond, 400*time.Millisecond)
		}
		return d.upTo(10 * time.Millisecond)
	}
	some := func(*http.Request) time.Duration { return d.upTo(25 * time.Millisecond) }
	r.wire = newKandyWire(r.sim.Sim)
	r.wire.delay = kandyDelay
	var lateMu sync.Mutex
	lateLeft := modelLateAnswers
	lateRng := rand.New(rand.NewPCG(seed, 0))
	r.wire.late = func(req *http.Request) time.Duration {
		lateMu.Lock()
		defer lateMu.Unlock()
		if operation(req) == "" || lateLeft == 0 || lateRng.IntN(4) != 0 {
			return 0
		}
		lateLeft--
		// Past the Kandy client's 5 s call time-out.
		return 5500*time.Millisecond + time.Duration(lateRng.Int64N(int64(time.Second)))
	}
	r.env = map[string]string{
		"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
		"AWS_ENDPOINT_URL_DYNAMODB":        delayed(t, stack.DynamoURL, some),
		"AWS_ENDPOINT_URL_KMS":             delayed(t, stack.KMSURL, func(*http.Request) time.Duration { return d.heavy(25*time.Millisecond, 300*time.Millisecond) }),
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": stack.SecretsURL,
		"TABLE_NAME":                       r.table, "KANDY_SECRET_ID": r.secretID, "KMS_KEY_ID": stack.KeyARN,
		"KANDY_API_URL": serveWire(t, r.wire) + "/v1.2",
	}
	return r
}

// service is one container's service: its own clients and caches.
func (r *modelRig) service(t *testing.T) *provision.Service {
	t.Helper()
	getenv := func(k string) string { return r.env[k] }
	svc, err := localrun.Service(getenv)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// event is one operation of a history.
type event struct {
	worker, seq int
	sub, op     string
	start, end  time.Time
	result      string
	// account names the account the answer carries (see accountIdentity).
	account string
	// class is the drift a reconcile reported for sub.
	class reconcile.Class
}

func (e event) String() string {
	return fmt.Sprintf("%s..%s  worker %d #%-2d %-15s %s -> %s", e.start.Format("05.000"), e.end.Format("05.000"),
		e.worker, e.seq, e.op, e.sub, e.result)
}

// pool is the user pool as the history changes it: who has left.
type pool struct {
	mu   sync.Mutex
	left map[string]bool
}

// leave takes sub out of the pool, unless it is the last one in it.
func (p *pool) leave(sub string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.left[sub] || len(p.left) == modelSubs-1 {
		return false
	}
	p.left[sub] = true
	return true
}

func (p *pool) has(sub string) bool { p.mu.Lock(); defer p.mu.Unlock(); return !p.left[sub] }

// runModel runs one history from seed and checks the invariants after it,
// and after settling what it left half-way, and that the whole history,
// settling included, is linearizable.
func runModel(t *testing.T, seed uint64) {
	r := newModelRig(t, seed)
	subList := make([]string, modelSubs)
	for i := range subList {
		subList[i] = newSub()
	}
	users := &pool{left: map[string]bool{}}
	h := &historyLog{}
	var wg sync.WaitGroup
	for w := 0; w < modelWorkers; w++ {
		svc := r.service(t)
		rng := rand.New(rand.NewPCG(seed, uint64(w)+2))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < modelOpsPerWorker; i++ {
				late := i >= modelOpsPerWorker*2/3
				if late && rng.IntN(100) < modelReconcilePercent {
					h.add(r.reconcileFix(svc, w, i, subList, users)...)
					continue
				}
				e := event{worker: w, seq: i, sub: subList[rng.IntN(len(subList))], start: time.Now()}
				operate(svc, rng, &e, users, late)
				e.end = time.Now()
				h.add(e)
			}
		}()
	}
	wg.Wait()
	r.wire.settled()
	history := h.sorted()
	counts := map[string]int{}
	for _, e := range history {
		counts[e.op+" "+e.result]++
	}
	fmt.Printf("model test: seed %d, %d operations, %d Kandy answers held late: %v\n", seed, len(history), r.wire.held(), counts)
	problems := r.duringHistory(t, history)
	if len(problems) == 0 {
		r.settle(t, history, users, h)
		// A Kandy answer held late in settling is counted once it lands.
		r.wire.settled()
		problems = r.afterSettling(t, history, users)
	}
	if len(problems) > 0 {
		t.Errorf("seed %d broke the invariants:\n  %s\nthe operations that led there, for the users concerned:\n%s", seed,
			strings.Join(problems, "\n  "), render(history, problems))
	}
	if problem := checkLinearizable(seed, h.sorted()); problem != "" {
		t.Errorf("seed %d: %s", seed, problem)
	}
}

// historyLog collects a history's events from its workers.
type historyLog struct {
	mu     sync.Mutex
	events []event
}

func (h *historyLog) add(es ...event) { h.mu.Lock(); h.events = append(h.events, es...); h.mu.Unlock() }

// sorted is the history so far, by call.
func (h *historyLog) sorted() []event {
	h.mu.Lock()
	out := append([]event(nil), h.events...)
	h.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}

// render lists, for each user a problem names (by sub or user id), the
// operations that ended in the 600 ms before its first failed request (or
// before the end), leaving out the many answered 409.
func render(history []event, problems []string) string {
	all := strings.Join(problems, " ")
	var b strings.Builder
	for _, sub := range subsOf(history) {
		uid, _ := userid.FromSub(sub)
		if !strings.Contains(all, sub) && !strings.Contains(all, uid) {
			continue
		}
		var mine []event
		until := -1
		for _, e := range history {
			if e.sub == sub {
				mine = append(mine, e)
				if until < 0 && strings.Contains(all, e.String()) {
					until = len(mine) - 1
				}
			}
		}
		if until < 0 {
			until = len(mine) - 1
		}
		for _, e := range mine[:until+1] {
			if e.end.After(mine[until].start.Add(-600*time.Millisecond)) && e.result != string(provision.CodeInProgress) {
				b.WriteString("  " + e.String() + "\n")
			}
		}
	}
	return b.String()
}

func subsOf(history []event) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range history {
		if !seen[e.sub] {
			seen[e.sub] = true
			out = append(out, e.sub)
		}
	}
	sort.Strings(out)
	return out
}

// answered records an operation's answer: ok and the account it carries
// when err is nil, err's code otherwise.
func (e *event) answered(err error, ok string, a provision.Account) {
	if err != nil {
		e.result = string(provision.CodeOf(err))
		return
	}
	e.result = ok
	if a.UserID != "" {
		e.account = accountIdentity(a)
	}
}

// operate runs one operation, chosen at random, and records it in e.
// Late in the history a user may leave the pool, but one always stays. A
// user who left still sends a request of their own now and then (an
// access token outlives its user), and late retries and deliveries of the
// pool's event still come.
func operate(svc *provision.Service, rng *rand.Rand, e *event, users *pool, late bool) {
	ensure := func(op string, timeout time.Duration, byUser bool) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		e.op = op
		a, created, err := svc.Ensure(ctx, e.sub, provision.EnsureOptions{ByUser: byUser})
		e.answered(err, map[bool]string{true: ansCreated, false: ansExisting}[created], a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	roll, in := rng.IntN(100), users.has(e.sub)
	user := in || rng.IntN(4) == 0
	switch {
	case roll < 25 && user:
		ensure(opPost, 10*time.Second, true)
	case roll < 35 && in:
		ensure(opTrigger, 4*time.Second, false)
	case roll < 47:
		ensure(opRetry, 8*time.Second, false)
	case roll < 65 && user: // reads often: only a read sees a stale or wrong account
		e.op = opGet
		a, err := svc.Get(ctx, e.sub)
		e.answered(err, ansExisting, a)
	case roll < 75 && user:
		e.op = opToken
		_, err := svc.UserToken(ctx, e.sub)
		e.answered(err, ansExisting, provision.Account{})
	case roll < 85 && user:
		e.op = opDelete
		e.answered(deleted(svc, ctx, e.sub), ansDeleted, provision.Account{})
	case roll < 88 && in && late && users.leave(e.sub):
		e.op = opLeave
		e.answered(svc.Deprovision(ctx, e.sub), ansDeprovisioned, provision.Account{})
	default: // the pool's event, again or late
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		if in {
			ensure(opRetry, 8*time.Second, false)
			return
		}
		e.op = opLeave
		e.answered(svc.Deprovision(ctx, e.sub), ansDeprovisioned, provision.Account{})
	}
}

// reconcileFix runs reconcile --fix, every class, as an operator would
// while requests go on, and records it as one operation on each sub,
// answered by the drift it found for that sub.
func (r *modelRig) reconcileFix(svc *provision.Service, worker, seq int, subList []string, users *pool) []event {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	key, secret := r.sim.ProjectKey()
	k, err := kandy.New(kandy.Options{BaseURL: r.sim.URL, Keys: staticKeys{APIKey: key, APISecret: secret}})
	if err != nil {
		panic(err)
	}
	src := reconcile.Sources{
		Records:    reconcilesources.Records(stack.DB, r.table, 1),
		KandyUsers: reconcilesources.KandyUsers(k),
		CognitoUsers: func(ctx context.Context, fn func([]reconcile.CognitoUser) error) error {
			var in []reconcile.CognitoUser
			for _, sub := range subList {
				if users.has(sub) {
					in = append(in, reconcile.CognitoUser{Username: sub, Sub: sub, Confirmed: true})
				}
			}
			return fn(in)
		},
	}
	classes := map[string]reconcile.Class{}
	result := "done"
	rep, err := reconcile.Compare(ctx, src, time.Now())
	if err == nil {
		for _, it := range rep.Items {
			classes[it.Sub] = it.Class
		}
		all := map[reconcile.Class]bool{}
		for _, c := range reconcile.Classes {
			all[c] = true
		}
		_, err = reconcile.Fix(ctx, rep, svc, reconcile.FixOptions{Classes: all, Force: true,
			StillGone: func(_ context.Context, sub string) (bool, error) { return !users.has(sub), nil }})
	}
	if err != nil {
		result = string(provision.CodeOf(err))
	}
	end := time.Now()
	out := make([]event, 0, len(subList))
	for _, sub := range subList {
		out = append(out, event{worker: worker, seq: seq, sub: sub, op: opReconcile, start: start, end: end, result: result, class: classes[sub]})
	}
	return out
}

// wish is what a sub's user last asked for: opDelete or opPost, or "" if
// only automatic paths acted.
func wish(history []event, sub string) string {
	last := ""
	for _, e := range history {
		if e.sub == sub && (e.op == opDelete || e.op == opPost) {
			last = e.op
		}
	}
	return last
}

// settle retries what the history left half-way, as its owner would: the
// pool's event is delivered again until it succeeds (EventBridge and
// Lambda's retries), a user repeats their last request until it is
// answered, and a user who made none is provisioned by a retry. Its
// operations join the history in h, as one more worker's.
func (r *modelRig) settle(t *testing.T, history []event, users *pool, h *historyLog) {
	t.Helper()
	svc := r.service(t)
	seq := 0
	for _, sub := range subsOf(history) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			e := event{worker: modelWorkers, seq: seq, sub: sub, start: time.Now()}
			seq++
			var err error
			switch {
			case !users.has(sub):
				e.op = opLeave
				err = svc.Deprovision(ctx, sub)
				e.answered(err, ansDeprovisioned, provision.Account{})
			case wish(history, sub) == opDelete:
				e.op = opDelete
				err = deleted(svc, ctx, sub)
				e.answered(err, ansDeleted, provision.Account{})
				if errors.Is(err, provision.ErrNotProvisioned) {
					err = nil
				}
			default:
				byUser := wish(history, sub) == opPost
				e.op = map[bool]string{true: opPost, false: opRetry}[byUser]
				var a provision.Account
				var created bool
				a, created, err = svc.Ensure(ctx, sub, provision.EnsureOptions{ByUser: byUser})
				e.answered(err, map[bool]string{true: ansCreated, false: ansExisting}[created], a)
				if errors.Is(err, provision.ErrAccountDeleted) {
					err = nil
				}
			}
			cancel()
			e.end = time.Now()
			h.add(e)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("settling %s: %v", sub, err)
			}
			time.Sleep(300 * time.Millisecond) // a claim left by a time-out expires
		}
	}
}

// duringHistory checks what must hold at the end of any history, before
// anything is retried: no request failed but for an answer held late, and
// no Kandy user exists without a record that owns it.
func (r *modelRig) duringHistory(t *testing.T, history []event) []string {
	t.Helper()
	var problems []string
	for _, e := range history {
		uid, _ := userid.FromSub(e.sub)
		switch provision.Code(e.result) {
		case provision.CodeKandyUnavailable, provision.CodeInternal, provision.CodeUnavailable:
			if !r.wire.lateFor(uid, e.start, e.end) {
				problems = append(problems, fmt.Sprintf("a request failed because of another request for the same user: %s", e.String()))
			}
		}
	}
	records := r.scan(t)
	for id := range listKandyUsers(t, r.sim) {
		switch rec, ok := records[id]; {
		case !ok:
			problems = append(problems, fmt.Sprintf("Kandy user %s has no record", id))
		case rec["status"] == string(provision.StatusDeleted):
			problems = append(problems, fmt.Sprintf("Kandy user %s has a tombstone for a record", id))
		}
	}
	return problems
}

// afterSettling checks the account's life: every record is an account
// whose Kandy user holds its credentials, or a tombstone with no Kandy
// user, as its user last asked; a user who left the pool has an expiring
// tombstone; Kandy's creates less its deletes are the users it lists.
func (r *modelRig) afterSettling(t *testing.T, history []event, users *pool) []string {
	t.Helper()
	var problems []string
	kandyUsers := listKandyUsers(t, r.sim)
	records := r.scan(t)
	for _, sub := range subsOf(history) {
		uid, _ := userid.FromSub(sub)
		rec, want := records[uid], wish(history, sub)
		switch {
		case !users.has(sub) && (rec["status"] != string(provision.StatusDeleted) || rec[store.TTLAttribute] == ""):
			problems = append(problems, fmt.Sprintf("%s left the pool, and its record is %v", uid, redact(rec)))
		case users.has(sub) && want == opDelete && rec["status"] != string(provision.StatusDeleted):
			problems = append(problems, fmt.Sprintf("%s deleted their account, and its record is %v", uid, redact(rec)))
		case users.has(sub) && want == opPost && rec["status"] != string(provision.StatusActive):
			problems = append(problems, fmt.Sprintf("%s asked for an account, and its record is %v", uid, redact(rec)))
		}
	}
	for _, rec := range records {
		problems = append(problems, r.checkRecord(t, rec, kandyUsers)...)
	}
	for id := range kandyUsers {
		if records[id]["status"] != string(provision.StatusActive) {
			problems = append(problems, fmt.Sprintf("Kandy user %s has no account: its record is %v", id, redact(records[id])))
		}
	}
	if c, d := r.wire.counts(); c-d != len(kandyUsers) {
		problems = append(problems, fmt.Sprintf("Kandy answered %d creates and %d deletes, but lists %d users", c, d, len(kandyUsers)))
	}
	return problems
}

// checkRecord: an ACTIVE record holds the credentials Kandy issued its
// user; once settled, no record is left PENDING or DELETING.
func (r *modelRig) checkRecord(t *testing.T, rec map[string]string, kandyUsers map[string]bool) []string {
	t.Helper()
	id := rec["user_id"]
	switch provision.Status(rec["status"]) {
	case provision.StatusActive:
		issued, ok := r.sim.User(id)
		if !ok || !kandyUsers[id] {
			return []string{fmt.Sprintf("ACTIVE record of %s has no Kandy user", id)}
		}
		plain, err := fieldcrypt.Open(context.Background(), stack.KMS, r.table, rec["sub"], rec["user_password"])
		if err != nil {
			return []string{fmt.Sprintf("ACTIVE record of %s does not open: %v", id, err)}
		}
		var broken []string
		for name, held := range map[string]bool{
			"user API key":    rec["user_api_key"] == issued.APIKey,
			"user API secret": plain.UserAPISecret == issued.APISecret,
			"user password":   plain.UserPassword == issued.Password,
		} {
			if !held {
				broken = append(broken, fmt.Sprintf("ACTIVE record of %s does not hold the %s Kandy issued", id, name))
			}
		}
		return broken
	case provision.StatusDeleted:
		var kept []string
		for _, k := range []string{"user_password", "user_api_key", "user_api_secret"} {
			if rec[k] != "" {
				kept = append(kept, fmt.Sprintf("the tombstone of %s keeps %s", id, k))
			}
		}
		return kept
	default:
		return []string{fmt.Sprintf("%s record of %s was left after settling", rec["status"], id)}
	}
}

// listKandyUsers asks Kandy, through its API, which users exist.
func listKandyUsers(t *testing.T, sim *localrun.Kandy) map[string]bool {
	t.Helper()
	key, secret := sim.ProjectKey()
	c, err := kandy.New(kandy.Options{BaseURL: sim.URL, Keys: staticKeys{APIKey: key, APISecret: secret}})
	if err != nil {
		t.Fatal(err)
	}
	users, err := c.ListUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, u := range users {
		out[u.UserID] = true
	}
	return out
}

type staticKeys kandy.ProjectKey

func (k staticKeys) ProjectKey(context.Context) (kandy.ProjectKey, error) {
	return kandy.ProjectKey(k), nil
}

// scan reads every record of the rig's table, by user id.
func (r *modelRig) scan(t *testing.T) map[string]map[string]string {
	t.Helper()
	out, err := stack.DB.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(r.table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	records := map[string]map[string]string{}
	for _, it := range out.Items {
		rec := map[string]string{}
		for k, v := range it {
			switch x := v.(type) {
			case *types.AttributeValueMemberS:
				rec[k] = x.Value
			case *types.AttributeValueMemberN:
				rec[k] = x.Value
			}
		}
		if want, _ := userid.FromSub(rec["sub"]); want != rec["user_id"] {
			t.Errorf("record of %s names user %s", rec["sub"], rec["user_id"])
		}
		records[rec["user_id"]] = rec
	}
	return records
}
