package processes

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/kandy-provisioner/kandy-provisioner/local/guard"
)

// TestBackendsAnswerOnlyTheirFront: started for a front, dynalite,
// cognito-local, local-kms and goaws refuse every request without the
// front's token (a page that found their port, a rebound name) and serve
// those with it.
func TestBackendsAnswerOnlyTheirFront(t *testing.T) {
	token := guard.NewToken()
	dynalite, err := StartDynaliteForFront("", token)
	if err != nil {
		t.Fatal(err)
	}
	defer dynalite.Stop()
	cognito, err := StartCognitoLocalForFront(t.TempDir(), map[string]any{}, token)
	if err != nil {
		t.Fatal(err)
	}
	defer cognito.Stop()
	kms, err := StartKMSForFront(t.TempDir(), token)
	if err != nil {
		t.Fatal(err)
	}
	defer kms.Stop()
	sqs, err := StartSQS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sqs.Stop()
	targets := map[string]string{ // by server, the X-Amz-Target of a harmless call
		"dynalite": "DynamoDB_20120810.ListTables", "cognito-local": "AWSCognitoIdentityProviderService.ListUserPools",
		"local-kms": "TrentService.ListKeys", "goaws": "",
	}
	for _, p := range []*Process{dynalite, cognito, kms, sqs.Process()} {
		for _, sent := range []string{"", "not-the-token", token} {
			if p.Name == "goaws" && sent == token {
				continue // its own token is the SQS front's, not this test's
			}
			req, _ := http.NewRequest(http.MethodPost, "http://"+p.Addr+"/", strings.NewReader(`{"MaxResults":1}`))
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			req.Header.Set("X-Amz-Target", targets[p.Name])
			if sent != "" {
				req.Header.Set(guard.TokenHeader, sent)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", p.Name, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch refused := resp.StatusCode == http.StatusForbidden && strings.Contains(string(body), "only the local run's front"); {
			case sent != token && !refused:
				t.Errorf("%s served a request with token %q: %d %s", p.Name, sent, resp.StatusCode, body)
			case sent == token && refused:
				t.Errorf("%s refused its front's token", p.Name)
			}
		}
	}
}
