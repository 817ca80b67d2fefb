package openapicheck_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/kandy-provisioner/kandy-provisioner/local/openapicheck"
)

const account = `{"user_id":"u0f8fad5bd9cb469fa16570867728950e","full_user_id":"u0f8fad5bd9cb469fa16570867728950e@sim.kandy.local",` +
	`"domain_name":"sim.kandy.local","created_at":"2026-03-01T09:30:12.123456789Z"}`

func checker(t *testing.T) *openapicheck.Checker {
	t.Helper()
	c, err := openapicheck.Load()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// exchange is a request with a token and its JSON answer.
func exchange(method, path, reqBody string, status int, body string, header ...string) openapicheck.Exchange {
	req, _ := http.NewRequest(method, "http://127.0.0.1:3000"+path, nil)
	req.Header.Set("Authorization", "Bearer a.b.c")
	if reqBody != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	h := http.Header{}
	if body != "" {
		h.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return openapicheck.Exchange{Request: req, RequestBody: []byte(reqBody), Status: status, Header: h, Body: []byte(body)}
}

func TestAllowedExchanges(t *testing.T) {
	quota := `{"error":{"code":"kandy_quota_exceeded","message":"Kandy refused: the account's user limit is reached"}}`
	noAccount := `{"error":{"code":"not_provisioned","message":"the caller has no Kandy account"}}`
	for name, x := range map[string]openapicheck.Exchange{
		"the account":                      exchange("GET", "/users/me", "", 200, account, "Cache-Control", "no-store"),
		"a new account, with a country":    exchange("POST", "/users", `{"user_country_code":"GB"}`, 201, account),
		"an account, with no body":         exchange("POST", "/users", "", 200, account),
		"the quota":                        exchange("POST", "/users", "", 403, quota),
		"an ID token":                      exchange("GET", "/users/me", "", 403, `{"message":"Forbidden"}`),
		"a login token":                    exchange("POST", "/users/me/token", "", 200, `{"user_access_token":"UAT1"}`, "Cache-Control", "no-store"),
		"a delete":                         exchange("DELETE", "/users/me", "", 204, ""),
		"no account":                       exchange("DELETE", "/users/me", "", 404, noAccount),
		"a dependency down":                exchange("GET", "/users/me", "", 503, `{"error":{"code":"unavailable","message":"retry"}}`, "Retry-After", "1"),
		"an unknown field, refused":        exchange("POST", "/users", `{"country":"GB"}`, 400, `{"error":{"code":"invalid_request","message":"no"}}`),
		"a crashed function":               exchange("POST", "/users/me/token", "", 500, `{"message":"Internal Server Error"}`),
		"throttled":                        exchange("DELETE", "/users/me", "", 429, `{"message":"Too Many Requests"}`),
		"the service's own 401":            exchange("GET", "/users/me", "", 401, `{"error":{"code":"unauthorized","message":"no caller identity"}}`),
		"a Kandy failure on token request": exchange("POST", "/users/me/token", "", 502, `{"error":{"code":"kandy_unavailable","message":"later"}}`),
	} {
		if err := checker(t).Check(context.Background(), x); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	noToken := exchange("GET", "/users/me", "", 401, `{"message":"Unauthorized"}`)
	noToken.Request.Header.Del("Authorization")
	if err := checker(t).Check(context.Background(), noToken); err != nil {
		t.Errorf("no token, refused: %v", err)
	}
}

// TestViolations: each exchange breaks the description in one way, and
// the violation names the route and the difference.
func TestViolations(t *testing.T) {
	noToken := exchange("GET", "/users/me", "", 200, account)
	noToken.Request.Header.Del("Authorization")
	for _, c := range []struct {
		name   string
		x      openapicheck.Exchange
		route  string
		reason string
	}{
		{"an extra field in the account view", exchange("GET", "/users/me", "", 200, strings.Replace(account, "{", `{"user_password":"p",`, 1)),
			"GET /users/me", `property "user_password" is unsupported`},
		{"a field missing from the account view", exchange("POST", "/users", "", 201, `{"user_id":"u1","full_user_id":"u1@d","domain_name":"d"}`),
			"POST /users", `property "created_at" is missing`},
		{"a time that is not RFC 3339", exchange("GET", "/users/me", "", 200, strings.Replace(account, "2026-03-01T09:30:12.123456789Z", "yesterday", 1)),
			"GET /users/me", `Error at "/created_at": string doesn't match the format "date-time"`},
		{"a status the description does not list", exchange("GET", "/users/me", "", 418, `{"error":{"code":"internal","message":"x"}}`),
			"GET /users/me", "status is not supported"},
		{"a status listed on another route only", exchange("GET", "/users/me", "", 502, `{"error":{"code":"kandy_unavailable","message":"x"}}`),
			"GET /users/me", "status is not supported"},
		{"a login token without Cache-Control", exchange("POST", "/users/me/token", "", 200, `{"user_access_token":"UAT1"}`),
			"POST /users/me/token", `header "Cache-Control"`},
		{"a 503 without Retry-After", exchange("DELETE", "/users/me", "", 503, `{"error":{"code":"unavailable","message":"x"}}`),
			"DELETE /users/me", `header "Retry-After"`},
		{"an error code outside the enum", exchange("GET", "/users/me", "", 404, `{"error":{"code":"gone","message":"x"}}`),
			"GET /users/me", "/error/code"},
		{"an unknown field accepted", exchange("POST", "/users", `{"user_country_code":"GB","admin":true}`, 201, account),
			"POST /users", `the description refuses the request (request body has an error: doesn't match schema #/components/schemas/CreateUserRequest: property "admin" is unsupported)`},
		{"a bad country code accepted", exchange("POST", "/users", `{"user_country_code":"gb"}`, 200, account),
			"POST /users", `Error at "/user_country_code"`},
		{"no token, yet answered", noToken, "GET /users/me", "no bearer token"},
		{"a body on a 204", exchange("DELETE", "/users/me", "", 204, `{}`), "DELETE /users/me", "has a body"},
		{"an answer that is not JSON", exchange("GET", "/users/me", "", 200, account, "Content-Type", "text/plain"),
			"GET /users/me", `Content-Type has unexpected value: "text/plain"`},
		{"an operation the description lacks", exchange("PUT", "/users/me", "", 200, account), "PUT /users/me", "no such operation"},
	} {
		err := checker(t).Check(context.Background(), c.x)
		var v *openapicheck.Violation
		if !errors.As(err, &v) {
			t.Errorf("%s: %v, want a violation", c.name, err)
			continue
		}
		if v.Route != c.route {
			t.Errorf("%s: route %q, want %q", c.name, v.Route, c.route)
		}
		if v.Status != c.x.Status {
			t.Errorf("%s: status %d, want %d", c.name, v.Status, c.x.Status)
		}
		if !strings.Contains(v.Reason, c.reason) {
			t.Errorf("%s: reason %q, want it to say %q", c.name, v.Reason, c.reason)
		}
	}
}

// TestViolationsKeepValuesOut: a violation names the field that differs,
// never the value, which may be a token.
func TestViolationsKeepValuesOut(t *testing.T) {
	x := exchange("POST", "/users/me/token", "", 200, `{"user_access_token":"UATsecret","user_password":"PWsecret"}`, "Cache-Control", "no-store")
	err := checker(t).Check(context.Background(), x)
	if err == nil {
		t.Fatal("an extra field passed")
	}
	if msg := err.Error(); strings.Contains(msg, "secret") {
		t.Errorf("the violation shows a value: %s", msg)
	}
}

func TestNewRefusesAnInvalidDescription(t *testing.T) {
	if _, err := openapicheck.New([]byte("openapi: 3.0.3\ninfo: {title: t}\npaths: {}\n")); err == nil {
		t.Error("a description without info.version loaded")
	}
}

// TestCheckConcurrently: the gateway checks requests as they come, at once.
func TestCheckConcurrently(t *testing.T) {
	c := checker(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			good := exchange("POST", "/users", `{"user_country_code":"+44"}`, 201, account)
			bad := exchange("POST", "/users", `{"user_country_code":"gb"}`, 201, account)
			for range 20 {
				if err := c.Check(context.Background(), good); err != nil {
					t.Errorf("goroutine %d: %v", i, err)
				}
				if err := c.Check(context.Background(), bad); err == nil {
					t.Errorf("goroutine %d: an accepted bad country code passed", i)
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkCheck(b *testing.B) {
	c, err := openapicheck.Load()
	if err != nil {
		b.Fatal(err)
	}
	x := exchange("POST", "/users", `{"user_country_code":"GB"}`, 201, account)
	for b.Loop() {
		if err := c.Check(context.Background(), x); err != nil {
			b.Fatal(err)
		}
	}
}
