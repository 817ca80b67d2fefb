package reconcile

import (
	"context"
	"fmt"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/kandy"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/store"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/userpool"
)

// PageSize is Cognito's largest ListUsers page.
const PageSize = userpool.PageSize

// ListUsersAPI is the Cognito operation a reconcile needs.
type ListUsersAPI = userpool.ListUsersAPI

// KandyLister lists the domain's Kandy users.
type KandyLister interface {
	ListUsers(ctx context.Context) ([]kandy.ListedUser, error)
}

// NewSources reads a user pool, a table (in segments scanned in parallel)
// and Kandy.
func NewSources(users ListUsersAPI, pool string, scan store.ScanAPI, table string, segments int, k KandyLister) Sources {
	return Sources{
		Records: func(ctx context.Context, fn func(provision.Record) error) error {
			return store.Scan(ctx, scan, table, segments, fn)
		},
		KandyUsers: func(ctx context.Context) ([]KandyUser, error) {
			listed, err := k.ListUsers(ctx)
			out := make([]KandyUser, 0, len(listed))
			for _, u := range listed {
				out = append(out, KandyUser{UserID: u.UserID, APIKey: u.UserAPIKey})
			}
			return out, err
		},
		CognitoUsers: func(ctx context.Context, fn func([]CognitoUser) error) error {
			return userpool.Each(ctx, users, pool, "", fn)
		},
	}
}

// StillGone asks Cognito whether no user of the pool has sub, just
// before a gone user's account is deleted.
func StillGone(api ListUsersAPI, pool string) func(ctx context.Context, sub string) (bool, error) {
	return func(ctx context.Context, sub string) (bool, error) {
		found := false
		err := userpool.Each(ctx, api, pool, fmt.Sprintf("sub = %q", sub), func(page []CognitoUser) error {
			for _, u := range page {
				found = found || u.Sub == sub
			}
			return nil
		})
		return !found && err == nil, err
	}
}
