package guard

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/local/internal/slowclient"
)

// request is a request to a guarded server, as a client sends it.
type request struct {
	method, host string
	origins      []string          // nil: no Origin header
	header       map[string]string // Sec-Fetch-* and the like
}

func (r request) build() *http.Request {
	req := httptest.NewRequest(r.method, "/", nil)
	req.Host = r.host
	if r.origins != nil {
		req.Header["Origin"] = r.origins
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	return req
}

type guardCase struct {
	r   request
	let bool
}

// fetch is the Fetch Metadata a browser sends.
func fetch(site, mode, dest string) map[string]string {
	return map[string]string{"Sec-Fetch-Site": site, "Sec-Fetch-Mode": mode, "Sec-Fetch-Dest": dest}
}

// checkGuard sends each request through g and checks that it reaches the
// handler exactly when let says, and is refused with 403 otherwise.
func checkGuard(t *testing.T, g Guard, cases []guardCase) {
	t.Helper()
	reached := 0
	h := g.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached++ }))
	for _, c := range cases {
		r, let := c.r, c.let
		before := reached
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r.build())
		switch {
		case let && reached != before+1:
			t.Errorf("%s: %+v: refused (%d %s), want it let in", g.Name, r, w.Code, w.Body)
		case !let && reached != before:
			t.Errorf("%s: %+v: let in, want it refused", g.Name, r)
		case !let && w.Code != http.StatusForbidden:
			t.Errorf("%s: %+v: %d, want 403", g.Name, r, w.Code)
		}
	}
}

func TestEveryServerRefusesAForeignHost(t *testing.T) {
	hosts := map[string]bool{
		"127.0.0.1:8000": true, "localhost:8000": true, "LOCALHOST:8000": true, "[::1]:8000": true, "[::1]": true, "localhost": true,
		"evil.example:8000": false, "localhost.evil.example:8000": false, "127.0.0.1.nip.io:8000": false, "127.0.0.2:8000": false,
		"localhost:99999": false, "": false,
	}
	for _, g := range []Guard{{Name: "pages", Audience: Pages}, {Name: "programs", Audience: Programs}} {
		var cases []guardCase
		for host, let := range hosts {
			cases = append(cases, guardCase{request{method: http.MethodPost, host: host}, let})
		}
		checkGuard(t, g, cases)
	}
}

// A server pages call answers programs, the allowed origins' pages, its
// own page and the user's navigation; no other page, whether it names its
// origin or (a no-cors request) only Fetch Metadata tells.
func TestPagesServerLetsInOnlyAllowedOrigins(t *testing.T) {
	g := Guard{Name: "pages", Audience: Pages, Origins: []string{"http://127.0.0.1:3000", "http://localhost:5173"}}
	const host = "127.0.0.1:3000"
	one := func(o string) []string { return []string{o} }
	checkGuard(t, g, []guardCase{
		{request{method: "POST", host: host}, true}, // an SDK, curl
		{request{method: "POST", host: host, origins: one("http://127.0.0.1:3000")}, true},
		{request{method: "POST", host: host, origins: one("HTTP://LOCALHOST:5173")}, true},
		{request{method: "POST", host: "evil.example:3000", origins: one("http://127.0.0.1:3000")}, false},
		{request{method: "POST", host: host, origins: one("http://evil.example")}, false},
		{request{method: "POST", host: host, origins: one("http://127.0.0.1:3001")}, false},
		{request{method: "POST", host: host, origins: one("http://localhost:3000")}, false}, // another origin than 127.0.0.1's
		{request{method: "POST", host: host, origins: one("null")}, false},
		{request{method: "POST", host: host, origins: one("")}, false},
		{request{method: "POST", host: host, origins: []string{"http://127.0.0.1:3000", "http://evil.example"}}, false},
		{request{method: "GET", host: host, header: fetch("same-origin", "cors", "empty")}, true},
		{request{method: "GET", host: host, header: fetch("none", "navigate", "document")}, true},
		{request{method: "GET", host: host, header: fetch("cross-site", "navigate", "document")}, true}, // a link followed
		{request{method: "GET", host: host, header: fetch("same-site", "no-cors", "empty")}, false},
		{request{method: "GET", host: host, header: fetch("cross-site", "no-cors", "image")}, false},
		{request{method: "GET", host: host, header: fetch("same-site", "navigate", "iframe")}, false},
		{request{method: "POST", host: host, header: fetch("same-site", "navigate", "document")}, false},
		{request{method: "GET", host: host, origins: one("http://localhost:5173"), header: fetch("same-site", "cors", "empty")}, true},
	})
}

// A server only programs call answers no browser at all, whatever origin
// it names; one with a token wants it, in its header or its path.
func TestProgramsServerRefusesEveryBrowser(t *testing.T) {
	const host = "127.0.0.1:8000"
	g := Guard{Name: "programs", Audience: Programs, Origins: []string{"http://127.0.0.1:3000"}}
	checkGuard(t, g, []guardCase{
		{request{method: "POST", host: host}, true},
		{request{method: "GET", host: host}, true},
		{request{method: "POST", host: host, origins: []string{"http://127.0.0.1:3000"}}, false},
		{request{method: "GET", host: host, header: fetch("same-origin", "no-cors", "empty")}, false},
		{request{method: "GET", host: host, header: fetch("none", "navigate", "document")}, false},
		{request{method: "GET", host: host, header: map[string]string{"Sec-Fetch-User": "?1"}}, false},
		{request{method: "POST", host: host, header: map[string]string{"Sec-Fetch-Storage-Access": "none"}}, false},
	})
	g.Token = NewBackend("/nowhere", "x").Token
	checkGuard(t, g, []guardCase{
		{request{method: "POST", host: host}, false},
		{request{method: "POST", host: host, header: map[string]string{TokenHeader: g.Token}}, true},
		{request{method: "POST", host: host, header: map[string]string{TokenHeader: "wrong"}}, false},
	})
}

func TestTokenInPathIsRemoved(t *testing.T) {
	g := Guard{Name: "runtime", Audience: Programs, Token: "t0k", TokenInPath: true}
	var saw string
	h := g.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { saw = r.URL.Path }))
	for path, want := range map[string]int{"/t0k/2018-06-01/next": 200, "/2018-06-01/next": 403, "/t0kx/next": 403, "/x/t0k/next": 403} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Host = "127.0.0.1:1"
		saw = ""
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("%s: %d, want %d", path, w.Code, want)
		}
		if want == 200 && saw != "/2018-06-01/next" {
			t.Errorf("%s: the handler saw %q, want the path without the token", path, saw)
		}
	}
}

func TestBodyOverTheLimitIsRefused(t *testing.T) {
	g := Guard{Name: "limited", Audience: Programs, MaxBody: 8}
	var read error
	h := g.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { _, read = io.ReadAll(r.Body) }))
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("123456789"))
	r.Host = "127.0.0.1"
	h.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a declared 9-byte body: %d, want 413", w.Code)
	}
	r = httptest.NewRequest(http.MethodPost, "/", io.MultiReader(strings.NewReader("12345"), strings.NewReader("6789")))
	r.Host, r.ContentLength = "127.0.0.1", -1
	h.ServeHTTP(httptest.NewRecorder(), r)
	var tooBig *http.MaxBytesError
	if !errors.As(read, &tooBig) {
		t.Errorf("an undeclared 9-byte body: the handler read it with %v, want a MaxBytesError", read)
	}
}

// backend is a server behind a front: it notes what reached it and
// answers with CORS headers of its own, as dynalite and cognito-local do.
type backend struct {
	token   string
	mu      sync.Mutex
	reached []http.Header
}

func (b *backend) seen() []http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reached
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(TokenHeader) != b.token {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	b.mu.Lock()
	b.reached = append(b.reached, r.Header.Clone())
	b.mu.Unlock()
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Access-Control-Allow-Methods", "*")
	fmt.Fprint(w, "from the backend")
}

// serveBackend serves b on a Unix socket, as a backend listens.
func serveBackend(t *testing.T, b *backend) Backend {
	t.Helper()
	dir, err := SocketDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	be := NewBackend(dir, "test")
	b.token = be.Token
	l, err := net.Listen("unix", be.Socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: b}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return be
}

// serveFront serves f on a free port behind its guard.
func serveFront(t *testing.T, f *Front) *Server {
	t.Helper()
	srv, err := f.Guard.Serve(0, f.Handler())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func TestFrontAnswersCORSItselfAndPassesTheToken(t *testing.T) {
	b := &backend{}
	f := &Front{Guard: Guard{Name: "test", Audience: Pages, Origins: []string{"http://127.0.0.1:3000"}}, Backend: serveBackend(t, b)}
	front := serveFront(t, f)
	do := func(method, origin string, header ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, front.URL+"/", strings.NewReader("{}"))
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	pre := do(http.MethodOptions, "http://127.0.0.1:3000", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "x-amz-target,content-type")
	wantAnswer(t, "preflight from the console", pre, 204, "Access-Control-Allow-Origin", "http://127.0.0.1:3000",
		"Access-Control-Allow-Methods", "POST", "Access-Control-Allow-Headers", "x-amz-target,content-type")
	if len(b.seen()) != 0 {
		t.Errorf("the preflight reached the backend")
	}

	got := do(http.MethodPost, "http://127.0.0.1:3000")
	wantAnswer(t, "a call from the console", got, 200)
	if origins, want := got.Header.Values("Access-Control-Allow-Origin"), []string{"http://127.0.0.1:3000"}; !slices.Equal(origins, want) {
		t.Errorf("a call from the console: Access-Control-Allow-Origin %q, want %q", origins, want)
	}
	if got.Header.Get("Access-Control-Allow-Methods") != "" {
		t.Errorf("the backend's own CORS header came through: %v", got.Header)
	}
	if seen := b.seen(); len(seen) != 1 {
		t.Errorf("the backend saw %d requests, want one: %v", len(seen), seen)
	} else if o := seen[0].Get("Origin"); o != "" {
		t.Errorf("the backend saw the Origin %q, want none", o)
	}

	wantAnswer(t, "a call from another origin", do(http.MethodPost, "http://evil.example"), 403, "Access-Control-Allow-Origin", "")
	wantAnswer(t, "a preflight from another origin", do(http.MethodOptions, "http://evil.example", "Access-Control-Request-Method", "POST"), 403,
		"Access-Control-Allow-Origin", "")
	wantAnswer(t, "a call with no Origin (an SDK)", do(http.MethodPost, ""), 200, "Access-Control-Allow-Origin", "")
	if n := len(b.seen()); n != 2 {
		t.Errorf("the backend saw %d requests, want the console's and the SDK's", n)
	}
}

// Every kind of server has its timeouts; only the Runtime API's answers,
// a long poll, have no bound.
func TestEveryServerKindHasItsTimeouts(t *testing.T) {
	for name, to := range map[string]Timeouts{"HTTPAPI": HTTPAPI, "Lambda": Lambda, "Service": Service, "Runtime": Runtime} {
		if to.ReadHeader <= 0 {
			t.Errorf("%s: read header timeout %v, want one", name, to.ReadHeader)
		}
		if to.Read < to.ReadHeader {
			t.Errorf("%s: read timeout %v, want at least the read header timeout %v", name, to.Read, to.ReadHeader)
		}
		if to.Write <= to.Read && name != "Runtime" {
			t.Errorf("%s: write timeout %v, want over the read timeout %v", name, to.Write, to.Read)
		}
		if to.Idle <= 0 {
			t.Errorf("%s: idle timeout %v, want one", name, to.Idle)
		}
	}
}

// TestSlowBodyIsCut: a body sent a byte at a time loses its connection
// once the read timeout has passed, however long the sender would go on.
func TestSlowBodyIsCut(t *testing.T) {
	g := Guard{Name: "slow", Audience: Programs, Timeouts: Timeouts{ReadHeader: 200 * time.Millisecond, Read: time.Second, Write: 2 * time.Second, Idle: time.Second}}
	srv, err := g.Serve(0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for name, request := range map[string]string{
		"slow body":   "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n",
		"slow header": "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n",
	} {
		took, err := slowclient.Trickle(strings.TrimPrefix(srv.URL, "http://"), request, 150*time.Millisecond, 10*time.Second)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if took > 2*time.Second {
			t.Errorf("%s: cut after %v, want about 1 s", name, took)
		}
		t.Logf("%s: cut after %v", name, took.Round(10*time.Millisecond))
	}
}

// TestFrontPassesOnlyWholeBodies: a body that does not arrive within the
// read timeout never reaches the backend, even in part (dynalite dies of
// an aborted request); a whole one does.
func TestFrontPassesOnlyWholeBodies(t *testing.T) {
	b := &backend{}
	f := &Front{Guard: Guard{Name: "test", Audience: Programs, Timeouts: Timeouts{ReadHeader: time.Second, Read: time.Second, Write: 2 * time.Second, Idle: time.Second}},
		Backend: serveBackend(t, b)}
	front := serveFront(t, f)
	took, err := slowclient.Trickle(strings.TrimPrefix(front.URL, "http://"), "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n", 150*time.Millisecond, 10*time.Second)
	if err != nil {
		t.Errorf("a slow body: %v", err)
	}
	if took > 2*time.Second {
		t.Errorf("a slow body: cut after %v, want about 1 s", took)
	}
	if n := len(b.seen()); n != 0 {
		t.Errorf("the backend saw %d requests of a body that never arrived", n)
	}
	resp, err := http.Post(front.URL+"/", "application/json", strings.NewReader(`{"whole":true}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantAnswer(t, "a whole body", resp, 200)
	if seen := b.seen(); len(seen) != 1 {
		t.Errorf("a whole body: the backend saw %d requests, want 1", len(seen))
	} else if n := seen[0].Get("Content-Length"); n != "14" {
		t.Errorf("a whole body: the backend saw Content-Length %q, want 14", n)
	}
}

// wantAnswer reports, naming what, resp's status and each header of kv
// (name, value, …) where not the wanted one; "" wants no header.
func wantAnswer(t *testing.T, what string, resp *http.Response, status int, kv ...string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("%s: status %d, want %d", what, resp.StatusCode, status)
	}
	for i := 0; i < len(kv); i += 2 {
		if got := resp.Header.Get(kv[i]); got != kv[i+1] {
			t.Errorf("%s: %s %q, want %q", what, kv[i], got, kv[i+1])
		}
	}
}
