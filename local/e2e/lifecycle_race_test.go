package e2e

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
)

// TestDeleteDeletePostAcrossContainers replays, with real binaries in three
// containers, the interleaving that once left an ACTIVE record whose Kandy
// user was gone: two DELETEs read the same ACTIVE record; the first deletes
// the account; a POST creates it again under the same Kandy user id; the
// second DELETE, slowed in front of Kandy, lands on the new user while its
// credentials are being sealed. Whatever the outcome, the invariants hold.
func TestDeleteDeletePostAcrossContainers(t *testing.T) {
	r := newModelRig(t, 1)
	slowDelete := func(req *http.Request) time.Duration {
		if req.Method == http.MethodDelete {
			return 300 * time.Millisecond
		}
		return 0
	}
	r.wire.delay = slowDelete
	env := stack.Env("TABLE_NAME="+r.table, "KANDY_SECRET_ID="+r.secretID, "KANDY_API_URL="+r.env["KANDY_API_URL"],
		"AWS_ENDPOINT_URL_KMS="+delayed(t, stack.KMSURL, func(*http.Request) time.Duration { return 200 * time.Millisecond }))
	var fns [3]*processes.Function
	for i := range fns {
		fn, err := stack.StartFunction("ApiFunction", recordCalls("ApiFunction", env))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(fn.Stop)
		functionsStarted = append(functionsStarted, fn.Process)
		noteInvoked(t, fn.Process)
		fns[i] = fn
	}
	sub := newSub()
	var users [3]apiCaller // the same user, in each container
	for i, fn := range fns {
		users[i] = asUser(t, fn, sub)
	}
	if a := users[0].createUser(); a.StatusCode != 201 {
		t.Fatalf("POST /users = %d %s", a.StatusCode, a.Body)
	}

	var wg sync.WaitGroup
	statuses := make([]int, 3)
	wg.Add(2)
	go func() { defer wg.Done(); statuses[0] = users[0].deleteUser().StatusCode }()
	go func() {
		defer wg.Done()
		time.Sleep(50 * time.Millisecond) // reads the record while the first DELETE is under way
		statuses[1] = users[1].deleteUser().StatusCode
	}()
	time.Sleep(320 * time.Millisecond) // the first DELETE is done: its Kandy call took 300 ms
	statuses[2] = users[2].createUser().StatusCode
	wg.Wait()
	t.Logf("DELETE, DELETE, POST answered %v", statuses)
	for _, s := range statuses {
		if s >= 500 {
			t.Errorf("a request answered %d because of another request for the same user: %v", s, statuses)
		}
	}
	if problems := r.duringHistory(t, nil); len(problems) > 0 {
		t.Fatalf("invariants broken: %s", strings.Join(problems, "; "))
	}
	// Whatever the record says, the API agrees with Kandy.
	if rec := recordIn(t, r.table, sub); rec != nil && rec["status"] == "ACTIVE" {
		if a := users[0].userToken(); a.StatusCode != 200 {
			t.Fatalf("POST /users/me/token on an ACTIVE record = %d %s", a.StatusCode, a.Body)
		}
	}
}
