package kandysim

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// call sends one Kandy request and returns the envelope's result.
func call(t *testing.T, s *Sim, method, path string, q url.Values, body string) map[string]any {
	t.Helper()
	r := httptest.NewRequest(method, path+"?"+q.Encode(), strings.NewReader(body))
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	var env struct {
		Status int            `json:"status"`
		Result map[string]any `json:"result"`
	}
	if w.Code != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d, want 200: %s", method, path, w.Code, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
		t.Fatalf("%s %s: %v: %s", method, path, err, w.Body)
	}
	if env.Status != 0 {
		t.Fatalf("%s %s: status %d, want 0: %s", method, path, env.Status, w.Body)
	}
	return env.Result
}

func domainToken(t *testing.T, s *Sim) string {
	key, secret := s.ProjectKey()
	tok := call(t, s, "GET", "/domains/accesstokens", url.Values{"key": {key}, "domain_api_secret": {secret}}, "")
	return tok["domain_access_token"].(string)
}

func TestOpenResumesTheProjectKeyAndTheUsers(t *testing.T) {
	file := filepath.Join(t.TempDir(), "kandy.json")
	first, err := Open(Options{Quota: 3}, file)
	if err != nil {
		t.Fatal(err)
	}
	tok := url.Values{"key": {domainToken(t, first)}}
	for _, id := range []string{"u1", "u2", "u3"} {
		call(t, first, "POST", "/domains/users/user_id", tok, `{"user_id":"`+id+`","user_country_code":"US"}`)
	}
	call(t, first, "DELETE", "/domains/users", url.Values{"key": tok["key"], "user_id": {"u2"}}, "")
	created := first.UserAPIKeys()

	second, err := Open(Options{Quota: 3}, file)
	if err != nil {
		t.Fatal(err)
	}
	if k1, _ := first.ProjectKey(); k1 != must(second.ProjectKey()) {
		t.Fatal("the project key changed across the restart")
	}
	if got, want := second.UserAPIKeys(), map[string]string{"u1": created["u1"], "u3": created["u3"]}; !maps.Equal(got, want) {
		t.Fatalf("users after the restart = %v, want u1 and u3 as before: %v", got, want)
	}
	// The quota counts the users that came back.
	tok2 := url.Values{"key": {domainToken(t, second)}}
	call(t, second, "POST", "/domains/users/user_id", tok2, `{"user_id":"u4","user_country_code":"US"}`)
	w := httptest.NewRecorder()
	second.ServeHTTP(w, httptest.NewRequest("POST", "/domains/users/user_id?"+tok2.Encode(), strings.NewReader(`{"user_id":"u5","user_country_code":"US"}`)))
	if !strings.Contains(w.Body.String(), `"status":1`) {
		t.Fatalf("a fourth user over a quota of 3: %s", w.Body)
	}
	key, secret := second.ProjectKey()
	if token := call(t, second, "GET", "/domains/users/accesstokens", url.Values{"key": {key}, "domain_api_secret": {secret}, "user_id": {"u1"}}, ""); token["user_access_token"] == "" {
		t.Fatal("no user token for a user from before the restart")
	}
}

func must(key, _ string) string { return key }
