package integration

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/kandysim"
	"github.com/kandy-provisioner/kandy-provisioner/local/localrun"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/httpapi"
)

// failing answers every request as an AWS service in trouble does.
func failing(t *testing.T, status int, typ string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("X-Amzn-ErrorType", typ)
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"__type":%q,"message":"from the test"}`, typ)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// A failure of each dependency, through the real SDK clients and the
// handler, names what failed: Kandy's is 502 kandy_unavailable; DynamoDB's,
// KMS's and Secrets Manager's, when a retry may help, 503 unavailable with
// Retry-After; one a retry cannot mend is 500 internal.
func TestEachDependencysFailureNamesItself(t *testing.T) {
	st, err := localrun.Start(context.Background(), localrun.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Stop)
	t.Setenv("AWS_MAX_ATTEMPTS", "2") // the SDK gives up sooner; what it then says is the same
	for _, tt := range []struct {
		name   string
		env    []string
		kandy  bool // Kandy down
		status int
		code   string
	}{
		{"DynamoDB failing", []string{"AWS_ENDPOINT_URL_DYNAMODB=" + failing(t, 500, "InternalServerError")}, false, 503, "unavailable"},
		{"DynamoDB throttling", []string{"AWS_ENDPOINT_URL_DYNAMODB=" + failing(t, 400, "ThrottlingException")}, false, 503, "unavailable"},
		{"DynamoDB unreachable", []string{"AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:1"}, false, 503, "unavailable"},
		{"KMS failing", []string{"AWS_ENDPOINT_URL_KMS=" + failing(t, 500, "KMSInternalException")}, false, 503, "unavailable"},
		{"Secrets Manager failing", []string{"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + failing(t, 500, "InternalServiceError")}, false, 503, "unavailable"},
		{"Kandy down", nil, true, 502, "kandy_unavailable"},
		{"no such table", []string{"TABLE_NAME=absent"}, false, 500, "internal"},
		{"the secret refused", []string{"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + failing(t, 400, "AccessDeniedException")}, false, 500, "internal"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for _, e := range st.Env(tt.env...) {
				k, v, _ := strings.Cut(e, "=")
				env[k] = v
			}
			svc, err := localrun.Service(func(k string) string {
				if v, ok := env[k]; ok {
					return v
				}
				return os.Getenv(k)
			})
			if err != nil {
				t.Fatal(err)
			}
			if tt.kandy {
				st.Kandy.Inject(kandysim.EndpointDomainToken, kandysim.FaultHTTP500, 100)
				st.Kandy.Inject(kandysim.EndpointCreateUser, kandysim.FaultHTTP500, 100)
				defer st.Kandy.ClearFaults()
			}
			sub := fmt.Sprintf("00000000-0000-4000-8000-%012d", len(tt.name))
			req := events.APIGatewayV2HTTPRequest{RouteKey: "POST /users", RawPath: "/users"}
			req.RequestContext.HTTP.Method = "POST"
			req.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
				JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"sub": sub}}}
			resp, _ := httpapi.New(svc, slog.New(slog.NewTextHandler(io.Discard, nil))).Handle(context.Background(), req)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d; body %s", resp.StatusCode, tt.status, resp.Body)
			}
			if !strings.Contains(resp.Body, `"code":"`+tt.code+`"`) {
				t.Errorf("body %s, want code %s", resp.Body, tt.code)
			}
			if got := resp.Headers["Retry-After"] != ""; got != (tt.status == 503) {
				t.Fatalf("Retry-After = %q", resp.Headers["Retry-After"])
			}
			for _, internal := range []string{"from the test", "127.0.0.1"} {
				if strings.Contains(resp.Body, internal) {
					t.Errorf("the answer shows the internal %q: %s", internal, resp.Body)
				}
			}
		})
	}
}
