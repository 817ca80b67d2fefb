package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/kandysim"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// userDeleted is the CloudTrail event of a deletion of sub, by the
// administrator or by the user, as EventBridge delivers it.
func userDeleted(t *testing.T, file, sub string) []byte {
	t.Helper()
	return mustJSON(t, loadEvent(t, file, sub))
}

// deprovisionRig is a stack of its own with the API and the deprovision
// function under the emulator.
type deprovisionRig struct {
	fs       *faultStack
	api, dep *processes.Function
}

func (r *deprovisionRig) provisioned(t *testing.T, sub string) {
	t.Helper()
	if a := asUser(t, r.api, sub).createUser(); a.StatusCode != 201 {
		t.Fatalf("POST /users = %d %s", a.StatusCode, a.Body)
	}
}

// deprovision delivers events/<file> for sub; the error is the function's.
func (r *deprovisionRig) deprovision(t *testing.T, file, sub string) error {
	t.Helper()
	_, err := r.dep.Call(context.Background(), userDeleted(t, file, sub))
	var fe *processes.FunctionError
	if err != nil && !errors.As(err, &fe) {
		t.Fatal(err)
	}
	return err
}

// tombstone checks that sub has a tombstone expiring in 30 days, with no
// credentials and no Kandy user, and returns it.
func (r *deprovisionRig) tombstone(t *testing.T, sub string) map[string]string {
	t.Helper()
	rec := recordIn(t, r.fs.table, sub)
	expires, _ := strconv.ParseInt(rec["expires_at"], 10, 64)
	want := time.Now().Add(provision.TombstoneTTL).Unix()
	if rec["status"] != "DELETED" {
		t.Fatalf("record of %s: status %q, want DELETED: %v", sub, rec["status"], redact(rec))
	}
	if expires < want-60 || expires > want+60 {
		t.Fatalf("tombstone of %s expires at %d (%q), want %d ± 60 (in 30 days)", sub, expires, rec["expires_at"], want)
	}
	for _, attr := range []string{"user_password", "user_api_secret", "user_api_key"} {
		if rec[attr] != "" {
			t.Fatalf("the tombstone of %s keeps %s", sub, attr)
		}
	}
	if _, ok := listKandyUsers(t, r.fs.sim)[rec["user_id"]]; ok {
		t.Fatalf("%s left the pool and keeps Kandy user %s", sub, rec["user_id"])
	}
	return rec
}

// TestDeprovisionFunction runs the built function under the emulator on
// the events CloudTrail delivers: each deletion leaves a tombstone that
// expires and no Kandy user; duplicates, strangers and sub-less events
// change nothing in Kandy and succeed; with Kandy down the invocation
// fails, so it is retried, and the retry finishes.
func TestDeprovisionFunction(t *testing.T) {
	r := &deprovisionRig{fs: newFaultStack(t)}
	r.api = r.fs.start(t, "ApiFunction", 0)
	// A short timeout keeps a failed delete's claim short: it lasts the
	// invocation's deadline and the service's margin.
	r.dep = r.fs.start(t, "DeprovisionFunction", 1)
	noteInvoked(t, r.dep.Process)
	t.Run("deletions and their duplicates", r.deletions)
	t.Run("strangers and sub-less events", r.strangers)
	t.Run("Kandy down", r.kandyDown)
}

func (r *deprovisionRig) deletions(t *testing.T) {
	admin, self := newSub(), newSub()
	r.provisioned(t, admin)
	r.provisioned(t, self)
	for file, sub := range map[string]string{"user-deleted-admin.json": admin, "user-deleted-self.json": self} {
		if err := r.deprovision(t, file, sub); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		first := r.tombstone(t, sub)
		_, deletes := r.fs.wire.counts()
		if err := r.deprovision(t, file, sub); err != nil {
			t.Fatalf("%s, again: %v", file, err)
		}
		again := r.tombstone(t, sub)
		for _, k := range []string{"claim_token", "expires_at"} {
			if again[k] != first[k] {
				t.Errorf("a duplicate changed the tombstone's %s: %q -> %q", k, first[k], again[k])
			}
		}
		if _, d := r.fs.wire.counts(); d != deletes {
			t.Fatalf("a duplicate deleted in Kandy again")
		}
	}
}

func (r *deprovisionRig) strangers(t *testing.T) {
	_, deletes := r.fs.wire.counts()
	stranger := newSub()
	if err := r.deprovision(t, "user-deleted-admin.json", stranger); err != nil {
		t.Fatalf("a stranger: %v", err)
	}
	r.tombstone(t, stranger) // so a sign-up still queued for a retry cannot provision them
	noSub := loadEvent(t, "user-deleted-self.json", newSub())
	delete(noSub["detail"].(map[string]any), "additionalEventData")
	if _, err := r.dep.Call(context.Background(), mustJSON(t, noSub)); err != nil {
		t.Fatalf("an event with no sub: %v", err)
	}
	if _, d := r.fs.wire.counts(); d != deletes {
		t.Fatal("a stranger or a sub-less event reached Kandy")
	}
}

func (r *deprovisionRig) kandyDown(t *testing.T) {
	down := newSub()
	r.provisioned(t, down)
	r.fs.sim.Inject(kandysim.EndpointDeleteUser, kandysim.FaultHTTP500, 1000)
	err := r.deprovision(t, "user-deleted-admin.json", down)
	var fe *processes.FunctionError
	if !errors.As(err, &fe) {
		t.Fatalf("with Kandy down the invocation succeeded; it would not be retried")
	}
	r.fs.sim.ClearFaults()
	retried := 1
	for deadline := time.Now().Add(15 * time.Second); r.deprovision(t, "user-deleted-admin.json", down) != nil; retried++ {
		if time.Now().After(deadline) {
			t.Fatal("the retry never finished the delete")
		}
		time.Sleep(500 * time.Millisecond)
	}
	r.tombstone(t, down)
	fmt.Fprintf(os.Stdout, "deprovision: Kandy outage: the invocation failed, and the retry %d finished the delete once the claim expired\n", retried)
}
