package guard

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/local/internal/slowclient"
)

func TestGuardLetsInLoopbackHostsAndInvitedOrigins(t *testing.T) {
	p := Policy{Origins: []string{"http://127.0.0.1:3000", "http://localhost:5173"}}
	reached := 0
	h := p.Guard("test", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { reached++ }))
	tests := []struct {
		host    string
		origins []string // nil: no Origin header
		let     bool
	}{
		{"127.0.0.1:8000", nil, true},
		{"localhost:8000", nil, true},
		{"LOCALHOST:8000", nil, true},
		{"[::1]:8000", nil, true},
		{"[::1]", nil, true},
		{"localhost", nil, true},
		{"127.0.0.1:8000", []string{"http://127.0.0.1:3000"}, true},
		{"127.0.0.1:8000", []string{"HTTP://LOCALHOST:5173"}, true},
		{"evil.example:8000", nil, false},
		{"localhost.evil.example:8000", nil, false},
		{"127.0.0.1.nip.io:8000", nil, false},
		{"127.0.0.2:8000", nil, false},
		{"localhost:99999", nil, false},
		{"", nil, false},
		{"127.0.0.1:8000", []string{"http://evil.example"}, false},
		{"127.0.0.1:8000", []string{"http://127.0.0.1:3001"}, false},
		{"127.0.0.1:8000", []string{"null"}, false},
		{"127.0.0.1:8000", []string{""}, false},
		{"127.0.0.1:8000", []string{"http://127.0.0.1:3000", "http://evil.example"}, false},
		{"evil.example:8000", []string{"http://127.0.0.1:3000"}, false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Host = tt.host
		if tt.origins != nil {
			r.Header["Origin"] = tt.origins
		}
		before := reached
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch {
		case tt.let && reached != before+1:
			t.Errorf("Host %q Origin %q: refused (%d %s), want it let in", tt.host, tt.origins, w.Code, w.Body)
		case !tt.let && reached != before:
			t.Errorf("Host %q Origin %q: let in, want it refused", tt.host, tt.origins)
		case !tt.let && w.Code != http.StatusForbidden:
			t.Errorf("Host %q Origin %q: %d, want 403", tt.host, tt.origins, w.Code)
		}
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

func TestFrontAnswersCORSItselfAndPassesTheToken(t *testing.T) {
	b := &backend{token: NewToken()}
	srv := httptest.NewServer(b)
	defer srv.Close()
	f := &Front{Name: "test", Policy: Policy{Origins: []string{"http://127.0.0.1:3000"}}, Backend: Backend{URL: srv.URL, Token: b.token}}
	front := httptest.NewServer(f.Handler())
	defer front.Close()
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

// Every kind of server has all four timeouts.
func TestEveryServerKindHasEveryTimeout(t *testing.T) {
	for name, to := range map[string]Timeouts{"HTTPAPI": HTTPAPI, "Lambda": Lambda, "Service": Service} {
		s := to.Server(http.NotFoundHandler())
		if s.ReadHeaderTimeout <= 0 {
			t.Errorf("%s: read header timeout %v, want one", name, s.ReadHeaderTimeout)
		}
		if s.ReadTimeout < s.ReadHeaderTimeout {
			t.Errorf("%s: read timeout %v, want at least the read header timeout %v", name, s.ReadTimeout, s.ReadHeaderTimeout)
		}
		if s.WriteTimeout <= s.ReadTimeout {
			t.Errorf("%s: write timeout %v, want over the read timeout %v", name, s.WriteTimeout, s.ReadTimeout)
		}
		if s.IdleTimeout <= 0 {
			t.Errorf("%s: idle timeout %v, want one", name, s.IdleTimeout)
		}
	}
}

// TestSlowBodyIsCut: a body sent a byte at a time loses its connection
// once the read timeout has passed, however long the sender would go on.
func TestSlowBodyIsCut(t *testing.T) {
	l, err := Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	srv := Timeouts{ReadHeader: 200 * time.Millisecond, Read: time.Second, Write: 2 * time.Second, Idle: time.Second}.Server(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	for name, request := range map[string]string{
		"slow body":   "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n",
		"slow header": "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n",
	} {
		took, err := slowclient.Trickle(l.Addr().String(), request, 150*time.Millisecond, 10*time.Second)
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
	b := &backend{token: NewToken()}
	srv := httptest.NewServer(b)
	defer srv.Close()
	f := &Front{Name: "test", Backend: Backend{URL: srv.URL, Token: b.token}}
	l, err := Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	front := Timeouts{ReadHeader: time.Second, Read: time.Second, Write: 2 * time.Second, Idle: time.Second}.Server(f.Handler())
	go func() { _ = front.Serve(l) }()
	defer front.Close()
	took, err := slowclient.Trickle(l.Addr().String(), "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n", 150*time.Millisecond, 10*time.Second)
	if err != nil {
		t.Errorf("a slow body: %v", err)
	}
	if took > 2*time.Second {
		t.Errorf("a slow body: cut after %v, want about 1 s", took)
	}
	if n := len(b.seen()); n != 0 {
		t.Errorf("the backend saw %d requests of a body that never arrived", n)
	}
	resp, err := http.Post("http://"+l.Addr().String()+"/", "application/json", strings.NewReader(`{"whole":true}`))
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
