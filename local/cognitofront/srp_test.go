package cognitofront

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// srpPool is a pool's records as PoolStore gives them.
type srpPool struct{}

const (
	srpPoolID, srpClientID = "us-east-1_Srp1Pool", "srpclient"
	srpUser, srpPassword   = "5b7c1a7e-2f33-4a7f-9d1e-8c2f6a0b9e11", "Correct-Horse-7!"
)

func (srpPool) Client(id string) (string, []string, error) {
	if id != srpClientID {
		return "", nil, fmt.Errorf("no client %s", id)
	}
	return srpPoolID, []string{"ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"}, nil
}

func (srpPool) User(pool, name string) (string, string, bool) {
	if pool == srpPoolID && (name == "ada@example.com" || name == srpUser) {
		return srpUser, srpPassword, true
	}
	return "", "", false
}

// passwordPool stands in for cognito-local past the SRP exchange: it
// signs in with USER_PASSWORD_AUTH and the pool's password only.
type passwordPool struct {
	mu    sync.Mutex
	calls []string
}

func (p *passwordPool) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in struct {
		AuthFlow       string
		ClientId       string
		AuthParameters map[string]string
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	p.mu.Lock()
	p.calls = append(p.calls, r.Header.Get("X-Amz-Target")+" "+in.AuthFlow+" "+in.AuthParameters["USERNAME"])
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if in.AuthFlow != "USER_PASSWORD_AUTH" || in.AuthParameters["USERNAME"] != srpUser || in.AuthParameters["PASSWORD"] != srpPassword {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"NotAuthorizedException","message":"Incorrect username or password."}`))
		return
	}
	now := time.Now().Unix()
	jwt := func(use string) string {
		claims, _ := json.Marshal(map[string]any{"sub": srpUser, "username": srpUser, "token_use": use, "client_id": srpClientID,
			"aud": srpClientID, "iss": "http://pool/" + srpPoolID, "iat": now, "exp": now + 3600})
		return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(claims) + ".c2ln"
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"ChallengeParameters": map[string]string{}, "AuthenticationResult": map[string]any{
		"AccessToken": jwt("access"), "IdToken": jwt("id"), "RefreshToken": "refresh", "ExpiresIn": 3600, "TokenType": "Bearer"}})
}

// amplifySignIn signs in with Amplify's defaults through the front at url.
func amplifySignIn(t *testing.T, url, username, password string) map[string]any {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	console := filepath.Join(filepath.Dir(file), "..", "console")
	var stderr strings.Builder
	cmd := exec.Command("node", filepath.Join(filepath.Dir(file), "testdata", "amplify-signin.cjs"),
		console, url, srpPoolID, srpClientID, username, password)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("Amplify's sign-in (is local/console installed? make console): %v\n%s%s", err, out, stderr.String())
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("Amplify's sign-in printed %s", out)
	}
	return got
}

// Amplify v6 signs in with USER_SRP_AUTH unless told otherwise, which
// cognito-local cannot answer: the front answers it, proving the
// password with the verifier the pool's password gives, and only then
// signs the user in at the pool, with its own call.
func TestAmplifysDefaultSignInThroughTheFront(t *testing.T) {
	next := &passwordPool{}
	srv := httptest.NewServer(&Interceptor{Next: next, Pool: srpPool{}})
	defer srv.Close()

	if got := amplifySignIn(t, srv.URL, "ada@example.com", srpPassword); got["signedIn"] != true || got["step"] != "DONE" {
		t.Fatalf("Amplify's sign-in with the right password: %v, want signed in", got)
	}
	want := "AWSCognitoIdentityProviderService.InitiateAuth USER_PASSWORD_AUTH " + srpUser
	if len(next.calls) != 1 || next.calls[0] != want {
		t.Errorf("the pool was sent %q, want one %q", next.calls, want)
	}
	next.calls = nil
	for _, c := range []struct{ user, password string }{{"ada@example.com", "Wrong-Horse-7!"}, {"bob@example.com", srpPassword}} {
		if got := amplifySignIn(t, srv.URL, c.user, c.password); got["error"] != "NotAuthorizedException" {
			t.Errorf("Amplify's sign-in as %s with %s: %v, want NotAuthorizedException", c.user, strings.Repeat("*", 3), got)
		}
	}
	if len(next.calls) != 0 {
		t.Errorf("a failed SRP proof reached the pool: %q", next.calls)
	}
}
