// Package reconcilesources wires reconcile's Sources to the concrete
// adapters, a user pool, a table and Kandy, for the two composition roots
// that reconcile: the scheduled function and the operators' tool.
// pkg/reconcile itself knows only what it compares.
package reconcilesources

import (
	"context"
	"fmt"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/kandy"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/reconcile"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/store"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/userpool"
)

// KandyLister lists the domain's Kandy users.
type KandyLister interface {
	ListUsers(ctx context.Context) ([]kandy.ListedUser, error)
}

// New is what reconcile reads: a user pool, a table (in segments scanned
// in parallel) and Kandy.
func New(users userpool.ListUsersAPI, pool string, scan store.ScanAPI, table string, segments int, k KandyLister) reconcile.Sources {
	return reconcile.Sources{
		Records:    Records(scan, table, segments),
		KandyUsers: KandyUsers(k),
		CognitoUsers: func(ctx context.Context, fn func([]userpool.User) error) error {
			return userpool.Each(ctx, users, pool, "", fn)
		},
	}
}

// Records reads a table's records, in segments scanned in parallel.
func Records(scan store.ScanAPI, table string, segments int) func(ctx context.Context, fn func(provision.Record) error) error {
	return func(ctx context.Context, fn func(provision.Record) error) error {
		return store.Scan(ctx, scan, table, segments, fn)
	}
}

// KandyUsers lists the domain's Kandy users as reconcile reads them.
func KandyUsers(k KandyLister) func(ctx context.Context) ([]reconcile.KandyUser, error) {
	return func(ctx context.Context) ([]reconcile.KandyUser, error) {
		listed, err := k.ListUsers(ctx)
		out := make([]reconcile.KandyUser, 0, len(listed))
		for _, u := range listed {
			out = append(out, reconcile.KandyUser{UserID: u.UserID, APIKey: u.UserAPIKey})
		}
		return out, err
	}
}

// StillGone asks Cognito whether no user of the pool has sub, just
// before a gone user's account is deleted.
func StillGone(api userpool.ListUsersAPI, pool string) func(ctx context.Context, sub string) (bool, error) {
	return func(ctx context.Context, sub string) (bool, error) {
		found := false
		err := userpool.Each(ctx, api, pool, fmt.Sprintf("sub = %q", sub), func(page []userpool.User) error {
			for _, u := range page {
				found = found || u.Sub == sub
			}
			return nil
		})
		return !found && err == nil, err
	}
}
