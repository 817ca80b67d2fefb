package processes

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/kandy-provisioner/kandy-provisioner/local/guard"
	"github.com/kandy-provisioner/kandy-provisioner/local/internal/listeners"
)

// TestBackendsListenOnlyOnTheirSocket: dynalite, cognito-local, local-kms
// and goaws open no TCP port at all, so no page can reach them; over
// their Unix socket they refuse every request without their front's token
// and serve those with it.
func TestBackendsListenOnlyOnTheirSocket(t *testing.T) {
	sockets, err := guard.SocketDir()
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockets)
	backends := map[string]guard.Backend{}
	var procs []*Process
	for name, start := range map[string]func(guard.Backend) (*Process, error){
		"dynalite":      func(b guard.Backend) (*Process, error) { return StartDynalite(b, "") },
		"cognito-local": func(b guard.Backend) (*Process, error) { return StartCognitoLocal(b, t.TempDir(), map[string]any{}) },
		"local-kms":     func(b guard.Backend) (*Process, error) { return StartKMS(b, t.TempDir()) },
	} {
		b := guard.NewBackend(sockets, name)
		p, err := start(b)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Stop()
		backends[name], procs = b, append(procs, p)
	}
	sqs, err := StartSQS(t.TempDir(), sockets, guard.Guard{Name: "goaws", Audience: guard.Programs}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sqs.Stop()
	procs = append(procs, sqs.Process())
	for _, p := range procs {
		tree, err := listeners.Tree(p.PID())
		if err != nil {
			t.Fatal(err)
		}
		if ports, err := listeners.TCPPorts(tree); err != nil || len(ports) > 0 {
			t.Errorf("%s listens on TCP ports %v (%v), want none", p.Name, ports, err)
		}
	}
	targets := map[string]string{ // by server, the X-Amz-Target of a harmless call
		"dynalite": "DynamoDB_20120810.ListTables", "cognito-local": "AWSCognitoIdentityProviderService.ListUserPools",
		"local-kms": "TrentService.ListKeys",
	}
	for name, b := range backends {
		for _, sent := range []string{"", "not-the-token", b.Token} {
			req, _ := http.NewRequest(http.MethodPost, b.URL()+"/", strings.NewReader(`{"MaxResults":1}`))
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			req.Header.Set("X-Amz-Target", targets[name])
			unauthenticated := guard.Backend{Socket: b.Socket, Token: sent}
			resp, err := unauthenticated.Client().Do(req)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch refused := resp.StatusCode == http.StatusForbidden && strings.Contains(string(body), "only the local run's front"); {
			case sent != b.Token && !refused:
				t.Errorf("%s served a request with token %q: %d %s", name, sent, resp.StatusCode, body)
			case sent == b.Token && refused:
				t.Errorf("%s refused its front's token", name)
			}
		}
	}
}
