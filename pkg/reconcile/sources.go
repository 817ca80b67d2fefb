package reconcile

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/kandy"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/store"
)

// PageSize is Cognito's largest ListUsers page.
const PageSize = 60

// ListUsersAPI is the Cognito operation a reconcile needs.
type ListUsersAPI interface {
	ListUsers(ctx context.Context, in *cip.ListUsersInput, opts ...func(*cip.Options)) (*cip.ListUsersOutput, error)
}

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
			return listPool(ctx, users, pool, "", fn)
		},
	}
}

// listPool pages through the pool's users, filtered if filter is set.
func listPool(ctx context.Context, api ListUsersAPI, pool, filter string, fn func([]CognitoUser) error) error {
	in := &cip.ListUsersInput{UserPoolId: aws.String(pool), Limit: aws.Int32(PageSize)}
	if filter != "" {
		in.Filter = aws.String(filter)
	}
	for {
		out, err := api.ListUsers(ctx, in)
		if err != nil {
			return err
		}
		page := make([]CognitoUser, 0, len(out.Users))
		for _, u := range out.Users {
			cu := CognitoUser{Username: aws.ToString(u.Username), Confirmed: u.UserStatus == ciptypes.UserStatusTypeConfirmed}
			for _, a := range u.Attributes {
				if aws.ToString(a.Name) == "sub" {
					cu.Sub = aws.ToString(a.Value)
				}
			}
			page = append(page, cu)
		}
		if err := fn(page); err != nil {
			return err
		}
		if aws.ToString(out.PaginationToken) == "" {
			return nil
		}
		in.PaginationToken = out.PaginationToken
	}
}

// StillGone asks Cognito whether no user of the pool has sub, just
// before a gone user's account is deleted.
func StillGone(api ListUsersAPI, pool string) func(ctx context.Context, sub string) (bool, error) {
	return func(ctx context.Context, sub string) (bool, error) {
		found := false
		err := listPool(ctx, api, pool, fmt.Sprintf("sub = %q", sub), func(page []CognitoUser) error {
			for _, u := range page {
				found = found || u.Sub == sub
			}
			return nil
		})
		return !found && err == nil, err
	}
}
