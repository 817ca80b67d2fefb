package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

type fakeProvisioner struct {
	err     error
	none    bool // Delete finds no account
	created bool
	gotSub  string
	gotOpts provision.EnsureOptions
}

func (f *fakeProvisioner) Ensure(_ context.Context, sub string, o provision.EnsureOptions) (provision.Account, bool, error) {
	f.gotSub, f.gotOpts = sub, o
	return provision.Account{UserID: "u1"}, f.created, f.err
}
func (f *fakeProvisioner) Get(_ context.Context, sub string) (provision.Account, error) {
	f.gotSub = sub
	return provision.Account{UserID: "u1"}, f.err
}
func (f *fakeProvisioner) UserToken(context.Context, string) (string, error) {
	return "UATtoken", f.err
}
func (f *fakeProvisioner) Delete(context.Context, string) (bool, error) {
	return f.err == nil && !f.none, f.err
}

func request(route, sub, body string) events.APIGatewayV2HTTPRequest {
	method, path, _ := strings.Cut(route, " ")
	req := events.APIGatewayV2HTTPRequest{RouteKey: route, RawPath: path, Body: body}
	req.RequestContext.HTTP.Method = method
	if sub != "" {
		req.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"sub": sub}},
		}
	}
	return req
}

func errorCode(t *testing.T, resp events.APIGatewayV2HTTPResponse) string {
	t.Helper()
	var b errorBody
	if err := json.Unmarshal([]byte(resp.Body), &b); err != nil {
		t.Fatalf("error body %q: %v", resp.Body, err)
	}
	return b.Error.Code
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestErrorMapping(t *testing.T) {
	kandyDown := fmt.Errorf("create user: %w (http 500): DATsecret0123456789", provision.ErrKandyUnavailable)
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{provision.ErrNotProvisioned, 404, "not_provisioned"},
		{provision.ErrInProgress, 409, "provisioning_in_progress"},
		{fmt.Errorf("wrapped: %w", provision.ErrQuotaExceeded), 403, "kandy_quota_exceeded"},
		{kandyDown, 502, "kandy_unavailable"},
		{&provision.DependencyError{Dependency: "dynamodb", Err: context.DeadlineExceeded}, 503, "unavailable"},
		{provision.ErrInvalidCountryCode, 400, "invalid_request"},
		{provision.ErrInvalidSub, 401, "unauthorized"},
		{fmt.Errorf("create user: %w", provision.ErrKandyCredentialsRefused), 503, "unavailable"},
		{provision.ErrAccountClosed, 403, "account_closed"},
		{provision.ErrAccountDeleted, 404, "not_provisioned"},
		{fmt.Errorf("orphan: %w", provision.ErrKandyUserExists), 502, "kandy_unavailable"},
		{provision.ErrClaimLost, 500, "internal"},
		{errors.New("dynamodb: ResourceNotFoundException table kandy-accounts"), 500, "internal"},
		{fmt.Errorf("reading record: %w", provision.ErrUnavailable), 503, "unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			h := New(&fakeProvisioner{err: tt.err}, quiet)
			resp, err := h.Handle(context.Background(), request("GET /users/me", "s1", ""))
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d; body %s", resp.StatusCode, tt.status, resp.Body)
			}
			if got := errorCode(t, resp); got != tt.code {
				t.Errorf("code %q, want %q; body %s", got, tt.code, resp.Body)
			}
			if resp.Headers["Content-Type"] != "application/json" {
				t.Fatalf("headers = %v", resp.Headers)
			}
			if got, want := resp.Headers["Retry-After"], map[bool]string{true: retryAfter}[tt.status == 503]; got != want {
				t.Fatalf("Retry-After = %q, want %q", got, want)
			}
			for _, leak := range []string{"DATsecret", "dynamodb", "kandy-accounts", "create user"} {
				if strings.Contains(resp.Body, leak) {
					t.Fatalf("body leaks %q: %s", leak, resp.Body)
				}
			}
		})
	}
}

// Every code the domain names has its own status and a message.
func TestEveryCodeHasAnAnswer(t *testing.T) {
	statuses := map[int]provision.Code{}
	for _, c := range Codes {
		a, ok := answers[c]
		if !ok {
			t.Errorf("code %s has no answer", c)
		} else {
			if a.status < 400 {
				t.Errorf("code %s: status %d, want an error status, 400 or more", c, a.status)
			}
			if a.message == "" {
				t.Errorf("code %s: no message", c)
			}
		}
		if prev, dup := statuses[a.status]; dup && a.status != http.StatusNotFound && a.status != http.StatusForbidden {
			t.Errorf("codes %s and %s share status %d", prev, c, a.status)
		}
		statuses[a.status] = c
	}
	if len(answers) != len(Codes) {
		t.Errorf("%d answers for %d codes", len(answers), len(Codes))
	}
}

func TestBadRequestsSayWhatIsWrong(t *testing.T) {
	for body, want := range map[string]string{
		`{"user_country_code":"usa"}`: countryMessage,
		`{"x":1}`:                     "body must be a JSON object with only user_country_code",
		`{} {}`:                       "data after the JSON object",
		`{"USER_COUNTRY_CODE":"US"}`:  "body must be a JSON object with only user_country_code",
		`{"user_country_code":null}`:  "user_country_code must be a string",
		`{"user_country_code":"GB","user_country_code":"US"}`: "user_country_code is given twice",
	} {
		resp, _ := New(&fakeProvisioner{}, quiet).Handle(context.Background(), request("POST /users", "s1", body))
		var b errorBody
		if resp.StatusCode != 400 {
			t.Errorf("%s: status %d, want 400", body, resp.StatusCode)
		}
		if err := json.Unmarshal([]byte(resp.Body), &b); err != nil {
			t.Errorf("%s: error body %q: %v", body, resp.Body, err)
		} else if b.Error.Message != want {
			t.Errorf("%s: message %q, want %q", body, b.Error.Message, want)
		}
	}
}

// A failed request is logged once, with its code and cause.
func TestAFailureIsLoggedOnce(t *testing.T) {
	var logs strings.Builder
	h := New(&fakeProvisioner{err: provision.ErrInProgress}, slog.New(slog.NewJSONHandler(&logs, nil)))
	h.Handle(context.Background(), request("GET /users/me", "s1", ""))
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d log lines, want 1: %q", len(lines), logs.String())
	}
	for _, want := range []string{`"code":"provisioning_in_progress"`, `"status":409`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("log line lacks %s: %s", want, lines[0])
		}
	}
}

func TestCreate(t *testing.T) {
	f := &fakeProvisioner{created: true}
	h := New(f, quiet)
	resp, _ := h.Handle(context.Background(), request("POST /users", "s1", `{"user_country_code":"+44"}`))
	if resp.StatusCode != 201 {
		t.Errorf("status %d, want 201; body %s", resp.StatusCode, resp.Body)
	}
	if f.gotSub != "s1" {
		t.Errorf("provisioner saw sub %q, want %q", f.gotSub, "s1")
	}
	if f.gotOpts.CountryCode != "+44" {
		t.Errorf("provisioner saw country code %q, want %q", f.gotOpts.CountryCode, "+44")
	}
	if !f.gotOpts.ByUser {
		t.Fatal("POST /users is not marked as the user's own request: a deleted account could never be provisioned again")
	}
	f.created = false
	resp, _ = h.Handle(context.Background(), request("POST /users", "s1", ""))
	if resp.StatusCode != 200 {
		t.Errorf("existing: status %d, want 200; body %s", resp.StatusCode, resp.Body)
	}
	if f.gotOpts.CountryCode != "" {
		t.Errorf("existing: provisioner saw country code %q, want none", f.gotOpts.CountryCode)
	}
}

func TestIdentityComesOnlyFromTheJWT(t *testing.T) {
	f := &fakeProvisioner{}
	h := New(f, quiet)
	req := request("GET /users/me", "", "")
	req.Headers = map[string]string{"x-sub": "attacker"}
	req.QueryStringParameters = map[string]string{"sub": "attacker"}
	req.PathParameters = map[string]string{"sub": "attacker"}
	resp, _ := h.Handle(context.Background(), req)
	if resp.StatusCode != 401 {
		t.Errorf("status %d, want 401", resp.StatusCode)
	}
	if f.gotSub != "" {
		t.Errorf("provisioner saw sub %q, want no call", f.gotSub)
	}
}

func TestRouteFallbackForDefaultRoute(t *testing.T) {
	f := &fakeProvisioner{}
	req := request("GET /users/me/", "s1", "")
	req.RouteKey = "$default"
	resp, _ := New(f, quiet).Handle(context.Background(), req)
	if resp.StatusCode != 200 {
		t.Fatalf("= %d %s", resp.StatusCode, resp.Body)
	}
}

func TestTokenIsNotCached(t *testing.T) {
	resp, _ := New(&fakeProvisioner{}, quiet).Handle(context.Background(), request("POST /users/me/token", "s1", ""))
	if resp.StatusCode != 200 {
		t.Errorf("status %d, want 200; body %s", resp.StatusCode, resp.Body)
	}
	if cc := resp.Headers["Cache-Control"]; cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	if want := `"user_access_token":"UATtoken"`; !strings.Contains(resp.Body, want) {
		t.Errorf("body %s, want it to hold %s", resp.Body, want)
	}
}

func TestDecodeCreate(t *testing.T) {
	good := []string{``, `  `, `{}`, `{"user_country_code":"US"}`, `{"user_country_code":"+1"}`, `{"user_country_code":""}`}
	for _, b := range good {
		if _, err := DecodeCreate([]byte(b)); err != nil {
			t.Errorf("DecodeCreate(%q) = %v", b, err)
		}
	}
	bad := []string{`null x`, `[]`, `"US"`, `{"user_country_code":"us"}`, `{"user_country_code":"+1234"}`,
		`{"user_country_code":1}`, `{"sub":"x"}`, `{}{}`, `{"user_country_code":"US"`, `{"user_country_code":"US"} 1`,
		`null`, ` null `, `{"USER_COUNTRY_CODE":"US"}`, `{"User_Country_Code":"US"}`, `{"user_country_code":null}`,
		`{"user_country_code":["US"]}`, `{"user_country_code":"US","sub":"x"}`, `{"user_country_code":5,"user_country_code":"US"}`,
		`{"user_country_code":"US","user_country_code":"US"}`, `{"user_country_code":"US",}`, `{"user_country_code"}`, `{`}
	for _, b := range bad {
		if _, err := DecodeCreate([]byte(b)); err == nil {
			t.Errorf("DecodeCreate(%q) accepted", b)
		}
	}
}

func BenchmarkHandle(b *testing.B) {
	h := New(&fakeProvisioner{created: true}, quiet)
	reqs := []events.APIGatewayV2HTTPRequest{
		request("POST /users", "s1", `{"user_country_code":"US"}`),
		request("GET /users/me", "s1", ""),
		request("POST /users/me/token", "s1", ""),
		request("DELETE /users/me", "s1", ""),
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if resp, _ := h.Handle(ctx, reqs[i%len(reqs)]); resp.StatusCode >= 300 {
			b.Fatal(resp.StatusCode)
		}
	}
}

// Server-side failures are logged as errors; the caller's own, as info.
func TestFailuresAreLoggedAtTheirLevel(t *testing.T) {
	for err, level := range map[error]string{
		errors.New("dynamodb: boom"):    "ERROR",
		provision.ErrKandyUnavailable:   "ERROR",
		provision.ErrNotProvisioned:     "INFO",
		provision.ErrQuotaExceeded:      "INFO",
		provision.ErrInvalidCountryCode: "INFO",
	} {
		var logs strings.Builder
		New(&fakeProvisioner{err: err}, slog.New(slog.NewJSONHandler(&logs, nil))).Handle(context.Background(), request("GET /users/me", "s1", ""))
		if !strings.Contains(logs.String(), `"level":"`+level+`"`) {
			t.Errorf("%v logged as %s", err, logs.String())
		}
	}
}

// API Gateway's route key names the route, whatever the raw path carries
// (a stage name, say); only $default falls back to the path.
func TestTheRouteKeyWins(t *testing.T) {
	req := request("GET /users/me", "s1", "")
	req.RawPath = "/prod/users/me"
	if resp, _ := New(&fakeProvisioner{}, quiet).Handle(context.Background(), req); resp.StatusCode != 200 {
		t.Fatalf("= %d %s", resp.StatusCode, resp.Body)
	}
}

func TestBodies(t *testing.T) {
	padded := `{"user_country_code":"US"` + strings.Repeat(" ", MaxBodyBytes-len(`{"user_country_code":"US"}`)) + `}`
	for _, tt := range []struct {
		name   string
		body   string
		base64 bool
		status int
	}{
		{"exactly the limit", padded, false, 201},
		{"one byte over", padded + " ", false, 400},
		{"base64", base64.StdEncoding.EncodeToString([]byte(`{"user_country_code":"+44"}`)), true, 201},
		{"base64 of the limit", base64.StdEncoding.EncodeToString([]byte(padded)), true, 201},
		{"bad base64", "%%%", true, 400},
	} {
		f := &fakeProvisioner{created: true}
		req := request("POST /users", "s1", tt.body)
		req.IsBase64Encoded = tt.base64
		if resp, _ := New(f, quiet).Handle(context.Background(), req); resp.StatusCode != tt.status {
			t.Errorf("%s: = %d %s", tt.name, resp.StatusCode, resp.Body)
		}
		if tt.name == "base64" && f.gotOpts.CountryCode != "+44" {
			t.Errorf("base64 body decoded to %+v", f.gotOpts)
		}
	}
}

// DELETE answers 204 when there was an account, and 404 not_provisioned
// when there was none (the domain wrote a tombstone all the same).
func TestDeleteOfNoAccount(t *testing.T) {
	for _, tt := range []struct {
		none   bool
		status int
	}{{false, 204}, {true, 404}} {
		resp, err := New(&fakeProvisioner{none: tt.none}, quiet).Handle(context.Background(), request("DELETE /users/me", "s1", ""))
		if err != nil || resp.StatusCode != tt.status {
			t.Errorf("no account %v: %d, %v; want %d", tt.none, resp.StatusCode, err, tt.status)
		}
		if tt.none && errorCode(t, resp) != "not_provisioned" {
			t.Errorf("no account: %s, want not_provisioned", resp.Body)
		}
	}
}
