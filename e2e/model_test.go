package e2e

import (
	"context"
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

	"github.com/kandy-provisioner/kandy-provisioner/internal/localstack"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/fieldcrypt"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/kandy"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/userid"
)

// The model-based concurrency test: random histories of Ensure (as the API
// and as the trigger), Get, UserToken and Delete over a few subs, from
// independent service instances (each with its own clients, like separate
// containers), against dynalite, local-kms and the simulator with random
// latency in front of each. After every history, the invariants of the
// account's life are checked over the whole table and the whole simulator.
const (
	modelWorkers      = 8
	modelOpsPerWorker = 50
	modelSubs         = 3
	modelFixedSeed    = 20261125
)

func TestModelBasedConcurrency(t *testing.T) {
	seeds := []uint64{modelFixedSeed, rand.Uint64()}
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
	sim             *localstack.Kandy
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
	svc, err := localstack.Service(getenv)
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
}

func (e event) String() string {
	return fmt.Sprintf("%s..%s  worker %d #%-2d %-15s %s -> %s", e.start.Format("05.000"), e.end.Format("05.000"),
		e.worker, e.seq, e.op, e.sub, e.result)
}

// runModel runs one history from seed and checks the invariants after it.
func runModel(t *testing.T, seed uint64) {
	r := newModelRig(t, seed)
	subList := make([]string, modelSubs)
	for i := range subList {
		subList[i] = newSub()
	}
	var mu sync.Mutex
	var history []event
	var wg sync.WaitGroup
	for w := 0; w < modelWorkers; w++ {
		svc := r.service(t)
		rng := rand.New(rand.NewPCG(seed, uint64(w)+2))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < modelOpsPerWorker; i++ {
				e := event{worker: w, seq: i, sub: subList[rng.IntN(len(subList))], start: time.Now()}
				e.op, e.result = operate(svc, rng.IntN(100), e.sub)
				e.end = time.Now()
				mu.Lock()
				history = append(history, e)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Slice(history, func(i, j int) bool { return history[i].start.Before(history[j].start) })
	counts := map[string]int{}
	for _, e := range history {
		counts[e.op+" "+e.result]++
	}
	fmt.Printf("model test: seed %d, %d operations: %v\n", seed, len(history), counts)
	if problems := r.invariants(t, history); len(problems) > 0 {
		t.Errorf("seed %d broke the invariants:\n  %s\nthe operations that led there, for the users concerned:\n%s", seed,
			strings.Join(problems, "\n  "), render(history, problems))
	}
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

// operate runs one operation, chosen by roll, and names its outcome.
func operate(svc *provision.Service, roll int, sub string) (op, result string) {
	outcome := func(err error, ok string) string {
		if err != nil {
			return string(provision.CodeOf(err))
		}
		return ok
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch {
	case roll < 30:
		_, created, err := svc.Ensure(ctx, sub, provision.EnsureOptions{})
		return "ensure(api)", outcome(err, map[bool]string{true: "201", false: "200"}[created])
	case roll < 45:
		tctx, tcancel := context.WithTimeout(ctx, 4*time.Second)
		defer tcancel()
		_, created, err := svc.Ensure(tctx, sub, provision.EnsureOptions{})
		return "ensure(trigger)", outcome(err, map[bool]string{true: "created", false: "existing"}[created])
	case roll < 60:
		_, err := svc.Get(ctx, sub)
		return "get", outcome(err, "200")
	case roll < 78:
		_, err := svc.UserToken(ctx, sub)
		return "token", outcome(err, "200")
	default:
		return "delete", outcome(svc.Delete(ctx, sub), "204")
	}
}

// invariants checks, over the rig's whole table and simulator, what must
// hold after any history; it returns each violation.
func (r *modelRig) invariants(t *testing.T, history []event) []string {
	t.Helper()
	var problems []string
	for _, e := range history {
		switch provision.Code(e.result) {
		case provision.CodeKandyUnavailable, provision.CodeInternal:
			problems = append(problems, fmt.Sprintf("a request failed because of another request for the same user: %s", e.String()))
		}
	}
	kandyUsers := listKandyUsers(t, r.sim)
	records := r.scan(t)
	now := time.Now()
	for _, rec := range records {
		problems = append(problems, r.checkRecord(t, rec, kandyUsers, now)...)
	}
	for id := range kandyUsers {
		rec, ok := records[id]
		if !ok {
			problems = append(problems, fmt.Sprintf("Kandy user %s has no record", id))
			continue
		}
		if rec["status"] != string(provision.StatusActive) && !liveClaim(rec, now) {
			problems = append(problems, fmt.Sprintf("Kandy user %s has a %s record without a live claim", id, rec["status"]))
		}
	}
	if c, d := r.wire.counts(); c-d != len(kandyUsers) {
		problems = append(problems, fmt.Sprintf("Kandy answered %d creates and %d deletes, but lists %d users", c, d, len(kandyUsers)))
	}
	return problems
}

// checkRecord: an ACTIVE record holds the credentials Kandy issued its
// user; a claim is never left expired.
func (r *modelRig) checkRecord(t *testing.T, rec map[string]string, kandyUsers map[string]bool, now time.Time) []string {
	t.Helper()
	id := rec["user_id"]
	switch rec["status"] {
	case string(provision.StatusActive):
		issued, ok := r.sim.User(id)
		if !ok || !kandyUsers[id] {
			return []string{fmt.Sprintf("ACTIVE record of %s has no Kandy user", id)}
		}
		plain, err := fieldcrypt.Open(context.Background(), stack.KMS, r.table, rec["sub"], rec["user_password"])
		if err != nil || rec["user_api_key"] != issued.APIKey || plain.UserAPISecret != issued.APISecret || plain.UserPassword != issued.Password {
			return []string{fmt.Sprintf("ACTIVE record of %s does not hold the credentials Kandy issued (%v)", id, err)}
		}
	default:
		if !liveClaim(rec, now) {
			return []string{fmt.Sprintf("%s record of %s outlived its claim", rec["status"], id)}
		}
	}
	return nil
}

func liveClaim(rec map[string]string, now time.Time) bool {
	ms, err := strconv.ParseInt(rec["claim_expires_at"], 10, 64)
	return err == nil && time.UnixMilli(ms).After(now)
}

// listKandyUsers asks Kandy, through its API, which users exist.
func listKandyUsers(t *testing.T, sim *localstack.Kandy) map[string]bool {
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
