package gateway

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/kandy-provisioner/kandy-provisioner/local/authorizer"
	"github.com/kandy-provisioner/kandy-provisioner/local/openapicheck"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
)

const adminScope = "aws.cognito.signin.user.admin"

func TestFromTemplate(t *testing.T) {
	tpl, err := samtemplate.Load(samtemplate.Path())
	if err != nil {
		t.Fatal(err)
	}
	api, err := FromTemplate(tpl, "ApiFunction", map[string]string{"CorsAllowedOrigins": "http://a.test, http://b.test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(api.Routes) != len(tpl.HTTPRoutes("ApiFunction")) {
		t.Fatalf("routes = %v", api.Routes)
	}
	for route, r := range api.Routes {
		if !r.JWT {
			t.Errorf("%s: no JWT authorizer", route)
		}
		if want := []string{adminScope}; !slices.Equal(r.Scopes, want) {
			t.Errorf("%s: scopes %q, want %q", route, r.Scopes, want)
		}
	}
	c := api.CORS
	if c == nil {
		t.Fatal("no CORS")
	}
	for _, l := range []struct {
		name      string
		got, want []string
	}{
		{"AllowOrigins", c.AllowOrigins, []string{"http://a.test", "http://b.test"}},
		{"AllowMethods", c.AllowMethods, []string{"GET", "POST", "DELETE"}},
		{"AllowHeaders", c.AllowHeaders, []string{"authorization", "content-type"}},
	} {
		if !slices.Equal(l.got, l.want) {
			t.Errorf("CORS %s %q, want %q", l.name, l.got, l.want)
		}
	}
	if c.MaxAge != 600 {
		t.Errorf("CORS MaxAge %d, want 600", c.MaxAge)
	}
	if api.Burst != 50 {
		t.Errorf("throttling burst %d, want 50", api.Burst)
	}
	if api.Rate != 20 {
		t.Errorf("throttling rate %v, want 20", api.Rate)
	}
}

// signer makes tokens as the local pool does.
type signer struct{ key *rsa.PrivateKey }

func (s signer) token(t *testing.T, claims map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "k1"})
	payload, _ := json.Marshal(claims)
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + enc.EncodeToString(sig)
}

// fakeFunction answers with answer (or err) and keeps the last event.
type fakeFunction struct {
	answer events.APIGatewayV2HTTPResponse
	err    error
	last   *events.APIGatewayV2HTTPRequest
}

func (f *fakeFunction) Invoke(_ context.Context, raw []byte) ([]byte, error) {
	var ev events.APIGatewayV2HTTPRequest
	_ = json.Unmarshal(raw, &ev)
	f.last = &ev
	if f.err != nil {
		return nil, f.err
	}
	return json.Marshal(f.answer)
}

func newGateway(t *testing.T, fn *fakeFunction, api API) (*httptest.Server, signer) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	jwks := fmt.Sprintf(`{"keys":[{"kty":"RSA","kid":"k1","n":%q,"e":%q}]}`, enc.EncodeToString(key.N.Bytes()), enc.EncodeToString([]byte{1, 0, 1}))
	v, err := authorizer.NewVerifier("https://issuer", []string{"client"}, []byte(jwks))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&Gateway{API: api, Verifier: v, Function: fn, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(srv.Close)
	return srv, signer{key}
}

func call(t *testing.T, srv *httptest.Server, method, path string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, strings.TrimSpace(string(body))
}

func TestGatewayAuthorizesAsTheJWTAuthorizer(t *testing.T) {
	fn := &fakeFunction{answer: events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: `{"ok":true}`, Headers: map[string]string{"Content-Type": "application/json"}}}
	srv, s := newGateway(t, fn, API{Routes: map[string]Route{"GET /users/me": {JWT: true, Scopes: []string{adminScope}}}})
	now := time.Now().Unix()
	access := s.token(t, map[string]any{"iss": "https://issuer", "client_id": "client", "sub": "s1", "scope": adminScope, "exp": now + 60, "iat": now})
	id := s.token(t, map[string]any{"iss": "https://issuer", "aud": "client", "sub": "s1", "token_use": "id", "exp": now + 60, "iat": now})
	tests := []struct {
		name, path, auth string
		status           int
		body             string
	}{
		{"no token", "/users/me", "", 401, `{"message":"Unauthorized"}`},
		{"forged token", "/users/me", "Bearer " + access + "x", 401, `{"message":"Unauthorized"}`},
		{"ID token: no scope", "/users/me", "Bearer " + id, 403, `{"message":"Forbidden"}`},
		{"unknown route", "/users", "Bearer " + access, 404, `{"message":"Not Found"}`},
		{"access token", "/users/me", "Bearer " + access, 200, `{"ok":true}`},
		{"access token without Bearer", "/users/me", access, 200, `{"ok":true}`},
	}
	for _, tt := range tests {
		fn.last = nil
		resp, body := call(t, srv, "GET", tt.path, map[string]string{"Authorization": tt.auth})
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.status)
		}
		if body != tt.body {
			t.Errorf("%s: body %s, want %s", tt.name, body, tt.body)
		}
		if (fn.last != nil) != (tt.status == 200) {
			t.Errorf("%s: function invoked = %v", tt.name, fn.last != nil)
		}
	}
	if _, body := call(t, srv, "GET", "/users/me", map[string]string{"Authorization": "Bearer " + access}); body == "" {
		t.Error("no answer to an access token")
	}
	if fn.last == nil {
		t.Fatal("the function was not invoked")
	}
	if sub := fn.last.RequestContext.Authorizer.JWT.Claims["sub"]; sub != "s1" {
		t.Errorf("event's JWT claim sub %q, want s1", sub)
	}
	if fn.last.RouteKey != "GET /users/me" {
		t.Errorf("event's route key %q, want GET /users/me", fn.last.RouteKey)
	}
}

func TestGatewayMapsFailures(t *testing.T) {
	fn := &fakeFunction{}
	srv, _ := newGateway(t, fn, API{Routes: map[string]Route{"GET /open": {}}, Burst: 2, Rate: 0.01})
	for _, tt := range []struct {
		err    error
		status int
	}{
		{processes.ErrThrottled, 429},
		{&processes.FunctionError{Type: "Sandbox.Timedout", Message: "Task timed out"}, 500},
	} {
		fn.err = tt.err
		if resp, body := call(t, srv, "GET", "/open", nil); resp.StatusCode != tt.status {
			t.Errorf("%v: %d %s", tt.err, resp.StatusCode, body)
		}
	}
	// The route's bucket (burst 2) is empty now.
	resp, body := call(t, srv, "GET", "/open", nil)
	if resp.StatusCode != 429 {
		t.Errorf("past the burst: status %d, want 429", resp.StatusCode)
	}
	if want := `{"message":"Too Many Requests"}`; body != want {
		t.Errorf("past the burst: body %s, want %s", body, want)
	}
}

func TestGatewayCORS(t *testing.T) {
	fn := &fakeFunction{answer: events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: `{}`,
		Headers: map[string]string{"Access-Control-Allow-Origin": "*", "X-Kept": "yes"}}}
	cors := &CORS{AllowOrigins: []string{"http://allowed.test"}, AllowMethods: []string{"GET", "POST"}, AllowHeaders: []string{"authorization"}, MaxAge: 600}
	srv, s := newGateway(t, fn, API{Routes: map[string]Route{"GET /users/me": {JWT: true}}, CORS: cors})
	preflight := map[string]string{"Origin": "http://allowed.test", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
	resp, _ := call(t, srv, "OPTIONS", "/users/me", preflight)
	wantStatus(t, "preflight, allowed origin", resp, 204)
	wantHeaders(t, "preflight, allowed origin", resp, "Access-Control-Allow-Origin", "http://allowed.test", "Access-Control-Allow-Methods", "GET,POST",
		"Access-Control-Allow-Headers", "authorization", "Access-Control-Max-Age", "600")
	if fn.last != nil {
		t.Error("preflight, allowed origin: the function was invoked")
	}
	preflight["Origin"] = "http://other.test"
	resp, _ = call(t, srv, "OPTIONS", "/users/me", preflight)
	wantStatus(t, "preflight, other origin", resp, 204)
	wantHeaders(t, "preflight, other origin", resp, "Access-Control-Allow-Origin", "")
	token := s.token(t, map[string]any{"iss": "https://issuer", "client_id": "client", "exp": time.Now().Unix() + 60})
	resp, _ = call(t, srv, "GET", "/users/me", map[string]string{"Origin": "http://allowed.test", "Authorization": token})
	wantHeaders(t, "request, allowed origin", resp, "Access-Control-Allow-Origin", "http://allowed.test", "X-Kept", "yes")
	// A 401 to an allowed origin must carry CORS headers too.
	resp, _ = call(t, srv, "GET", "/users/me", map[string]string{"Origin": "http://allowed.test"})
	wantStatus(t, "no token, allowed origin", resp, 401)
	wantHeaders(t, "no token, allowed origin", resp, "Access-Control-Allow-Origin", "http://allowed.test")
	resp, _ = call(t, srv, "GET", "/users/me", map[string]string{"Origin": "http://other.test", "Authorization": token})
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("request, other origin: Access-Control-Allow-Origin %q (the function's must be dropped)", got)
	}
}

func TestGatewayRefusesEventsLambdaWouldRefuse(t *testing.T) {
	fn := &fakeFunction{answer: events.APIGatewayV2HTTPResponse{StatusCode: 200}}
	srv, _ := newGateway(t, fn, API{Routes: map[string]Route{"POST /open": {}}})
	for _, tt := range []struct {
		name    string
		size    int
		status  int
		invoked bool
	}{
		{"a small body", 1 << 10, 200, true},
		{"a body just under Lambda's event limit", maxEvent - 4<<10, 200, true},
		{"a body over Lambda's event limit", maxEvent + 1, 413, false},
		{"a body over API Gateway's limit", maxPayload + 1, 413, false},
	} {
		fn.last = nil
		resp, err := srv.Client().Post(srv.URL+"/open", "text/plain", strings.NewReader(strings.Repeat("a", tt.size)))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d: %s", tt.name, resp.StatusCode, tt.status, body)
		}
		if invoked := fn.last != nil; invoked != tt.invoked {
			t.Errorf("%s: function invoked %v, want %v", tt.name, invoked, tt.invoked)
		}
		if tt.status == 413 && strings.TrimSpace(string(body)) != `{"message":"Request Entity Too Large"}` {
			t.Errorf("%s: %s", tt.name, body)
		}
	}
}

// slowFunction reports whether its context was still live after the caller
// hung up.
type slowFunction struct {
	started chan struct{}
	live    chan bool
}

func (f slowFunction) Invoke(ctx context.Context, _ []byte) ([]byte, error) {
	close(f.started)
	time.Sleep(200 * time.Millisecond)
	f.live <- ctx.Err() == nil
	return []byte(`{"statusCode":200}`), nil
}

func TestGatewayInvocationOutlivesTheCaller(t *testing.T) {
	fn := slowFunction{started: make(chan struct{}), live: make(chan bool, 1)}
	srv := httptest.NewServer(&Gateway{API: API{Routes: map[string]Route{"GET /open": {}}}, Function: fn, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/open", nil)
	go func() {
		<-fn.started
		cancel()
	}()
	if _, err := srv.Client().Do(req); err == nil {
		t.Fatal("the request should have been cancelled")
	}
	if !<-fn.live {
		t.Error("the invocation was cancelled with its caller; Lambda runs it to the end")
	}
}

// TestGatewayChecksTheContract: with a contract, an answer that breaks the
// API's description is delivered as the function sent it, and the
// violation is logged and named in ViolationHeader, with the route and
// the difference; a good answer, and a request to no route, are not.
func TestGatewayChecksTheContract(t *testing.T) {
	contract, err := openapicheck.Load()
	if err != nil {
		t.Fatal(err)
	}
	account := `{"user_id":"u1","full_user_id":"u1@d","domain_name":"d","created_at":"2026-03-01T09:30:12Z"}`
	fn := &fakeFunction{}
	var logs strings.Builder
	srv := httptest.NewServer(&Gateway{API: API{Routes: map[string]Route{"GET /users/me": {}, "POST /users": {}}}, Function: fn,
		Log: slog.New(slog.NewTextHandler(&logs, nil)), Contract: contract})
	t.Cleanup(srv.Close)
	auth := map[string]string{"Authorization": "Bearer a.b.c"}
	answer := func(body string) events.APIGatewayV2HTTPResponse {
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: body, Headers: map[string]string{"Content-Type": "application/json"}}
	}

	fn.answer = answer(account)
	resp, body := call(t, srv, "GET", "/users/me", auth)
	wantHeaders(t, "a good answer", resp, ViolationHeader, "")
	if body != account {
		t.Errorf("a good answer changed: %s, want %s", body, account)
	}
	extra := strings.Replace(account, "{", `{"plan":"basic",`, 1)
	fn.answer = answer(extra)
	resp, body = call(t, srv, "GET", "/users/me/", auth)
	wantStatus(t, "an answer that breaks the contract", resp, 200)
	if body != extra {
		t.Errorf("the answer was changed: %s, want %s", body, extra)
	}
	want := `GET /users/me answered 200: response body doesn't match schema #/components/schemas/Account: property "plan" is unsupported`
	if got := resp.Header.Get(ViolationHeader); got != want {
		t.Errorf("%s = %q, want %q", ViolationHeader, got, want)
	}
	if !strings.Contains(logs.String(), `msg="api: contract violation" route="GET /users/me" status=200`) {
		t.Errorf("no violation logged:\n%s", logs.String())
	}

	// The body the function got is the one the contract checked.
	fn.answer = answer(account)
	req, _ := http.NewRequest("POST", srv.URL+"/users", strings.NewReader(`{"user_country_code":"GB","plan":"gold"}`))
	req.Header.Set("Authorization", "Bearer a.b.c")
	req.Header.Set("Content-Type", "application/json")
	resp, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get(ViolationHeader); !strings.Contains(got, `property "plan" is unsupported), yet it was not refused`) {
		t.Errorf("an unknown field accepted: %s = %q", ViolationHeader, got)
	}
	if want := `{"user_country_code":"GB","plan":"gold"}`; fn.last == nil {
		t.Error("the function was not invoked")
	} else if fn.last.Body != want {
		t.Errorf("the function got the body %s, want %s", fn.last.Body, want)
	}

	resp, _ = call(t, srv, "GET", "/nowhere", auth)
	wantStatus(t, "no route", resp, 404)
	wantHeaders(t, "no route", resp, ViolationHeader, "")
}

// wantStatus reports, naming what, a status other than want.
func wantStatus(t *testing.T, what string, resp *http.Response, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Errorf("%s: status %d, want %d", what, resp.StatusCode, want)
	}
}

// wantHeaders reports, naming what, each header of kv (name, value, …)
// whose value is not the wanted one; "" wants none.
func wantHeaders(t *testing.T, what string, resp *http.Response, kv ...string) {
	t.Helper()
	for i := 0; i < len(kv); i += 2 {
		if got := resp.Header.Get(kv[i]); got != kv[i+1] {
			t.Errorf("%s: %s %q, want %q", what, kv[i], got, kv[i+1])
		}
	}
}
