package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/reconcile"
)

// TestReconcileAgainstCognitoLocal seeds every class of drift, checks the
// report counts them exactly, repairs one class at a time (each --fix
// repairs exactly its class), and ends in agreement, with the Kandy user
// outside our scheme untouched.
func TestReconcileAgainstCognitoLocal(t *testing.T) {
	w := newDriftWorld(t, 1000)
	want := w.seed(t)
	code, out, errOut := w.run(t, "--verbose")
	t.Logf("report of the seeded drift:\n%s%s", out, errOut)
	if code != driftRemains {
		t.Errorf("exit %d, want %d (drift remains)", code, driftRemains)
	}
	// Each --fix below is checked against these counts.
	if got := reportCounts(t, out); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("counts %v, want %v", got, want)
	}
	key, secret := w.sim.ProjectKey()
	for _, leak := range append(w.sim.Issued(), key, secret, "UAK", "Permanent-password") {
		if strings.Contains(out+errOut, leak) {
			t.Fatalf("the report shows a credential (%.4s…)", leak)
		}
	}
	for _, line := range []string{`orphan +sub=`, `foreign +user_id=bob`} {
		if !regexp.MustCompile(line).MatchString(out) {
			t.Errorf("no line per item: no match for %q in:\n%s", line, out)
		}
	}
	for _, class := range []string{"orphan", "gone", "stale", "broken", "missing"} {
		code, out, errOut = w.run(t, "--fix", class)
		t.Logf("--fix %s:\n%s%s", class, out, errOut)
		if code == failed {
			t.Errorf("--fix %s: exit %d (failed)", class, code)
		}
		expectContains(t, "--fix "+class+": stdout", out, fmt.Sprintf("(%d repaired)", want[class]))
		_, out, _ = w.run(t)
		got := reportCounts(t, out)
		want[class] = 0
		switch class {
		case "stale": // both confirmed: the creation is finished, the delete too
			want["in agreement"]++
			want["deleted_by_user"]++
		case "gone": // tombstones of users who left the pool
			want["in agreement"] += 2
		case "broken", "missing":
			want["in agreement"] += 2
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("after --fix %s: %v, want %v", class, got, want)
		}
	}
	code, out, _ = w.run(t, "--json")
	if code != 0 {
		t.Errorf("last run: exit %d, want 0 (in agreement)", code)
	}
	expectContains(t, "last run: stdout", out, `"drift_remaining": 0`)
	if _, ok := w.sim.User("bob"); !ok {
		t.Fatal("a Kandy user outside our scheme was touched")
	}
}

func TestReconcileRefusesBulkDeletes(t *testing.T) {
	w := newDriftWorld(t, 1000)
	w.seed(t)
	code, out, errOut := w.run(t, "--fix", "gone,orphan,broken", "--max-deletes", "4")
	if code != failed {
		t.Errorf("over --max-deletes: exit %d, want %d (failed)", code, failed)
	}
	expectContains(t, "over --max-deletes: stderr", errOut, "over the limit of 4")
	expectContains(t, "over --max-deletes: stdout", out, "drift remaining: 9")
	empty := newDriftWorld(t, 1000)
	empty.table, empty.env["TABLE_NAME"], empty.env["KANDY_SECRET_ID"], empty.env["KANDY_API_URL"] =
		w.table, w.table, w.env["KANDY_SECRET_ID"], w.env["KANDY_API_URL"]
	code, _, errOut = empty.run(t, "--fix", "gone")
	if code != failed {
		t.Errorf("empty pool: exit %d, want %d (failed)", code, failed)
	}
	expectContains(t, "empty pool: stderr", errOut, "Cognito listed no users")
	code, out, errOut = w.run(t, "--fix", "gone,orphan,broken", "--max-deletes", "4", "--force")
	if code == failed {
		t.Errorf("forced: exit %d (failed)\n%s", code, errOut)
	}
	expectContains(t, "forced: stderr", errOut, "forced past a refusal")
	expectContains(t, "forced: stdout", out, "5 repaired")
	code, _, errOut = w.run(t, "--fix", "nonsense")
	if code != failed {
		t.Errorf("bad class: exit %d, want %d (failed)", code, failed)
	}
	expectContains(t, "bad class: stderr", errOut, "--fix takes")
}

// Repairs stop when Kandy's user limit is reached.
func TestReconcileStopsOnQuota(t *testing.T) {
	w := newDriftWorld(t, 3)
	for i := 0; i < 6; i++ {
		w.user(t, fmt.Sprintf("u%d", i), true)
	}
	code, out, errOut := w.run(t, "--fix", "missing", "--concurrency", "1")
	if code != driftRemains {
		t.Errorf("exit %d, want %d (drift remains)\n%s", code, driftRemains, errOut)
	}
	expectContains(t, "stdout", out, "(3 repaired)", "stopped:")
}

// A reconcile that repairs everything while users create and delete their
// accounts breaks none of the invariants of an account's life.
func TestReconcileWhileTheServiceRuns(t *testing.T) {
	w := newDriftWorld(t, 1000)
	w.seed(t)
	var subs []string
	for i := 0; i < 6; i++ {
		subs = append(subs, w.user(t, fmt.Sprintf("live%d", i), true))
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i, sub := range subs {
		svc := w.service(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if (n+i)%3 == 2 {
					_ = deleted(svc, context.Background(), sub)
				} else {
					_, _, _ = svc.Ensure(context.Background(), sub, provision.EnsureOptions{ByUser: true})
				}
			}
		}()
	}
	code, out, errOut := w.run(t, "--fix", "missing,gone,orphan,stale,broken", "--concurrency", "8")
	close(stop)
	wg.Wait()
	if code == failed {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	w.checkInvariants(t)
}

// checkInvariants: every ACTIVE record holds its Kandy user's credentials,
// every Kandy user of our scheme has one record, and no claim outlived
// its expiry.
func (w *driftWorld) checkInvariants(t *testing.T) {
	t.Helper()
	code, out, _ := w.run(t, "--json")
	var got struct {
		Report         reconcile.Report      `json:"report"`
		Fix            *reconcile.FixSummary `json:"fix,omitempty"`
		DriftRemaining int                   `json:"drift_remaining"`
	}
	if code == failed {
		t.Fatalf("exit %d (failed)\n%s", code, out)
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out)
	}
	for _, it := range got.Report.Items {
		// A user may have just deleted their account, or be about to
		// create it again.
		if it.Class != reconcile.Missing && it.Class != reconcile.DeletedByUser {
			t.Errorf("after repairs beside live requests: %+v", it)
		}
	}
}

// A pool of 1,000 users is read whole (cognito-local answers in one page;
// the paging itself is tested in pkg/reconcile with a fake that pages).
func TestReconcileReadsAThousandUsers(t *testing.T) {
	w := newDriftWorld(t, 1000)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < 1000; i += 4 {
				if _, err := w.addUser(fmt.Sprintf("p%04d", i), false); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	w.ensure(t, w.user(t, "confirmed", true))
	code, out, errOut := w.run(t)
	if code != 0 {
		t.Errorf("exit %d, want 0 (in agreement)\n%s", code, errOut)
	}
	expectContains(t, "stdout", out, "1001 Cognito users, 1 records")
	if n := reportCounts(t, out)["in agreement"]; n != 1 {
		t.Errorf("%d in agreement, want 1", n)
	}
}
