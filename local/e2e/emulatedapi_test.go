package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/kandy-provisioner/kandy-provisioner/api/apiclient"
	"github.com/kandy-provisioner/kandy-provisioner/local/gateway"
	"github.com/kandy-provisioner/kandy-provisioner/local/openapicheck"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
)

// apiURL is the deployed API the events in events/ were sent to; requests
// carry its host, as API Gateway's events do.
const apiURL = "https://abc123defg.execute-api.us-east-1.amazonaws.com"

// emulatedAPI is API Gateway's HTTP API in front of one ApiFunction under
// the emulator, as the generated client's transport. It turns a request
// into the payload 2.0 event the gateway sends, with the claims its
// authorizer would pass for one caller, invokes the function, and turns the
// answer back into HTTP, both with local/gateway as make run does. Every
// exchange is checked against api/openapi.yaml: a violation fails the test
// that made the call.
type emulatedAPI struct {
	t      *testing.T
	fn     *processes.Function
	claims map[string]any
}

func (e emulatedAPI) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	route := req.Method + " " + req.URL.Path
	ev, err := json.Marshal(gateway.Event(req, route, e.claims, body))
	if err != nil {
		return nil, err
	}
	return exchange(e.t, e.fn, route, ev, req, body, true)
}

// exchange invokes fn with the event of req, and answers as API Gateway
// would. When checked, the exchange is held to api/openapi.yaml.
func exchange(t *testing.T, fn *processes.Function, route string, ev []byte, req *http.Request, body []byte, checked bool) (*http.Response, error) {
	noteInvoked(t, fn.Process)
	out, err := fn.Invoke(req.Context(), ev)
	if err != nil {
		return nil, err
	}
	var answer events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &answer); err != nil || answer.StatusCode == 0 {
		return nil, fmt.Errorf("%s: the function's answer is not an API Gateway response: %s", route, out)
	}
	rec := httptest.NewRecorder()
	gateway.WriteResponse(rec, answer, false)
	resp := rec.Result()
	resp.Request = req
	if checked {
		contract, err := openapicheck.Load()
		if err != nil {
			return nil, err
		}
		x := openapicheck.Exchange{Request: req, RequestBody: body, Status: resp.StatusCode, Header: resp.Header, Body: rec.Body.Bytes()}
		if err := contract.Check(req.Context(), x); err != nil {
			t.Errorf("the exchange breaks api/openapi.yaml: %v", err)
		}
	}
	return resp, nil
}

// apiCaller calls an ApiFunction's API through the generated client
// (api/apiclient), as one caller.
type apiCaller struct {
	t      *testing.T
	client *apiclient.Client
}

// asUser calls fn's API as the user sub, signed in with an access token.
func asUser(t *testing.T, fn *processes.Function, sub string) apiCaller {
	t.Helper()
	return asCaller(t, fn, accessClaims(t, sub))
}

// accessClaims are the claims the authorizer passes for an access token of
// sub: those of the events in events/.
func accessClaims(t *testing.T, sub string) map[string]any {
	t.Helper()
	rc, _ := loadEvent(t, "create-user.json", sub)["requestContext"].(map[string]any)
	auth, _ := rc["authorizer"].(map[string]any)
	jwt, _ := auth["jwt"].(map[string]any)
	claims, ok := jwt["claims"].(map[string]any)
	if !ok {
		t.Fatal("events/create-user.json has no authorizer claims")
	}
	return claims
}

// asCaller calls fn's API as the caller whose token the authorizer turned
// into claims.
func asCaller(t *testing.T, fn *processes.Function, claims map[string]any) apiCaller {
	t.Helper()
	token := sentToken(t)
	c, err := apiclient.NewClient(apiURL, apiclient.WithHTTPClient(&http.Client{Transport: emulatedAPI{t: t, fn: fn, claims: claims}}),
		apiclient.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			req.Header.Set("Authorization", "Bearer "+token)
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	return apiCaller{t: t, client: c}
}

// sentToken is the access token of the events in events/. Its value is
// the authorizer's business, which passes the claims on; the description
// asks that a token is sent.
func sentToken(t *testing.T) string {
	t.Helper()
	headers, _ := loadEvent(t, "create-user.json", "")["headers"].(map[string]any)
	auth, _ := headers["authorization"].(string)
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		t.Fatal("events/create-user.json sends no bearer token")
	}
	return token
}

// createUser is POST /users with the body of events/create-user.json.
func (c apiCaller) createUser() apiAnswer {
	c.t.Helper()
	a, err := c.tryCreateUser()
	if err != nil {
		c.t.Errorf("POST /users: %v", err)
	}
	return a
}

// tryCreateUser is createUser for a caller that expects to get no answer
// at times, and tries again.
func (c apiCaller) tryCreateUser() (apiAnswer, error) {
	c.t.Helper()
	country := "US"
	resp, err := c.client.CreateUser(context.Background(), apiclient.CreateUserJSONRequestBody{UserCountryCode: &country})
	if err != nil {
		return apiAnswer{}, err
	}
	return readAnswer(c.t, "POST /users", resp), nil
}

// createUserWithBody is POST /users with a JSON body as given, well formed
// or not.
func (c apiCaller) createUserWithBody(body string) apiAnswer {
	c.t.Helper()
	resp, err := c.client.CreateUserWithBody(context.Background(), "application/json", strings.NewReader(body))
	return c.answer("POST /users", resp, err)
}

func (c apiCaller) getUser() apiAnswer {
	c.t.Helper()
	resp, err := c.client.GetUser(context.Background())
	return c.answer("GET /users/me", resp, err)
}

func (c apiCaller) userToken() apiAnswer {
	c.t.Helper()
	resp, err := c.client.CreateUserToken(context.Background())
	return c.answer("POST /users/me/token", resp, err)
}

func (c apiCaller) deleteUser() apiAnswer {
	c.t.Helper()
	resp, err := c.client.DeleteUser(context.Background())
	return c.answer("DELETE /users/me", resp, err)
}

// apiAnswer is an answer of the API, its body parsed when it has one.
type apiAnswer struct {
	StatusCode int
	Header     http.Header
	Body       string
	JSON       map[string]any
}

func (a apiAnswer) errorCode() string {
	e, _ := a.JSON["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (a apiAnswer) errorMessage() string {
	e, _ := a.JSON["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

// wantError reports, naming what, a's status and error code where they
// are not the wanted ones, and whether both were.
func wantError(t *testing.T, what string, a apiAnswer, status int, code string) bool {
	t.Helper()
	ok := true
	if a.StatusCode != status {
		t.Errorf("%s: status %d, want %d: %s", what, a.StatusCode, status, a.Body)
		ok = false
	}
	if got := a.errorCode(); got != code {
		t.Errorf("%s: error code %q, want %q: %s", what, got, code, a.Body)
		ok = false
	}
	return ok
}

// answer reads a call's answer. A call that got none, or an answer that is
// not JSON, fails the test; the answer then has status 0.
func (c apiCaller) answer(route string, resp *http.Response, err error) apiAnswer {
	c.t.Helper()
	if err != nil {
		c.t.Errorf("%s: %v", route, err)
		return apiAnswer{}
	}
	return readAnswer(c.t, route, resp)
}

func readAnswer(t *testing.T, route string, resp *http.Response) apiAnswer {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("%s: reading the answer: %v", route, err)
		return apiAnswer{}
	}
	a := apiAnswer{StatusCode: resp.StatusCode, Header: resp.Header, Body: string(body)}
	if len(body) == 0 {
		return a
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s answered %d with Content-Type %q", route, a.StatusCode, ct)
	}
	if err := json.Unmarshal(body, &a.JSON); err != nil {
		t.Errorf("%s answered %d with a body that is not a JSON object: %s", route, a.StatusCode, body)
	}
	return a
}

// callRaw sends fn an event made by hand, for what the generated client
// cannot send: no caller identity, a body API Gateway passes in base64, a
// route key the API does not have. When the event's route is the one API
// Gateway would match for its method and path, the exchange is held to
// api/openapi.yaml as the client's are; a route key that is not is no
// request of the API, and the description says nothing of it.
func callRaw(t *testing.T, fn *processes.Function, ev map[string]any) apiAnswer {
	t.Helper()
	raw := mustJSON(t, ev)
	var in events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatal(err)
	}
	req, body := requestOf(t, in)
	route := req.Method + " " + req.URL.Path
	resp, err := exchange(t, fn, route, raw, req, body, in.RouteKey == route)
	if err != nil {
		t.Errorf("%s: %v", in.RouteKey, err)
		return apiAnswer{}
	}
	return readAnswer(t, in.RouteKey, resp)
}

// requestOf is the HTTP request an event tells of: its method, path,
// headers and body, decoded from base64 when it can be.
func requestOf(t *testing.T, ev events.APIGatewayV2HTTPRequest) (*http.Request, []byte) {
	t.Helper()
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		if b, err := base64.StdEncoding.DecodeString(ev.Body); err == nil {
			body = b
		}
	}
	req, err := http.NewRequest(ev.RequestContext.HTTP.Method, "https://"+ev.RequestContext.DomainName+ev.RawPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range ev.Headers {
		req.Header.Set(k, v)
	}
	return req, body
}
