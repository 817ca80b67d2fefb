package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/internal/kandysim"
	"github.com/kandy-provisioner/kandy-provisioner/internal/localenv"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// userDeleted is the CloudTrail event of a deletion of sub, by the
// administrator or by the user, as EventBridge delivers it.
func userDeleted(t *testing.T, file, sub string) []byte {
	t.Helper()
	return mustJSON(t, loadEvent(t, file, sub))
}

// TestDeprovisionFunction runs the built function under the emulator on
// the events CloudTrail delivers: each deletion leaves a tombstone that
// expires and no Kandy user; duplicates, strangers and sub-less events
// change nothing in Kandy and succeed; with Kandy down the invocation
// fails, so it is retried, and the retry finishes.
func TestDeprovisionFunction(t *testing.T) {
	fs := newFaultStack(t)
	api := fs.start(t, "ApiFunction", 0)
	// A short timeout keeps a failed delete's claim short: it lasts the
	// invocation's deadline and the service's margin.
	dep := fs.start(t, "DeprovisionFunction", 1)
	invoked[dep.Process] = true
	ctx := context.Background()
	provisioned := func(sub string) {
		t.Helper()
		if a := invokeStatus(t, api, "create-user.json", sub); a != 201 {
			t.Fatalf("POST /users = %d", a)
		}
	}
	deprovision := func(file, sub string) error {
		t.Helper()
		_, err := dep.Call(ctx, userDeleted(t, file, sub))
		var fe *localenv.FunctionError
		if err != nil && !errors.As(err, &fe) {
			t.Fatal(err)
		}
		return err
	}
	tombstone := func(sub string) map[string]string {
		t.Helper()
		rec := recordIn(t, fs.table, sub)
		expires, _ := strconv.ParseInt(rec["expires_at"], 10, 64)
		want := time.Now().Add(provision.TombstoneTTL).Unix()
		if rec["status"] != "DELETED" || expires < want-60 || expires > want+60 {
			t.Fatalf("record of %s = %v; want a tombstone expiring in 30 days", sub, redact(rec))
		}
		for _, attr := range []string{"user_password", "user_api_secret", "user_api_key"} {
			if rec[attr] != "" {
				t.Fatalf("the tombstone of %s keeps %s", sub, attr)
			}
		}
		uid := rec["user_id"]
		if _, ok := listKandyUsers(t, fs.sim)[uid]; ok {
			t.Fatalf("%s left the pool and keeps Kandy user %s", sub, uid)
		}
		return rec
	}

	admin, self := newSub(), newSub()
	provisioned(admin)
	provisioned(self)
	for file, sub := range map[string]string{"user-deleted-admin.json": admin, "user-deleted-self.json": self} {
		if err := deprovision(file, sub); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		first := tombstone(sub)
		_, deletes := fs.wire.counts()
		if err := deprovision(file, sub); err != nil {
			t.Fatalf("%s, again: %v", file, err)
		}
		if again := tombstone(sub); again["claim_token"] != first["claim_token"] || again["expires_at"] != first["expires_at"] {
			t.Fatalf("a duplicate changed the tombstone: %v -> %v", redact(first), redact(again))
		}
		if _, d := fs.wire.counts(); d != deletes {
			t.Fatalf("a duplicate deleted in Kandy again")
		}
	}

	_, deletes := fs.wire.counts()
	stranger := newSub()
	if err := deprovision("user-deleted-admin.json", stranger); err != nil {
		t.Fatalf("a stranger: %v", err)
	}
	tombstone(stranger) // so a sign-up still queued for a retry cannot provision them
	noSub := loadEvent(t, "user-deleted-self.json", newSub())
	delete(noSub["detail"].(map[string]any), "additionalEventData")
	if _, err := dep.Call(ctx, mustJSON(t, noSub)); err != nil {
		t.Fatalf("an event with no sub: %v", err)
	}
	if _, d := fs.wire.counts(); d != deletes {
		t.Fatal("a stranger or a sub-less event reached Kandy")
	}

	down := newSub()
	provisioned(down)
	fs.sim.Inject(kandysim.EndpointDeleteUser, kandysim.FaultHTTP500, 1000)
	err := deprovision("user-deleted-admin.json", down)
	var fe *localenv.FunctionError
	if !errors.As(err, &fe) {
		t.Fatalf("with Kandy down the invocation succeeded; it would not be retried")
	}
	fs.sim.ClearFaults()
	retried := 1
	for deadline := time.Now().Add(15 * time.Second); deprovision("user-deleted-admin.json", down) != nil; retried++ {
		if time.Now().After(deadline) {
			t.Fatal("the retry never finished the delete")
		}
		time.Sleep(500 * time.Millisecond)
	}
	tombstone(down)
	fmt.Fprintf(os.Stdout, "deprovision: admin and self deletions tombstoned, duplicates and strangers changed nothing in Kandy, Kandy outage finished after %d retries\n", retried)
}
