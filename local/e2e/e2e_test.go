package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/kandysim"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/fieldcrypt"
)

var subs atomic.Int64

func newSub() string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", subs.Add(1)) }

func init() {
	// Quota is exercised on purpose below; elsewhere it must not get in the way.
	roomy = 1000
}

var roomy int

func TestAccountLifecycle(t *testing.T) {
	stack.sim.SetQuota(roomy)
	sub := newSub()
	creates := stack.sim.Calls(kandysim.EndpointCreateUser)

	user := asUser(t, stack.api, sub)
	a := user.createUser()
	if a.StatusCode != 201 {
		t.Fatalf("POST /users = %d %s", a.StatusCode, a.Body)
	}
	for _, k := range []string{"user_id", "full_user_id", "domain_name", "created_at"} {
		if s, _ := a.JSON[k].(string); s == "" {
			t.Errorf("account view lacks %s: %s", k, a.Body)
		}
	}
	if len(a.JSON) != 4 {
		t.Errorf("account view has extra fields: %s", a.Body)
	}
	checkStoredSealed(t, sub, a)

	again := user.createUser()
	if again.StatusCode != 200 {
		t.Errorf("second POST /users: status %d, want 200", again.StatusCode)
	}
	if again.Body != a.Body {
		t.Errorf("second POST /users: body %s, want the first's %s", again.Body, a.Body)
	}
	if n := stack.sim.Calls(kandysim.EndpointCreateUser) - creates; n != 1 {
		t.Fatalf("Kandy creates = %d, want 1", n)
	}

	got := user.getUser()
	if got.StatusCode != 200 {
		t.Errorf("GET /users/me: status %d, want 200", got.StatusCode)
	}
	if got.Body != a.Body {
		t.Errorf("GET /users/me: body %s, want POST's %s", got.Body, a.Body)
	}

	tok := user.userToken()
	ut, _ := tok.JSON["user_access_token"].(string)
	if tok.StatusCode != 200 {
		t.Errorf("POST /users/me/token: status %d, want 200: %s", tok.StatusCode, tok.Body)
	}
	if !strings.HasPrefix(ut, "UAT") {
		t.Errorf("POST /users/me/token: user_access_token %.3q…, want the prefix UAT", ut)
	}
	if cc := tok.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("POST /users/me/token: Cache-Control %q, want no-store", cc)
	}

	del := user.deleteUser()
	// checkDeleted is meaningless if nothing was deleted.
	if del.StatusCode != 204 {
		t.Fatalf("DELETE /users/me: status %d, want 204: %s", del.StatusCode, del.Body)
	}
	if del.Body != "" {
		t.Errorf("DELETE /users/me: body %s, want none", del.Body)
	}
	checkDeleted(t, sub, a.JSON["user_id"])
}

// checkStoredSealed: the record of a new account is ACTIVE, holds the
// account view's user id, and its credentials sealed for its own sub only,
// none of them in the answer a.
func checkStoredSealed(t *testing.T, sub string, a apiAnswer) {
	t.Helper()
	rec := record(t, sub)
	if rec["status"] != "ACTIVE" {
		t.Errorf("stored status %q, want ACTIVE", rec["status"])
	}
	if rec["user_id"] != a.JSON["user_id"] {
		t.Errorf("stored user_id %q, want the account view's %v", rec["user_id"], a.JSON["user_id"])
	}
	// The checks below open the ciphertext.
	for _, k := range []string{"user_password", "user_api_secret"} {
		if rec[k] == "" {
			t.Fatalf("stored record has no %s: %v", k, redact(rec))
		}
	}
	if rec["user_password"] != rec["user_api_secret"] {
		t.Fatal("both secret attributes must hold the record's one ciphertext")
	}
	plain, err := fieldcrypt.Open(context.Background(), stack.KMS, table, sub, rec["user_password"])
	if err != nil {
		t.Fatalf("stored credentials do not decrypt for their sub: %v", err)
	}
	// Fatal: an empty secret would be "found" in any response below.
	if plain.UserPassword == "" {
		t.Fatal("decrypted credentials have no user password")
	}
	if !strings.HasPrefix(plain.UserAPISecret, "UAS") {
		t.Fatalf("decrypted user API secret %.3q…, want the prefix UAS", plain.UserAPISecret)
	}
	if _, err := fieldcrypt.Open(context.Background(), stack.KMS, table, newSub(), rec["user_password"]); err == nil {
		t.Fatal("the ciphertext decrypts for another sub")
	}
	for _, secret := range []string{rec["user_password"], plain.UserPassword, plain.UserAPISecret} {
		if strings.Contains(a.Body, secret) {
			t.Fatal("a response carries a stored secret")
		}
	}
}

// checkDeleted: after DELETE /users/me, a kept tombstone and no Kandy
// user; the routes answer as for no account; the trigger provisions
// nothing; the user's own POST /users, and only it, gives a new account.
func checkDeleted(t *testing.T, sub string, userID any) {
	t.Helper()
	tomb := record(t, sub)
	if tomb["status"] != "DELETED" {
		t.Fatalf("after DELETE: status %q, want DELETED: %v", tomb["status"], redact(tomb))
	}
	if tomb["deleted_at"] == "" {
		t.Errorf("after DELETE: the tombstone has no deleted_at: %v", redact(tomb))
	}
	if tomb["expires_at"] != "" {
		t.Errorf("after DELETE: expires_at %q, want none (a kept tombstone)", tomb["expires_at"])
	}
	for _, attr := range []string{"user_password", "user_api_secret", "user_api_key"} {
		if _, ok := tomb[attr]; ok {
			t.Errorf("the tombstone keeps %s", attr)
		}
	}
	for _, id := range stack.sim.UserIDs() {
		if id == userID {
			t.Fatal("Kandy user remains after DELETE")
		}
	}
	user := asUser(t, stack.api, sub)
	for _, c := range []struct {
		route string
		call  func() apiAnswer
	}{{"GET /users/me", user.getUser}, {"DELETE /users/me", user.deleteUser}, {"POST /users/me/token", user.userToken}} {
		wantError(t, c.route+" after delete", c.call(), 404, "not_provisioned")
	}
	invokeTrigger(t, loadEvent(t, "post-confirmation-signup.json", sub))
	if rec := record(t, sub); rec["status"] != "DELETED" {
		t.Fatalf("the trigger provisioned a deleted account: %v", redact(rec))
	}
	back := user.createUser()
	if back.StatusCode != 201 {
		t.Fatalf("POST /users after DELETE: status %d, want 201: %s", back.StatusCode, back.Body)
	}
	if back.JSON["user_id"] != userID {
		t.Errorf("POST /users after DELETE: user_id %v, want %v", back.JSON["user_id"], userID)
	}
	rec := record(t, sub)
	if rec["status"] != "ACTIVE" {
		t.Errorf("after the new POST: status %q, want ACTIVE: %v", rec["status"], redact(rec))
	}
	if rec["expires_at"] != "" {
		t.Errorf("after the new POST: expires_at %q, want none", rec["expires_at"])
	}
}

func TestRequestErrors(t *testing.T) {
	sub := newSub()
	noID := callRaw(t, stack.api, loadEvent(t, "create-user-no-identity.json", sub))
	wantError(t, "no identity", noID, 401, "unauthorized")
	withBody := func(body string) func(*testing.T) apiAnswer {
		return func(t *testing.T) apiAnswer { return asUser(t, stack.api, sub).createUserWithBody(body) }
	}
	// What the client cannot send: an event made by hand.
	rawEvent := func(mutate func(ev map[string]any)) func(*testing.T) apiAnswer {
		return func(t *testing.T) apiAnswer {
			ev := loadEvent(t, "create-user.json", sub)
			mutate(ev)
			return callRaw(t, stack.api, ev)
		}
	}
	tests := []struct {
		name   string
		call   func(t *testing.T) apiAnswer
		status int
		code   string
	}{
		{"malformed JSON", withBody(`{"user_country_code":`), 400, "invalid_request"},
		{"unknown field", withBody(`{"user_country_code":"US","sub":"someone-else"}`), 400, "invalid_request"},
		{"bad country", withBody(`{"user_country_code":"USA"}`), 400, "invalid_request"},
		{"two objects", withBody(`{} {}`), 400, "invalid_request"},
		{"over 4 KiB", withBody(`{"user_country_code":"US"` + strings.Repeat(" ", 4100) + `}`), 400, "invalid_request"},
		{"bad base64", rawEvent(func(ev map[string]any) { ev["isBase64Encoded"] = true; ev["body"] = "%%%" }), 400, "invalid_request"},
		{"unknown route", rawEvent(func(ev map[string]any) {
			ev["routeKey"] = "GET /admin"
			ev["requestContext"].(map[string]any)["routeKey"] = "GET /admin"
		}), 404, "not_found"},
		{"empty sub", func(t *testing.T) apiAnswer {
			claims := accessClaims(t, sub)
			claims["sub"] = ""
			return asCaller(t, stack.api, claims).createUser()
		}, 401, "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.call(t)
			wantError(t, tt.name, a, tt.status, tt.code)
			if a.errorMessage() == "" {
				t.Fatalf("error without a message: %s", a.Body)
			}
		})
	}
	if record(t, sub) != nil {
		t.Fatal("a refused request stored a record")
	}
}

func TestBase64Body(t *testing.T) {
	stack.sim.SetQuota(roomy)
	ev := loadEvent(t, "create-user.json", newSub())
	ev["isBase64Encoded"] = true
	ev["body"] = "eyJ1c2VyX2NvdW50cnlfY29kZSI6IisxIn0=" // {"user_country_code":"+1"}
	if a := callRaw(t, stack.api, ev); a.StatusCode != 201 {
		t.Fatalf("= %d %s", a.StatusCode, a.Body)
	}
}

func TestKandyDown(t *testing.T) {
	stack.sim.SetQuota(roomy)
	defer stack.sim.ClearFaults()
	sub := newSub()
	stack.sim.Inject(kandysim.EndpointCreateUser, kandysim.FaultHTTP500, 1)
	user := asUser(t, stack.api, sub)
	a := user.createUser()
	// What follows is about a create that failed.
	if !wantError(t, "POST /users", a, 502, "kandy_unavailable") {
		t.FailNow()
	}
	for _, internal := range []string{"500", "http"} {
		if strings.Contains(a.Body, internal) {
			t.Errorf("error message leaks internals (%q): %s", internal, a.Body)
		}
	}
	// Kandy may have created the user before it failed: the record stays
	// as evidence, its claim ended, and the next request recovers it.
	if rec := record(t, sub); rec["status"] != "PENDING" {
		t.Fatalf("after a failed create: %v", redact(rec))
	}
	wantError(t, "GET after a failed create", user.getUser(), 404, "not_provisioned")
	if a := user.createUser(); a.StatusCode != 201 {
		t.Fatalf("after Kandy is back = %d %s", a.StatusCode, a.Body)
	}
}

func TestQuotaExceeded(t *testing.T) {
	defer stack.sim.SetQuota(roomy)
	stack.sim.SetQuota(len(stack.sim.UserIDs()))
	sub := newSub()
	a := asUser(t, stack.api, sub).createUser()
	wantError(t, "POST /users", a, 403, "kandy_quota_exceeded")
	if record(t, sub) != nil {
		t.Fatal("quota exhaustion left a record")
	}
}

func invokeTrigger(t *testing.T, ev map[string]any) {
	t.Helper()
	in := mustJSON(t, ev)
	noteInvoked(t, stack.trigger.Process)
	start := time.Now()
	out, err := stack.trigger.Invoke(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("trigger took %v, over Cognito's 5 s", d)
	}
	var a, b bytes.Buffer
	_ = json.Compact(&a, in)
	if err := json.Compact(&b, out); err != nil {
		t.Fatalf("trigger answered no JSON: %v\n%s", err, out)
	}
	if a.String() != b.String() {
		t.Fatalf("trigger changed the event:\n in: %s\nout: %s", a.String(), out)
	}
}

func TestTriggerConfirmSignUp(t *testing.T) {
	stack.sim.SetQuota(roomy)
	sub := newSub()
	invokeTrigger(t, loadEvent(t, "post-confirmation-signup.json", sub))
	rec := record(t, sub)
	if rec["status"] != "ACTIVE" {
		t.Fatalf("record after sign-up = %v", redact(rec))
	}
	// The API finds the same account: one key, one account.
	creates := stack.sim.Calls(kandysim.EndpointCreateUser)
	a := asUser(t, stack.api, sub).createUser()
	if a.StatusCode != 200 {
		t.Errorf("POST /users after the trigger: status %d, want 200: %s", a.StatusCode, a.Body)
	}
	if a.JSON["user_id"] != rec["user_id"] {
		t.Errorf("POST /users after the trigger: user_id %v, want the trigger's %q", a.JSON["user_id"], rec["user_id"])
	}
	if n := stack.sim.Calls(kandysim.EndpointCreateUser) - creates; n != 0 {
		t.Errorf("POST /users after the trigger: %d Kandy creates, want 0", n)
	}
	// A repeated trigger is harmless.
	invokeTrigger(t, loadEvent(t, "post-confirmation-signup.json", sub))
	if stack.sim.Calls(kandysim.EndpointCreateUser) != creates {
		t.Fatal("a repeated trigger called Kandy create")
	}
}

func TestTriggerForgotPasswordDoesNothing(t *testing.T) {
	sub := newSub()
	before := stack.sim.CallCounts()
	invokeTrigger(t, loadEvent(t, "post-confirmation-forgot-password.json", sub))
	if after := stack.sim.CallCounts(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("Kandy was called: %v -> %v", before, after)
	}
	if record(t, sub) != nil {
		t.Fatal("ConfirmForgotPassword stored a record")
	}
}

func TestTriggerReturnsEventWhenProvisioningFails(t *testing.T) {
	tests := []struct {
		name  string
		setup func()
	}{
		{"Kandy down", func() { stack.sim.Inject(kandysim.EndpointCreateUser, kandysim.FaultHTTP500, 1) }},
		{"Kandy hangs", func() { stack.sim.Inject(kandysim.EndpointCreateUser, kandysim.FaultTimeout, 1) }},
		{"Kandy slow past the budget", func() { stack.sim.SetLatency(6 * time.Second) }},
		{"over quota", func() { stack.sim.SetQuota(len(stack.sim.UserIDs())) }},
		{"malformed answer", func() { stack.sim.Inject(kandysim.EndpointCreateUser, kandysim.FaultMalformed, 1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() { stack.sim.ClearFaults(); stack.sim.SetLatency(0); stack.sim.SetQuota(roomy) }()
			tt.setup()
			sub := newSub()
			invokeTrigger(t, loadEvent(t, "post-confirmation-signup.json", sub))
			if rec := record(t, sub); rec != nil && rec["status"] == "ACTIVE" {
				t.Fatalf("provisioning should have failed: %v", redact(rec))
			}
		})
	}
	// Later, the same user is provisioned through the API.
	stack.sim.SetQuota(roomy)
	sub := newSub()
	stack.sim.Inject(kandysim.EndpointCreateUser, kandysim.FaultHTTP500, 1)
	invokeTrigger(t, loadEvent(t, "post-confirmation-signup.json", sub))
	if a := asUser(t, stack.api, sub).createUser(); a.StatusCode != 201 {
		t.Fatalf("provisioning later = %d %s", a.StatusCode, a.Body)
	}
}

func TestMalformedTriggerEvent(t *testing.T) {
	before := stack.sim.CallCounts()
	for _, ev := range []map[string]any{
		{"triggerSource": "PostConfirmation_ConfirmSignUp", "request": map[string]any{"userAttributes": map[string]any{}}},
		{"triggerSource": "PostConfirmation_ConfirmSignUp", "request": "nonsense"},
		{},
	} {
		invokeTrigger(t, ev)
	}
	if after := stack.sim.CallCounts(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("Kandy was called for a malformed event: %v -> %v", before, after)
	}
}

func TestMissingConfigurationIsClear(t *testing.T) {
	var env []string
	for _, e := range stack.env {
		if !strings.HasPrefix(e, "TABLE_NAME=") {
			env = append(env, e)
		}
	}
	// The emulator passes its own environment through; make sure no
	// TABLE_NAME leaks in from the test's.
	os.Unsetenv("TABLE_NAME")
	for _, id := range []string{"ApiFunction", "PostConfirmationFunction"} {
		fn, err := processes.StartFunction(id, env)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := fn.Invoke(context.Background(), mustJSON(t, loadEvent(t, "create-user.json", newSub())))
		fn.Stop()
		if !strings.Contains(string(out), "missing required environment variable TABLE_NAME") {
			t.Errorf("%s answer = %s", id, out)
		}
		logs := fn.Output()
		if !strings.Contains(logs, "TABLE_NAME") {
			t.Errorf("%s logs do not name TABLE_NAME: %s", id, logs)
		}
		for _, crash := range []string{"goroutine ", "panic"} {
			if strings.Contains(logs, crash) {
				t.Errorf("%s logs show a crash (%q): %s", id, crash, logs)
			}
		}
	}
}

// redact hides a record's secrets in failure messages.
func redact(rec map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range rec {
		if k == "user_password" || k == "user_api_secret" {
			v = "…"
		}
		out[k] = v
	}
	return out
}
