package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/userid"
)

// A Kandy user removed behind the service's back is rebuilt by the next
// token request, which answers the new user's token, never a 500.
func TestAVanishedKandyUserIsRebuilt(t *testing.T) {
	stack.sim.SetQuota(roomy)
	sub := newSub()
	uid, _ := userid.FromSub(sub)
	user := asUser(t, stack.api, sub)
	if a := user.createUser(); a.StatusCode != 201 {
		t.Fatalf("POST /users = %d %s", a.StatusCode, a.Body)
	}
	before := record(t, sub)
	if err := stack.sim.Forget(uid); err != nil {
		t.Fatal(err)
	}
	a := user.userToken()
	if a.StatusCode != 200 || !strings.Contains(a.Body, "UAT") {
		t.Fatalf("POST /users/me/token of a vanished Kandy user = %d %s, want 200 and a token", a.StatusCode, a.Body)
	}
	if _, ok := stack.sim.User(uid); !ok {
		t.Fatal("the Kandy user was not created again")
	}
	after := record(t, sub)
	if after["status"] != "ACTIVE" || after["claim_token"] == before["claim_token"] || after["user_api_key"] == before["user_api_key"] {
		t.Errorf("record after the rebuild %v, want ACTIVE, a new generation and the new user's key", redact(after))
	}
}

// After the project secret is rotated, at Kandy and in Secrets Manager,
// the next request on a warm container succeeds: Kandy's refusal of the
// cached secret makes it read the secret again. (The domain token's own
// fetch after a rotation is pkg/kandy's TestARotatedSecretIsReadAgain.) A secret Kandy refuses
// even as read again is 503, naming our configuration, not Kandy.
func TestARotatedSecretIsUsedAtOnce(t *testing.T) {
	stack.sim.SetQuota(roomy)
	key, old := stack.sim.ProjectKey()
	put := func(secret string) {
		t.Helper()
		if err := stack.sim.SetProjectSecret(secret); err != nil {
			t.Fatal(err)
		}
		stack.Secrets.Put(secretID, fmt.Sprintf(`{"project_api_key":%q,"project_api_secret":%q}`, key, secret))
	}
	t.Cleanup(func() { put(old) })
	sub := newSub()
	user := asUser(t, stack.api, sub)
	if a := user.createUser(); a.StatusCode != 201 { // warms the container's cache
		t.Fatalf("POST /users = %d %s", a.StatusCode, a.Body)
	}
	put("DASrotated0000000001")
	if a := user.userToken(); a.StatusCode != 200 {
		t.Fatalf("the token after a rotation = %d %s, want 200", a.StatusCode, a.Body)
	}
	put("DASrotated0000000002")
	if a := asUser(t, stack.api, newSub()).createUser(); a.StatusCode != 201 {
		t.Fatalf("a sign-up after a second rotation = %d %s, want 201", a.StatusCode, a.Body)
	}
	// Kandy rotated, Secrets Manager not: the fresh read is refused too.
	if err := stack.sim.SetProjectSecret("DASrotated0000000003"); err != nil {
		t.Fatal(err)
	}
	a := user.userToken()
	if !wantError(t, "the token with a stale secret in Secrets Manager", a, 503, "unavailable") || !strings.Contains(a.Body, "configuration") {
		t.Errorf("answer %s does not name our configuration", a.Body)
	}
	if strings.Contains(a.Body, "DASrotated") {
		t.Errorf("the answer leaks the secret: %s", a.Body)
	}
}
