package gateway

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
)

// docs/api.md tells a client to wait Retry-After seconds on a 503: a
// page of an allowed origin, in Chromium, must be able to read it, with
// the CORS of template.yaml.
func TestAPageReadsRetryAfterFromA503(t *testing.T) {
	// The page's origin first, for the API's CORS; its server after.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pageURL := "http://" + l.Addr().String()
	tpl, err := samtemplate.Load(samtemplate.Path())
	if err != nil {
		t.Fatal(err)
	}
	api, err := FromTemplate(tpl, "ApiFunction", map[string]string{"CorsAllowedOrigins": pageURL})
	if err != nil {
		t.Fatal(err)
	}
	fn := &fakeFunction{answer: events.APIGatewayV2HTTPResponse{StatusCode: 503, Body: `{"error":{"code":"unavailable","message":"try again"}}`,
		Headers: map[string]string{"Content-Type": "application/json", "Retry-After": "7"}}}
	srv, s := newGateway(t, fn, api)
	token := s.token(t, map[string]any{"iss": "https://issuer", "client_id": "client", "token_use": "access", "scope": adminScope, "exp": time.Now().Unix() + 60})
	page := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<script>
fetch(%q, {headers: {Authorization: "Bearer " + %q}}).then(
  (r) => { window.results = {status: r.status, retryAfter: r.headers.get("Retry-After")}; },
  (e) => { window.results = {error: String(e)}; }).finally(() => { document.title = "done"; });
</script>`, srv.URL+"/users/me", token)
	}))
	page.Listener.Close()
	page.Listener = l
	page.Start()
	defer page.Close()
	out, err := exec.Command("node", filepath.Join(processes.RepoRoot(), "local", "e2e", "cors.spec.mjs"), pageURL+"/").CombinedOutput()
	if err != nil {
		t.Fatalf("Chromium: %v\n%s", err, out)
	}
	var got struct {
		Saw struct {
			Status     int
			RetryAfter *string
			Error      string
		}
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(out))), &got); err != nil {
		t.Fatalf("Chromium printed %s", out)
	}
	if got.Saw.Status != 503 || got.Saw.RetryAfter == nil || *got.Saw.RetryAfter != "7" {
		t.Errorf("the page saw %+v, want status 503 and Retry-After 7 (error %q)", got.Saw, got.Saw.Error)
	}
}
