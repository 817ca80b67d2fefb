package processes

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// invokerFunc is an Invoker from a function.
type invokerFunc func(ctx context.Context, event []byte) ([]byte, error)

func (f invokerFunc) Invoke(ctx context.Context, event []byte) ([]byte, error) { return f(ctx, event) }

func TestInvokeAPIAnswersAsLambda(t *testing.T) {
	called := make(chan string, 1)
	api := &InvokeAPI{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Functions: map[string]Invoker{
		"Echo": invokerFunc(func(_ context.Context, ev []byte) ([]byte, error) { called <- string(ev); return ev, nil }),
		"Failing": invokerFunc(func(context.Context, []byte) ([]byte, error) {
			return nil, &FunctionError{Type: "wrapError", Message: "boom"}
		}),
		"Saturate": invokerFunc(func(context.Context, []byte) ([]byte, error) { return nil, ErrThrottled }),
	}}
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	tests := []struct {
		name, function, invocationType, body string
		status                               int
		header, value, want                  string
	}{
		{"by name", "Echo", "", `{"a":1}`, 200, "X-Amz-Executed-Version", "$LATEST", `{"a":1}`},
		{"by ARN and qualifier", "arn:aws:lambda:us-east-1:123456789012:function:Echo:$LATEST", "RequestResponse", `[1]`, 200, "", "", `[1]`},
		{"function error", "Failing", "", `{}`, 200, "X-Amz-Function-Error", "Unhandled", `{"errorMessage":"boom","errorType":"wrapError"}`},
		{"throttled", "Saturate", "", `{}`, 429, "X-Amzn-ErrorType", "TooManyRequestsException", `"Rate Exceeded."`},
		{"unknown function", "Nope", "", `{}`, 404, "X-Amzn-ErrorType", "ResourceNotFoundException", `function:Nope`},
		{"not JSON", "Echo", "", `{`, 400, "X-Amzn-ErrorType", "InvalidRequestContentException", `parse`},
		{"dry run", "Echo", "DryRun", `{}`, 204, "", "", ``},
		{"asynchronous", "Echo", "Event", `{"async":true}`, 202, "", "", ``},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/2015-03-31/functions/"+tt.function+"/invocations", strings.NewReader(tt.body))
		if tt.invocationType != "" {
			req.Header.Set("X-Amz-Invocation-Type", tt.invocationType)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s: HTTP %d, want %d: %s", tt.name, resp.StatusCode, tt.status, body)
		}
		if got := resp.Header.Get(tt.header); tt.header != "" && got != tt.value {
			t.Errorf("%s: %s %q, want %q", tt.name, tt.header, got, tt.value)
		}
		if !strings.Contains(string(body), tt.want) {
			t.Errorf("%s: body lacks %q: %s", tt.name, tt.want, body)
		}
		if strings.Contains(tt.function, "Echo") && tt.status/100 == 2 && tt.invocationType != "DryRun" {
			select {
			case ev := <-called:
				if ev != tt.body {
					t.Errorf("%s: the function got %s", tt.name, ev)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("%s: the function was not invoked", tt.name)
			}
		}
	}
}

func TestFunctionErrorDocument(t *testing.T) {
	for body, want := range map[string]string{
		`{"errorMessage":"m","errorType":"T"}`:                 "T",
		`{"errorMessage":"m","errorType":"T","stackTrace":[]}`: "T",
		`{"errorMessage":"m"}`:                                 "Unhandled",
		`{"statusCode":500,"body":"x"}`:                        "",
		`{"errorMessage":"m","statusCode":200}`:                "",
		`"just a string"`:                                      "",
		`{"batchItemFailures":[{"itemIdentifier":"1"}]}`:       "",
	} {
		fe := asFunctionError([]byte(body))
		got := ""
		if fe != nil {
			got = fe.Type
			var doc map[string]string
			if err := json.Unmarshal(fe.Payload(), &doc); err != nil {
				t.Errorf("%s: payload %s: %v", body, fe.Payload(), err)
			} else if doc["errorMessage"] != "m" {
				t.Errorf("%s: payload's errorMessage %q, want m", body, doc["errorMessage"])
			}
		}
		if got != want {
			t.Errorf("%s: function error type %q, want %q", body, got, want)
		}
	}
}

// TestInvokeAPIAppliesPermissionsToServices: a request signed with a
// service principal's key is that service's, and runs only if Authorize
// allows it for its source; the account's own requests (the CLI, curl)
// are not asked about.
func TestInvokeAPIAppliesPermissionsToServices(t *testing.T) {
	var asked []Caller
	invoked := 0
	api := &InvokeAPI{Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Functions: map[string]Invoker{"Trigger": invokerFunc(func(_ context.Context, ev []byte) ([]byte, error) { invoked++; return ev, nil })},
		Authorize: func(fn string, c Caller, event []byte) bool {
			asked = append(asked, c)
			return fn == "Trigger" && strings.Contains(string(event), `"userPoolId":"mine"`) && c.SourceARN != "arn:other"
		}}
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	sign := func(key string) string {
		return "AWS4-HMAC-SHA256 Credential=" + key + "/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00"
	}
	tests := []struct {
		name, authorization, source, event string
		status                             int
		caller                             *Caller // what Authorize is asked about; nil: not asked
	}{
		{"Cognito for its pool", sign("cognito-idp.amazonaws.com"), "", `{"userPoolId":"mine"}`, 200, &Caller{Principal: "cognito-idp.amazonaws.com"}},
		{"Cognito for another pool", sign("cognito-idp.amazonaws.com"), "", `{"userPoolId":"other"}`, 403, &Caller{Principal: "cognito-idp.amazonaws.com"}},
		{"a rule of another source", sign("events.amazonaws.com"), "arn:other", `{"userPoolId":"mine"}`, 403, &Caller{Principal: "events.amazonaws.com", SourceARN: "arn:other"}},
		{"the account, signed", sign("local"), "", `{"userPoolId":"other"}`, 200, nil},
		{"the account, unsigned", "", "", `{"userPoolId":"other"}`, 200, nil},
	}
	for _, tt := range tests {
		asked, invoked = nil, 0
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/2015-03-31/functions/Trigger/invocations", strings.NewReader(tt.event))
		if tt.authorization != "" {
			req.Header.Set("Authorization", tt.authorization)
		}
		if tt.source != "" {
			req.Header.Set("X-Amz-Source-Arn", tt.source)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s: HTTP %d %s, want %d", tt.name, resp.StatusCode, body, tt.status)
		}
		if want := map[bool]int{true: 1, false: 0}[tt.status == 200]; invoked != want {
			t.Errorf("%s: invoked %d times, want %d", tt.name, invoked, want)
		}
		// Refused as Lambda refuses.
		if tt.status == 403 {
			if et := resp.Header.Get("X-Amzn-ErrorType"); et != "AccessDeniedException" {
				t.Errorf("%s: X-Amzn-ErrorType %q, want AccessDeniedException", tt.name, et)
			}
			if want := "no resource-based policy allows the lambda:InvokeFunction action"; !strings.Contains(string(body), want) {
				t.Errorf("%s: body lacks %q: %s", tt.name, want, body)
			}
		}
		switch {
		case tt.caller == nil && len(asked) != 0:
			t.Errorf("%s: Authorize was asked about %v", tt.name, asked)
		case tt.caller != nil && (len(asked) != 1 || asked[0] != *tt.caller):
			t.Errorf("%s: Authorize was asked about %v, want %v", tt.name, asked, *tt.caller)
		}
	}
}
