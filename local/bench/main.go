// Command bench measures the service on this machine: binary sizes, cold
// start under aws-lambda-rie against a hello-world, warm latency against a
// floor (bench/floor: the hello-world plus one DynamoDB call), peak RSS and
// upstream calls. It writes bench/results.md and bench/results.json and
// exits non-zero when a budget is missed. `make bench` runs it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/kandysim"
	"github.com/kandy-provisioner/kandy-provisioner/local/guard"
	"github.com/kandy-provisioner/kandy-provisioner/local/localrun"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"

	"github.com/kandy-provisioner/kandy-provisioner/local/bench/measure"
)

const (
	coldRuns = 21
	// warmRuns per route, and as many of the floor beside it: 1,000 so
	// that p99 is the 10th slowest, not the 3rd, and one preemption on a
	// shared machine does not decide the p99 budget.
	warmRuns = 1000
	// warmUps are untimed invocations before each warm measure.
	warmUps = 20

	sizeLimit       = 10_000_000 // bytes: "10 MB", read strictly
	coldRatioLimit  = 1.5        // cold start against the floor
	floorRatioLimit = 1.2        // warm p50 and p99 against the floor

	// Goals are reported beside the budgets, on what a user feels: the
	// time to a first and to a warm answer, each against the floor, the
	// least a function that must call DynamoDB can take. A binary's size
	// is reported beside the floor's, with a budget and no goal.
	coldRatioGoal = 1.05
	warmRatioGoal = 1.1
)

// The reference functions, built and run like ours.
const (
	helloName = "hello (reference)"
	floorName = "floor (reference)"
	helloDir  = "./local/bench/hello"
	floorDir  = "./local/bench/floor"
)

var results []measure.Result

func record(name string, v float64, unit, budget string, pass *bool, note string) {
	results = append(results, measure.Result{Name: name, Value: v, Unit: unit, Budget: budget, Pass: pass, Note: note})
	status := ""
	if pass != nil {
		status = map[bool]string{true: "  PASS", false: "  MISS"}[*pass]
	}
	fmt.Printf("%-62s %9.2f %-6s %-16s%s\n", name, v, unit, budget, status)
}

// recordGoal records a number with both a budget and a goal.
func recordGoal(name string, v float64, unit, budget string, pass bool, goal string, met bool) {
	record(name, v, unit, budget, measure.Check(pass), "")
	r := &results[len(results)-1]
	r.Goal, r.GoalMet = goal, measure.Check(met)
	fmt.Printf("%-62s %9s %-6s goal %-11s%s\n", "", "", "", goal, map[bool]string{true: "  MET", false: "  NOT MET"}[met])
}

func main() {
	loadAtStart := loadAverage()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	missed := 0
	for _, r := range results {
		if r.Pass != nil && !*r.Pass {
			missed++
		}
	}
	if err := write(loadAtStart, loadAverage()); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if missed > 0 {
		fmt.Fprintf(os.Stderr, "\nbench: %d budget(s) MISSED; see bench/results.md\n", missed)
		os.Exit(1)
	}
}

func run() error {
	tmp, err := os.MkdirTemp("", "kandy-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := measureSizes(tmp); err != nil {
		return err
	}
	// Host builds, to run under the emulator.
	hello := filepath.Join(tmp, "host", "hello", "bootstrap")
	floorBin := filepath.Join(tmp, "host", "floor", "bootstrap")
	for bin, dir := range map[string]string{hello: helloDir, floorBin: floorDir} {
		if err := gobuild(processes.RepoRoot(), "", dir, bin); err != nil {
			return err
		}
	}
	if out, err := exec.Command("make", "-C", processes.RepoRoot(), "--no-print-directory", "build").CombinedOutput(); err != nil {
		return fmt.Errorf("make build: %v\n%s", err, out)
	}

	// Upstreams: dynalite behind a counting proxy, the simulator, the secret.
	s, err := localrun.Start(context.Background(), localrun.Options{KandyQuota: 1_000_000})
	if err != nil {
		return err
	}
	defer s.Stop()
	counter := newCounter(s.DynamoURL)
	counted, err := s.Serve(0, counter)
	if err != nil {
		return err
	}
	env := s.Env("AWS_ENDPOINT_URL_DYNAMODB=" + counted)
	events := loadEvents(processes.RepoRoot(), "0f8fad5b-d9cb-469f-a165-70867728950e")

	api, err := s.StartFunction("ApiFunction", env)
	if err != nil {
		return err
	}
	if err := measureCalls(api, s, counter, events); err != nil {
		return err
	}
	floorEnv, err := localrun.LambdaEnv("ApiFunction", env)
	if err != nil {
		return err
	}
	floor, err := processes.StartBootstrap(floorName, floorBin, floorEnv)
	if err != nil {
		return err
	}
	defer floor.Stop()
	// The account every warm measure finds.
	if _, err := invokeOK(api, events["create-existing"], 201); err != nil {
		return err
	}
	if err := measureFloorCalls(floor, counter, events); err != nil {
		return err
	}
	if err := measureAPILatency(api, floor, events); err != nil {
		return err
	}
	api.Stop()
	if err := measureTrigger(s, env, floor, events); err != nil {
		return err
	}
	floor.Stop()
	return measureColdStart(hello, floorBin, env, events)
}

// measureSizes builds every function for arm64, exactly as sam build does.
func measureSizes(tmp string) error {
	tpl, err := samtemplate.Load(samtemplate.Path())
	if err != nil {
		return err
	}
	type fnDir struct{ id, dir string }
	var fns []fnDir
	for _, id := range tpl.Functions() {
		fns = append(fns, fnDir{id, samtemplate.FunctionDir(id)})
	}
	refs := map[string]bool{helloName: true, floorName: true}
	floorSize := 0.0
	for _, fn := range append([]fnDir{{floorName, floorDir}, {helloName, helloDir}}, fns...) {
		out := filepath.Join(tmp, "arm64", fn.id)
		if err := gobuild(processes.RepoRoot(), "arm64", fn.dir, out); err != nil {
			return err
		}
		st, err := os.Stat(out)
		if err != nil {
			return err
		}
		mb := float64(st.Size()) / 1e6
		switch {
		case fn.id == floorName:
			floorSize = mb
			record("bootstrap size, arm64: "+fn.id, mb, "MB", "", nil, "")
		case refs[fn.id]:
			record("bootstrap size, arm64: "+fn.id, mb, "MB", "", nil, "")
		default:
			record("bootstrap size, arm64: "+fn.id, mb, "MB", fmt.Sprintf("<= %.1f MB", float64(sizeLimit)/1e6),
				measure.Check(st.Size() <= sizeLimit), fmt.Sprintf("the floor: %.2f MB (%.2fx)", floorSize, mb/floorSize))
		}
	}
	return nil
}

// measureCalls counts what one fresh container asks of its upstreams.
func measureCalls(api *processes.Function, s *localrun.Stack, counter *counter, events map[string][]byte) error {
	sim := s.Kandy
	counter.reset()
	before := sim.CallCounts()
	if _, err := invokeOK(api, events["create-new-1"], 201); err != nil {
		return err
	}
	kc, dc := diff(before, sim.CallCounts()), counter.snapshot()
	record("new user: Kandy creates", float64(kc[kandysim.EndpointCreateUser]), "calls", "exactly 1", measure.Check(kc[kandysim.EndpointCreateUser] == 1), "")
	record("new user: Kandy domain-token fetches", float64(kc[kandysim.EndpointDomainToken]), "calls", "<= 1 per container", measure.Check(kc[kandysim.EndpointDomainToken] <= 1), "")
	writes, reads := dc.writes(), dc.reads()
	record("new user: DynamoDB writes", float64(writes), "calls", "<= 2", measure.Check(writes <= 2), dc.String())
	record("new user: DynamoDB reads", float64(reads), "calls", "0", measure.Check(reads == 0), "")

	counter.reset()
	before = sim.CallCounts()
	if _, err := invokeOK(api, events["create-new-1"], 200); err != nil {
		return err
	}
	kc, dc = diff(before, sim.CallCounts()), counter.snapshot()
	total := dc.writes() + dc.reads()
	record("repeated POST /users: DynamoDB calls", float64(total), "calls", "1", measure.Check(total == 1), dc.String())
	record("repeated POST /users: Kandy calls", float64(sum(kc)), "calls", "0", measure.Check(sum(kc) == 0), "")

	before = sim.CallCounts()
	if _, err := invokeOK(api, events["create-new-2"], 201); err != nil {
		return err
	}
	kc = diff(before, sim.CallCounts())
	record("second new user, same container: token fetches", float64(kc[kandysim.EndpointDomainToken]), "calls", "0 (cached)", measure.Check(kc[kandysim.EndpointDomainToken] == 0), "")
	record("secret fetches for this container", float64(s.Secrets.Calls()), "calls", "<= 1 per TTL", measure.Check(s.Secrets.Calls() <= 1), "")
	return nil
}

// measureFloorCalls checks that the floor makes the call it stands for:
// one UpdateItem, as a repeated POST /users does.
func measureFloorCalls(floor *processes.Function, counter *counter, events map[string][]byte) error {
	counter.reset()
	if _, err := invokeOK(floor, events["create-existing"], 200); err != nil {
		return err
	}
	dc := counter.snapshot()
	total := dc.writes() + dc.reads()
	record("floor: DynamoDB calls", float64(total), "calls", "1 (UpdateItem)", measure.Check(total == 1 && dc["UpdateItem"] == 1), dc.String())
	return nil
}

// measureAPILatency times warm invocations of one container against the
// floor's, then reads both peak memories.
func measureAPILatency(api, floor *processes.Function, events map[string][]byte) error {
	for _, r := range []struct {
		name, event string
		want        int
		budget      bool
	}{
		{"POST /users (existing)", "create-existing", 200, true}, {"GET /users/me", "get", 200, true},
		{"POST /users/me/token", "token", 200, false},
	} {
		if _, err := invokeOK(api, events[r.event], r.want); err != nil {
			return err
		}
		if err := warmAgainstFloor(r.name, api, floor, events[r.event], r.budget); err != nil {
			return err
		}
	}
	for _, fn := range []*processes.Function{api, floor} {
		rss, err := peakRSS(fn.Process)
		if err != nil {
			return err
		}
		record("peak RSS: "+fn.Name+" bootstrap", rss, "MB", "", nil, "VmHWM after the warm runs")
	}
	return nil
}

func measureTrigger(s *localrun.Stack, env []string, floor *processes.Function, events map[string][]byte) error {
	trig, err := s.StartFunction("PostConfirmationFunction", env)
	if err != nil {
		return err
	}
	defer trig.Stop()
	if _, err := trig.Invoke(context.Background(), events["signup"]); err != nil {
		return err
	}
	return warmAgainstFloor("trigger ConfirmSignUp (existing)", trig, floor, events["signup"], false)
}

// warmAgainstFloor times warm invocations of fn and of the floor in turn,
// with the same event, so that drift on a shared machine hits both alike.
// It records fn's p50 and p99, the floor's, and their ratios: a budget when
// budget is set.
func warmAgainstFloor(name string, fn, floor *processes.Function, ev []byte, budget bool) error {
	ours, ref, err := warm(fn, floor, ev)
	if err != nil {
		return err
	}
	for _, p := range []float64{50, 99} {
		o, f := pct(ours, p), pct(ref, p)
		label := fmt.Sprintf("p%.0f", p)
		record("warm "+label+": "+name, o, "ms", "", nil, "")
		record("warm "+label+": floor, beside "+name, f, "ms", "", nil, "")
		if budget {
			recordGoal("warm "+label+" ratio to the floor: "+name, o/f, "x", fmt.Sprintf("<= %.2g", floorRatioLimit), o/f <= floorRatioLimit,
				fmt.Sprintf("<= %.3g", warmRatioGoal), o/f <= warmRatioGoal)
		} else {
			record("warm "+label+" ratio to the floor: "+name, o/f, "x", "", nil, "")
		}
	}
	return nil
}

// measureColdStart times process start to first answered invocation,
// alternating ours and the references so drift hits all alike.
func measureColdStart(hello, floor string, env []string, events map[string][]byte) error {
	env, err := localrun.LambdaEnv("ApiFunction", env)
	if err != nil {
		return err
	}
	var ours, floors, hellos []float64
	for i := 0; i < coldRuns; i++ {
		for _, c := range []struct {
			bootstrap string
			env       []string
			into      *[]float64
		}{
			{processes.BootstrapPath("ApiFunction"), env, &ours}, {floor, env, &floors}, {hello, nil, &hellos},
		} {
			d, err := cold(c.bootstrap, c.env, events["get"])
			if err != nil {
				return err
			}
			*c.into = append(*c.into, d)
		}
	}
	mo, mf, mh := pct(ours, 50), pct(floors, 50), pct(hellos, 50)
	runs := fmt.Sprintf("%d runs", coldRuns)
	record("cold start median: ApiFunction (GET /users/me)", mo, "ms", "", nil, runs)
	record("cold start median: floor reference", mf, "ms", "", nil, runs)
	record("cold start median: hello-world reference", mh, "ms", "", nil, runs)
	recordGoal("cold start ratio to the floor: ApiFunction", mo/mf, "x",
		fmt.Sprintf("<= %.3g", coldRatioLimit), mo/mf <= coldRatioLimit,
		fmt.Sprintf("<= %.3g", coldRatioGoal), mo/mf <= coldRatioGoal)
	record("cold start ratio, floor against hello-world", mf/mh, "x", "", nil, "what the DynamoDB client and the store cost alone")
	return nil
}

func gobuild(root, arch, pkg, out string) error {
	// Each from its own module alone, as make build builds a function.
	if rest, ok := strings.CutPrefix(pkg, "./local/"); ok {
		root, pkg = filepath.Join(root, "local"), "./"+rest
	}
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0", "GOOS=linux")
	if arch != "" {
		cmd.Env = append(cmd.Env, "GOARCH="+arch)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %v\n%s", pkg, err, b)
	}
	return nil
}

func loadEvents(root, existing string) map[string][]byte {
	read := func(name, sub string) []byte {
		b, err := os.ReadFile(filepath.Join(root, "events", name))
		if err != nil {
			panic(err)
		}
		return bytes.ReplaceAll(b, []byte("6f1c2a9e-4b7d-4e2a-9c3f-1a2b3c4d5e6f"), []byte(sub))
	}
	return map[string][]byte{
		"create-new-1":    read("create-user.json", "11111111-1111-4111-8111-111111111111"),
		"create-new-2":    read("create-user.json", "22222222-2222-4222-8222-222222222222"),
		"create-existing": read("create-user.json", existing),
		"get":             read("get-user.json", existing),
		"token":           read("user-token.json", existing),
		"signup":          read("post-confirmation-signup.json", existing),
	}
}

func invokeOK(fn *processes.Function, ev []byte, want int) ([]byte, error) {
	out, err := fn.Invoke(context.Background(), ev)
	if err != nil {
		return nil, err
	}
	var r struct {
		StatusCode int `json:"statusCode"`
	}
	if json.Unmarshal(out, &r) != nil || r.StatusCode != want {
		return out, fmt.Errorf("%s answered %s, want status %d", fn.Name, out, want)
	}
	return out, nil
}

// warm times warmRuns invocations of fn and of ref with ev, in turn and
// each first every other time, after warmUps untimed ones of each.
func warm(fn, ref *processes.Function, ev []byte) (ours, refs []float64, err error) {
	for i := 0; i < warmUps; i++ {
		for _, f := range []*processes.Function{fn, ref} {
			if _, err := f.Invoke(context.Background(), ev); err != nil {
				return nil, nil, err
			}
		}
	}
	ours, refs = make([]float64, 0, warmRuns), make([]float64, 0, warmRuns)
	for i := 0; i < warmRuns; i++ {
		pair := []struct {
			fn   *processes.Function
			into *[]float64
		}{{fn, &ours}, {ref, &refs}}
		if i%2 == 1 {
			pair[0], pair[1] = pair[1], pair[0]
		}
		for _, p := range pair {
			t := time.Now()
			if _, err := p.fn.Invoke(context.Background(), ev); err != nil {
				return nil, nil, err
			}
			*p.into = append(*p.into, float64(time.Since(t).Microseconds())/1000)
		}
	}
	return ours, refs, nil
}

// cold starts the emulator with a bootstrap and times until its first
// invocation is answered.
func cold(bootstrap string, env []string, ev []byte) (float64, error) {
	port, err := guard.FreePort()
	if err != nil {
		return 0, err
	}
	rport, err := guard.FreePort()
	if err != nil {
		return 0, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(processes.RIEPath(), "--runtime-interface-emulator-address", addr, "--runtime-api-address", "127.0.0.1:"+strconv.Itoa(rport), bootstrap)
	cmd.Env = append(append(os.Environ(), env...), "LOG_LEVEL=error")
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }()
	client := &http.Client{}
	for time.Since(start) < 10*time.Second {
		resp, err := client.Post("http://"+addr+"/2015-03-31/functions/function/invocations", "application/json", bytes.NewReader(ev))
		if err != nil {
			var op *net.OpError
			if errors.As(err, &op) {
				time.Sleep(200 * time.Microsecond)
				continue
			}
			return 0, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("cold invoke of %s: HTTP %d", bootstrap, resp.StatusCode)
		}
		return float64(time.Since(start).Microseconds()) / 1000, nil
	}
	return 0, fmt.Errorf("cold invoke of %s timed out", bootstrap)
}

// peakRSS reads VmHWM of the emulator's child: the function process.
func peakRSS(p *processes.Process) (float64, error) {
	pid := p.PID()
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		raw, _ := os.ReadFile(t)
		for _, child := range strings.Fields(string(raw)) {
			status, err := os.ReadFile("/proc/" + child + "/status")
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(status), "\n") {
				if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
					kb, _ := strconv.ParseFloat(f[1], 64)
					return kb / 1024, nil
				}
			}
		}
	}
	return 0, errors.New("function process not found under the emulator")
}

func pct(v []float64, p float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

func diff(before, after map[string]int) map[string]int {
	d := map[string]int{}
	for k, v := range after {
		if v-before[k] != 0 {
			d[k] = v - before[k]
		}
	}
	return d
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// counter proxies DynamoDB and counts calls per operation.
type counter struct {
	proxy *httputil.ReverseProxy
	mu    sync.Mutex
	ops   ops
}

type ops map[string]int

func (o ops) writes() int { return o["PutItem"] + o["UpdateItem"] + o["DeleteItem"] }
func (o ops) reads() int  { return o["GetItem"] + o["Query"] + o["Scan"] }
func (o ops) String() string {
	var parts []string
	for k, v := range o {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func newCounter(target string) *counter {
	u, _ := url.Parse(target)
	return &counter{proxy: httputil.NewSingleHostReverseProxy(u), ops: ops{}}
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	c.mu.Lock()
	c.ops[op]++
	c.mu.Unlock()
	c.proxy.ServeHTTP(w, r)
}

func (c *counter) reset() { c.mu.Lock(); c.ops = ops{}; c.mu.Unlock() }
func (c *counter) snapshot() ops {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := ops{}
	for k, v := range c.ops {
		o[k] = v
	}
	return o
}

// loadAverage is the machine's one-minute load average: on a shared
// machine it says how far to trust the timings.
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(raw)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

func write(loadAtStart, loadAtEnd string) error {
	dir := filepath.Join(processes.RepoRoot(), "local", "bench")
	raw, _ := json.MarshalIndent(map[string]any{
		"measured_at": time.Now().UTC().Format(time.RFC3339), "cores": runtime.NumCPU(),
		"load_average": map[string]string{"start": loadAtStart, "end": loadAtEnd}, "results": results,
	}, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(raw, '\n'), 0o644); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Measured performance\n\n`make bench` on this machine (%d cores), %s. ", runtime.NumCPU(), time.Now().UTC().Format("2006-01-02"))
	b.WriteString("Kandy simulator at zero latency; dynalite and local-kms on loopback.\n")
	fmt.Fprintf(&b, "One-minute load average %s at the start and %s at the end: timings are noisy when other work shares the machine.\n\n", loadAtStart, loadAtEnd)
	b.WriteString("| what | measured | budget | | goal | |\n|---|---|---|---|---|---|\n")
	for _, r := range results {
		status, goal := "", ""
		if r.Pass != nil {
			status = map[bool]string{true: "pass", false: "**missed**"}[*r.Pass]
		}
		if r.GoalMet != nil {
			goal = map[bool]string{true: "met", false: "not met"}[*r.GoalMet]
		}
		fmt.Fprintf(&b, "| %s | %.2f %s | %s | %s | %s | %s |\n", r.Name, r.Value, r.Unit, r.Budget, status, r.Goal, goal)
	}
	var notes []string
	for _, r := range results {
		if r.Note != "" {
			notes = append(notes, fmt.Sprintf("- %s: %s", r.Name, r.Note))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\nNotes:\n" + strings.Join(notes, "\n") + "\n")
	}
	return os.WriteFile(filepath.Join(dir, "results.md"), []byte(b.String()), 0o644)
}
