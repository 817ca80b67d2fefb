package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kandy-provisioner/kandy-provisioner/local/internal/listeners"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
)

// planPage makes, from its own origin, the calls its fragment lists (a
// JSON list of pageCall), one after the other, each given 5 s, and sets
// window.results to what each got: "status N body", "opaque" (a no-cors
// answer, which a page cannot read), "error …" (the browser refused it,
// or it ran out of time) or "form sent" (a form posted into a frame,
// whose answer a page cannot read either); then its title to "done".
const planPage = `<!doctype html><title>loading</title><body><script>
const plan = JSON.parse(decodeURIComponent(location.hash.slice(1)));
const post = (c) => new Promise((done) => {
  const frame = document.createElement("iframe");
  frame.name = "f" + Math.random().toString(36).slice(2);
  const form = document.createElement("form");
  Object.assign(form, { method: "POST", action: c.url, target: frame.name });
  for (const [k, v] of Object.entries(c.form)) {
    const input = document.createElement("input");
    Object.assign(input, { type: "hidden", name: k, value: v });
    form.appendChild(input);
  }
  frame.onload = () => done("form sent");
  setTimeout(() => done("form sent"), 5000);
  document.body.append(frame, form);
  form.submit();
});
(async () => {
  const results = {};
  for (const c of plan) {
    try {
      if (c.form) {
        results[c.name] = await post(c);
        continue;
      }
      const r = await fetch(c.url, { method: c.method, mode: c.mode || "cors", headers: c.headers || {}, body: c.body,
        signal: AbortSignal.timeout(5000) });
      results[c.name] = r.type === "opaque" ? "opaque" : "status " + r.status + " " + await r.text();
    } catch (e) {
      results[c.name] = "error " + e.message;
    }
  }
  window.results = results;
  document.title = "done";
})();
</script>`

// pageCall is one call a planPage makes.
type pageCall struct {
	Name    string            `json:"name"`
	URL     string            `json:"url"`
	Method  string            `json:"method"`
	Mode    string            `json:"mode,omitempty"` // "cors" (the default) or "no-cors"
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
	// Form, if set, is posted by a form into a frame instead.
	Form map[string]string `json:"form,omitempty"`
}

// corsPages are two planPages on two local origins, one of them allowed.
type corsPages struct{ allowed, other *httptest.Server }

func startCORSPages(t *testing.T) corsPages {
	t.Helper()
	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, planPage)
	})
	p := corsPages{allowed: httptest.NewServer(page), other: httptest.NewServer(page)}
	t.Cleanup(p.allowed.Close)
	t.Cleanup(p.other.Close)
	return p
}

// browse opens each page in headless Chromium with its plan, and returns
// what each call got, by page origin and call name.
func browse(t *testing.T, plans map[string][]pageCall) map[string]map[string]string {
	t.Helper()
	return browseWith(t, nil, plans)
}

// browseWith is browse with more Chromium flags.
func browseWith(t *testing.T, flags []string, plans map[string][]pageCall) map[string]map[string]string {
	t.Helper()
	var urls []string
	for page, plan := range plans {
		urls = append(urls, page+"/#"+url.PathEscape(string(mustJSON(t, plan))))
	}
	cmd := exec.Command("node", append([]string{filepath.Join(processes.RepoRoot(), "local", "e2e", "cors.spec.mjs")}, urls...)...)
	cmd.Env = append(os.Environ(), "CHROMIUM_FLAGS="+string(mustJSON(t, flags)))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("browser: %v\n%s", err, out)
	}
	saw := map[string]map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r struct {
			Page string
			Saw  map[string]string
		}
		if json.Unmarshal([]byte(line), &r) == nil {
			saw[r.Page] = r.Saw
		}
	}
	return saw
}

// frontendCalls are what a frontend of the app makes with a user's access
// token: the account from the API, the user from Cognito.
func frontendCalls(run *localRun, access string) []pageCall {
	return []pageCall{
		{Name: "GET /users/me", URL: run.url("API_PORT") + "/users/me", Method: "GET", Headers: map[string]string{"Authorization": "Bearer " + access}},
		{Name: "Cognito GetUser", URL: run.url("AUTH_PORT") + "/", Method: "POST", Headers: map[string]string{
			"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AWSCognitoIdentityProviderService.GetUser"},
			Body: string(`{"AccessToken":"` + access + `"}`)},
	}
}

// corsFromOtherOrigins: in Chromium, a frontend on the allowed origin
// reads the account from the API and the user from Cognito; the same
// calls from another origin are refused, and so is each attack of issue
// 21 (see attacks); the preflights follow the template.
func corsFromOtherOrigins(t *testing.T, run *localRun, pages corsPages) {
	sub := run.signUp(t, "cora@example.com")
	access, _ := run.signIn(t, "cora@example.com")
	attack := newAttacks(t, run)
	saw := browse(t, map[string][]pageCall{
		pages.allowed.URL: frontendCalls(run, access),
		pages.other.URL:   append(frontendCalls(run, access), attack.calls...),
	})
	allowed, other := saw[pages.allowed.URL], saw[pages.other.URL]
	for call, want := range map[string]string{"GET /users/me": kandyUserID(sub), "Cognito GetUser": "cora@example.com"} {
		got := allowed[call]
		if !strings.HasPrefix(got, "status 200 ") {
			t.Errorf("the allowed origin's %s saw %q, want status 200", call, got)
		} else if !strings.Contains(got, want) {
			t.Errorf("the allowed origin's %s saw %q, without %s", call, got, want)
		}
	}
	for _, c := range frontendCalls(run, access) {
		if got := other[c.Name]; !strings.HasPrefix(got, "error ") {
			t.Errorf("the other origin's %s saw %q, want the browser to refuse it", c.Name, got)
		}
	}
	attack.check(t, other, pages.other.URL)
	t.Logf("the allowed origin's page saw: %v", allowed)
	t.Logf("the other origin's page saw: %v", other)
	checkPreflight(t, run, pages)
}

// checkPreflight: API Gateway's answer to a preflight from an allowed
// origin, from the template's CorsConfiguration; another origin's is
// refused before the API, with no CORS header.
func checkPreflight(t *testing.T, run *localRun, pages corsPages) {
	tpl, err := samtemplate.Load(samtemplate.Path())
	if err != nil {
		t.Fatal(err)
	}
	cors, _ := tpl.Resources["HttpApi"].Properties["CorsConfiguration"].(map[string]any)
	join := func(v any) string { return strings.Trim(strings.ReplaceAll(fmt.Sprint(v), " ", ","), "[]") }
	for origin, allowed := range map[string]bool{pages.allowed.URL: true, pages.other.URL: false} {
		req, _ := http.NewRequest(http.MethodOptions, run.url("API_PORT")+"/users", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization")
		resp, err := run.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		want, status := http.Header{}, http.StatusForbidden
		if allowed {
			want = http.Header{"Access-Control-Allow-Origin": {origin}, "Access-Control-Allow-Methods": {join(cors["AllowMethods"])},
				"Access-Control-Allow-Headers": {join(cors["AllowHeaders"])}, "Access-Control-Max-Age": {fmt.Sprint(cors["MaxAge"])}}
			status = http.StatusNoContent
		}
		for _, k := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Access-Control-Max-Age"} {
			if h.Get(k) != want.Get(k) {
				t.Errorf("preflight from %s: %d, %s = %q, want %q", origin, resp.StatusCode, k, h.Get(k), want.Get(k))
			}
		}
		if resp.StatusCode != status {
			t.Errorf("preflight from %s: %d, want %d", origin, resp.StatusCode, status)
		}
	}
}

// loopbackOnly: every listening socket of make run's processes is on
// 127.0.0.1, and each configured port is one of them.
func loopbackOnly(t *testing.T, run *localRun) {
	socks, err := listeners.Listening(processTree(t, run.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	listening := map[int]bool{}
	for _, s := range socks {
		listening[int(s.Addr.Port())] = true
		if s.Addr.Addr() != netip.MustParseAddr("127.0.0.1") {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", s.PID))
			t.Errorf("%s (pid %d) listens on %s, not 127.0.0.1", strings.TrimSpace(string(comm)), s.PID, s.Addr)
		}
	}
	for name, p := range run.ports {
		if !listening[p] {
			t.Errorf("%s=%d: make run does not listen there", name, p)
		}
	}
	t.Logf("%d listening sockets of make run checked", len(socks))
}

// lambdaVariables are the variables Lambda itself sets (and, by prefix,
// those of the runtime API, X-Ray and the local endpoints).
var (
	lambdaVariables = []string{"PATH", "LANG", "TZ", "LD_LIBRARY_PATH", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "_HANDLER", "_X_AMZN_TRACE_ID",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_EXECUTION_ENV"}
	lambdaPrefixes = []string{"AWS_LAMBDA_", "AWS_XRAY_", "_AWS_XRAY_", "AWS_ENDPOINT_URL_"}
)

// cleanEnvironment reads each running function's environment: only
// Lambda's variables, the template's and the local endpoints, nothing of
// the shell make run started from (AWS_PROFILE=leak, ...).
func cleanEnvironment(t *testing.T, run *localRun) {
	tpl, err := samtemplate.Load(samtemplate.Path())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, pid := range processTree(t, run.cmd.Process.Pid) {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if filepath.Base(exe) != "bootstrap" || err != nil {
			continue
		}
		env := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		id := ""
		for _, e := range env {
			if v, ok := strings.CutPrefix(e, "AWS_LAMBDA_FUNCTION_NAME="); ok {
				id = v
			}
		}
		seen[id]++
		allowed := append(slices.Clone(lambdaVariables), slices.Collect(maps.Keys(tpl.Variables(id)))...)
		for _, e := range env {
			name, value, _ := strings.Cut(e, "=")
			known := slices.Contains(allowed, name) || slices.ContainsFunc(lambdaPrefixes, func(p string) bool { return strings.HasPrefix(name, p) })
			if !known || strings.Contains(value, "leak") {
				t.Errorf("%s (pid %d) has %s from outside Lambda and the template", id, pid, name)
			}
		}
	}
	defaults, err := samtemplate.ParameterDefaults(samtemplate.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range tpl.Functions() {
		if tpl.Deployed(id, defaults) && seen[id] == 0 {
			t.Errorf("no running %s to check", id)
		}
	}
	t.Logf("function processes checked: %v", seen)
}

// state is what a restart with DATA_DIR must keep.
type state struct {
	Pool, Client        string
	SimUsers, PoolUsers int
	Keys                []string
}

func snapshot(t *testing.T, run *localRun) state {
	t.Helper()
	ctx := context.Background()
	users, err := run.cognito.ListUsers(ctx, &cip.ListUsersInput{UserPoolId: aws.String(run.poolID)})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := processes.KMS(run.url("KMS_PORT")).ListKeys(ctx, &kms.ListKeysInput{})
	if err != nil {
		t.Fatal(err)
	}
	s := state{Pool: run.poolID, Client: run.clientID, SimUsers: run.simUsers(t), PoolUsers: len(users.Users)}
	for _, k := range keys.Keys {
		s.Keys = append(s.Keys, aws.ToString(k.KeyId))
	}
	slices.Sort(s.Keys)
	return s
}
