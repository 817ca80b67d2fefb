package reconcile_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/reconcile"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/userid"
)

// TestCompareListsItemsByClassThenSub: a report reads the same however
// the three systems listed their users: by class, then by sub. Its drift
// leaves out the users who deleted their account.
func TestCompareListsItemsByClassThenSub(t *testing.T) {
	var pool []reconcile.CognitoUser
	var records []provision.Record
	var kandyUsers []reconcile.KandyUser
	var want []string
	// Listed from the highest sub down, so no source's order is the report's.
	for i := 4; i >= 0; i-- {
		s := func(class int) string { return fmt.Sprintf("00000000-0000-4000-8000-%03d%09d", class, i) }
		// missing: confirmed, with nothing.
		pool = append(pool, reconcile.CognitoUser{Username: s(1), Sub: s(1), Confirmed: true})
		// orphan: a Kandy user of one who never confirmed.
		pool = append(pool, reconcile.CognitoUser{Username: s(2), Sub: s(2)})
		id, _ := userid.FromSub(s(2))
		kandyUsers = append(kandyUsers, reconcile.KandyUser{UserID: id, APIKey: "k"})
		// gone: an account whose user left no trace in the pool.
		records = append(records, provision.Record{Sub: s(3), UserID: "u", Status: provision.StatusActive, Generation: "g"})
		// deleted by the user: a tombstone of a user still in the pool.
		pool = append(pool, reconcile.CognitoUser{Username: s(4), Sub: s(4), Confirmed: true})
		records = append(records, provision.Record{Sub: s(4), UserID: "u", Status: provision.StatusDeleted, Generation: "g"})
	}
	for _, c := range []struct {
		class reconcile.Class
		n     int
	}{{reconcile.DeletedByUser, 4}, {reconcile.Gone, 3}, {reconcile.Missing, 1}, {reconcile.Orphan, 2}} {
		for i := range 5 {
			want = append(want, fmt.Sprintf("%s %s", c.class, fmt.Sprintf("00000000-0000-4000-8000-%03d%09d", c.n, i)))
		}
	}
	if !slices.IsSorted(want) {
		t.Fatalf("the expected order is not by class then sub: %q", want)
	}
	src := reconcile.Sources{
		Records: func(_ context.Context, fn func(provision.Record) error) error {
			for _, r := range records {
				if err := fn(r); err != nil {
					return err
				}
			}
			return nil
		},
		KandyUsers:   func(context.Context) ([]reconcile.KandyUser, error) { return kandyUsers, nil },
		CognitoUsers: func(_ context.Context, fn func([]reconcile.CognitoUser) error) error { return fn(pool) },
	}
	rep, err := reconcile.Compare(context.Background(), src, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range rep.Items {
		got = append(got, fmt.Sprintf("%s %s", it.Class, it.Sub))
	}
	if !slices.Equal(got, want) {
		t.Errorf("items\n%q\nwant\n%q", got, want)
	}
	if rep.Drift() != 15 || rep.Count(reconcile.DeletedByUser) != 5 {
		t.Errorf("drift %d, deleted by the user %d; want 15 and 5", rep.Drift(), rep.Count(reconcile.DeletedByUser))
	}
}
