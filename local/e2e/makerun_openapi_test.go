package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/api"
	"github.com/kandy-provisioner/kandy-provisioner/api/apiclient"
	"github.com/kandy-provisioner/kandy-provisioner/local/gateway"
)

// contractChecked sends a test's API calls, and fails the test on an
// answer that make run's gateway found to break api/openapi.yaml.
type contractChecked struct {
	t    *testing.T
	http *http.Client
}

func (c contractChecked) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err == nil {
		if v := resp.Header.Get(gateway.ViolationHeader); v != "" {
			c.t.Errorf("make run's answer breaks api/openapi.yaml: %s", v)
		}
	}
	return resp, err
}

// client is the API's generated client (api/apiclient), calling as the
// user whose access token it is given.
func (r *localRun) client(t *testing.T, token string) *apiclient.ClientWithResponses {
	t.Helper()
	c, err := apiclient.NewClientWithResponses(r.url("API_PORT"), apiclient.WithHTTPClient(contractChecked{t: t, http: r.http}),
		apiclient.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			req.Header.Set("Authorization", "Bearer "+token)
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// call makes the API call of route ("METHOD /path") as the token's user,
// with no body, and returns its status; 0 when it got no answer.
func (r *localRun) call(t *testing.T, token, route string) int {
	t.Helper()
	c, ctx := r.client(t, token), context.Background()
	var resp interface{ StatusCode() int }
	var err error
	switch route {
	case "POST /users":
		resp, err = c.CreateUserWithBodyWithResponse(ctx, "application/json", http.NoBody)
	case "GET /users/me":
		resp, err = c.GetUserWithResponse(ctx)
	case "POST /users/me/token":
		resp, err = c.CreateUserTokenWithResponse(ctx)
	case "DELETE /users/me":
		resp, err = c.DeleteUserWithResponse(ctx)
	default:
		t.Fatalf("%s is no operation of api/openapi.yaml", route)
	}
	if err != nil {
		t.Errorf("%s: %v", route, err)
		return 0
	}
	return resp.StatusCode()
}

// account is GET /users/me as the token's user: the status, and the
// account when there is one.
func (r *localRun) account(t *testing.T, token string) (int, apiclient.Account) {
	t.Helper()
	resp, err := r.client(t, token).GetUserWithResponse(context.Background())
	if err != nil {
		t.Errorf("GET /users/me: %v", err)
		return 0, apiclient.Account{}
	}
	if resp.JSON200 == nil {
		return resp.StatusCode(), apiclient.Account{}
	}
	return resp.StatusCode(), *resp.JSON200
}

// wantAccount reports, naming what, a GET /users/me as the token's user
// that does not answer 200 with the account of userID, and whether it did.
func (r *localRun) wantAccount(t *testing.T, what, token, userID string) bool {
	t.Helper()
	status, acc := r.account(t, token)
	if status != 200 { // then there is no account to compare
		t.Errorf("%s: GET /users/me status %d, want 200", what, status)
		return false
	}
	if acc.UserId != userID {
		t.Errorf("%s: GET /users/me user id %q, want %q", what, acc.UserId, userID)
		return false
	}
	return true
}

// loginToken is POST /users/me/token as the token's user: the status, and
// the Kandy login token when there is one.
func (r *localRun) loginToken(t *testing.T, token string) (int, string) {
	t.Helper()
	resp, err := r.client(t, token).CreateUserTokenWithResponse(context.Background())
	if err != nil {
		t.Errorf("POST /users/me/token: %v", err)
		return 0, ""
	}
	if resp.JSON200 == nil {
		return resp.StatusCode(), ""
	}
	return resp.StatusCode(), resp.JSON200.UserAccessToken
}

// servedDescription: make run serves api/openapi.yaml beside the console,
// on the console's origin, and the console links to it.
func servedDescription(t *testing.T, run *localRun) {
	get := func(path string) (*http.Response, []byte) {
		resp, err := run.http.Get(run.url("API_PORT") + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	resp, body := get("/openapi.yaml")
	if resp.StatusCode != 200 {
		t.Errorf("GET /openapi.yaml: status %d, want 200", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/yaml" {
		t.Errorf("GET /openapi.yaml: Content-Type %q, want application/yaml", ct)
	}
	if !bytes.Equal(body, api.OpenAPI) {
		t.Errorf("GET /openapi.yaml is not api/openapi.yaml (%d bytes)", len(body))
	}
	if _, page := get("/"); !strings.Contains(string(page), `href="/openapi.yaml"`) {
		t.Error("the console page does not link to /openapi.yaml")
	}
}

// contractCheckedLive: make run's gateway checks what passes through it.
// A JSON body sent as text/plain, which the description refuses and the
// service reads anyway, is named in the answer and the log. It runs last:
// make run logs no other violation.
func contractCheckedLive(t *testing.T, run *localRun) {
	run.signUp(t, "vera@example.com")
	access, _ := run.signIn(t, "vera@example.com")
	req, _ := http.NewRequest("POST", run.url("API_PORT")+"/users", strings.NewReader(`{"user_country_code":"GB"}`))
	req.Header.Set("Authorization", "Bearer "+access)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := run.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := `POST /users answered 200: the description refuses the request (request body has an error: header Content-Type has unexpected value "text/plain"), yet it was not refused`
	if got := resp.Header.Get(gateway.ViolationHeader); got != want {
		t.Errorf("%s = %q, want %q", gateway.ViolationHeader, got, want)
	}
	logged := `msg="api: contract violation" route="POST /users" status=200`
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(run.output(), logged); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("make run logged no violation:\n%s", run.output())
		}
	}
}
