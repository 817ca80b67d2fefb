package kandy_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/kandysim"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/kandy"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// An error says what failed, with Kandy's status or the lack of one, the
// HTTP status, and Kandy's message made safe to log.
func TestErrorText(t *testing.T) {
	for _, tt := range []struct {
		httpStatus int
		body, want string
	}{
		{200, `{"status":53,"message":"does not exist"}`, "create user: kandy: user does not exist (status 53, http 200): does not exist"},
		{200, `{"status":0,"message":"x"}`, "create user: kandy: unavailable (status 0, http 200): answer lacks a result"},
		{502, ``, "create user: kandy: unavailable (no envelope, http 502): server error"},
		{401, ``, "create user: kandy: the project key was refused (no envelope, http 401): refused by Kandy"},
		{426, ``, "create user: kandy: request rejected (no envelope, http 426): API upgrade required"},
		{200, `{"status":14}`, "create user: kandy: request rejected (status 14, http 200)"},
		{200, `{"status":14,"message":"bad\u0000 in\nput\u007f"}`, "create user: kandy: request rejected (status 14, http 200): bad input"},
		{200, `{"status":14,"message":"` + strings.Repeat("a", 120) + `"}`, "create user: kandy: request rejected (status 14, http 200): " + strings.Repeat("a", 120)},
		{200, `{"status":14,"message":"` + strings.Repeat("b", 121) + `"}`, "create user: kandy: request rejected (status 14, http 200): " + strings.Repeat("b", 120)},
		{200, `not json`, "create user: kandy: unavailable (no envelope, http 200): malformed answer"},
	} {
		c := answering(t, tt.httpStatus, tt.body)
		_, err := c.CreateUser(context.Background(), "a", "US")
		if err == nil || err.Error() != tt.want {
			t.Errorf("%d %s:\n got %v\nwant %s", tt.httpStatus, tt.body, err, tt.want)
		}
	}
	if got := (&kandy.Error{Op: "x", Kind: kandy.ErrRejected}).Error(); got != "x: kandy: request rejected (status 0)" {
		t.Errorf("no HTTP status: %s", got)
	}
}

// answering is a client of a server that answers every create with one
// answer, and checks how the client sends it.
func answering(t *testing.T, httpStatus int, body string) *kandy.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/domains/accesstokens" {
			if r.Method != http.MethodGet {
				t.Errorf("token request: method %s, want GET", r.Method)
			}
			if ct := r.Header.Get("Content-Type"); ct != "" {
				t.Errorf("token request: Content-Type %q, want none", ct)
			}
			fmt.Fprint(w, `{"status":0,"result":{"domain_access_token":"DATabcdef0123456789"}}`)
			return
		}
		for _, h := range []string{"Content-Type", "Accept"} {
			if got := r.Header.Get(h); got != "application/json" {
				t.Errorf("create sent %s %q, want application/json", h, got)
			}
		}
		w.WriteHeader(httpStatus)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	c, err := kandy.New(kandy.Options{BaseURL: srv.URL, Keys: staticKeys{APIKey: "DAKk", APISecret: "DASs"}, Backoff: []time.Duration{}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// With no Backoff given, idempotent calls are retried.
func TestDefaultBackoffRetries(t *testing.T) {
	sim := kandysim.New(kandysim.Options{})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	key, secret := sim.ProjectKey()
	c, err := kandy.New(kandy.Options{BaseURL: srv.URL, Keys: staticKeys{APIKey: key, APISecret: secret}})
	if err != nil {
		t.Fatal(err)
	}
	sim.Inject(kandysim.EndpointListUsers, kandysim.FaultHTTP500, 2)
	if _, err := c.ListUsers(context.Background()); err != nil {
		t.Fatalf("list = %v after %d calls, want success after 2 retries", err, sim.Calls(kandysim.EndpointListUsers))
	}
	if n := sim.Calls(kandysim.EndpointListUsers); n != 3 {
		t.Fatalf("list succeeded after %d calls, want 3: two retries", n)
	}
}

// The default HTTP client never waits without end.
func TestHTTPClientTimeouts(t *testing.T) {
	c := kandy.NewHTTPClient()
	tr, ok := c.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport %T, want *http.Transport", c.Transport)
	}
	if c.Timeout < time.Second || c.Timeout > 30*time.Second {
		t.Errorf("client timeout %v, want within [1s, 30s]", c.Timeout)
	}
	if tr.TLSHandshakeTimeout < time.Second {
		t.Errorf("TLS handshake timeout %v, want 1s or more", tr.TLSHandshakeTimeout)
	}
	if tr.ResponseHeaderTimeout < time.Second || tr.ResponseHeaderTimeout > c.Timeout {
		t.Errorf("response header timeout %v, want within [1s, the client's %v]", tr.ResponseHeaderTimeout, c.Timeout)
	}
	if tr.IdleConnTimeout < 10*time.Second {
		t.Errorf("idle connection timeout %v, want 10s or more", tr.IdleConnTimeout)
	}
	if err := c.CheckRedirect(nil, nil); !errors.Is(err, http.ErrUseLastResponse) {
		t.Fatal("redirects are followed")
	}
}

// A caller waiting for another's token fetch stops when its own context
// ends.
func TestWaitingForTheTokenHonoursTheContext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/domains/accesstokens" {
			fmt.Fprint(w, `{"status":0,"result":{"users":[]}}`)
			return
		}
		<-release
		fmt.Fprint(w, `{"status":0,"result":{"domain_access_token":"DATabcdef0123456789"}}`)
	}))
	defer srv.Close()
	c, _ := kandy.New(kandy.Options{BaseURL: srv.URL, Keys: staticKeys{APIKey: "DAKk", APISecret: "DASs"}})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _, _ = c.ListUsers(context.Background()) }() // fetches the token
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.ListUsers(ctx)
	if err == nil {
		t.Fatal("the waiting caller succeeded")
	}
	for _, want := range []error{kandy.ErrUnavailable, context.DeadlineExceeded, provision.ErrKandyUnavailable} {
		if !errors.Is(err, want) {
			t.Errorf("waiting caller = %v, want %v", err, want)
		}
	}
	if want := "domain access token: kandy: unavailable (no envelope): waiting for token"; err.Error() != want {
		t.Errorf("waiting caller\n got %v\nwant %s", err, want)
	}
	close(release)
	wg.Wait()
}

// An answer cut off in the middle is a transport failure.
func TestAnswerCutShort(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/domains/accesstokens" {
			fmt.Fprint(w, `{"status":0,"result":{"domain_access_token":"DATabcdef0123456789"}}`)
			return
		}
		w.Header().Set("Content-Length", "1000")
		fmt.Fprint(w, `{"status":0,`)
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.(*net.TCPConn).Close()
	}))
	defer srv.Close()
	c, _ := kandy.New(kandy.Options{BaseURL: srv.URL, Keys: staticKeys{APIKey: "DAKk", APISecret: "DASs"}, Backoff: []time.Duration{}})
	_, err := c.CreateUser(context.Background(), "a", "US")
	if !errors.Is(err, kandy.ErrUnavailable) {
		t.Fatalf("err = %v, want %v", err, kandy.ErrUnavailable)
	}
	if want := "create user: kandy: unavailable (no envelope, http 200): reading answer: transport failure"; err.Error() != want {
		t.Errorf("err\n got %v\nwant %s", err, want)
	}
}

// A Kandy that cannot be reached is a transport failure, and says nothing
// of the URL (it carries the project key).
func TestKandyUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, _ := kandy.New(kandy.Options{BaseURL: "http://" + addr, Keys: staticKeys{APIKey: "DAKkey0123456789", APISecret: "DASsecret0123456789"}, Backoff: []time.Duration{}})
	err = c.Ping(context.Background())
	if !errors.Is(err, provision.ErrKandyUnavailable) {
		t.Fatalf("err = %v, want %v", err, provision.ErrKandyUnavailable)
	}
	if want := "domain access token: kandy: unavailable (no envelope): transport failure"; err.Error() != want {
		t.Errorf("err\n got %v\nwant %s", err, want)
	}
}
