package localenv

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
		if resp.StatusCode != tt.status || (tt.header != "" && resp.Header.Get(tt.header) != tt.value) || !strings.Contains(string(body), tt.want) {
			t.Errorf("%s: HTTP %d %s=%q %s", tt.name, resp.StatusCode, tt.header, resp.Header.Get(tt.header), body)
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
			if json.Unmarshal(fe.Payload(), &doc) != nil || doc["errorMessage"] != "m" {
				t.Errorf("%s: payload %s", body, fe.Payload())
			}
		}
		if got != want {
			t.Errorf("%s: function error type %q, want %q", body, got, want)
		}
	}
}
