// Package userpool reads a Cognito user pool's users, page by page, for
// the operators' backfill and reconcile.
package userpool

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
)

// PageSize is Cognito's largest ListUsers page.
const PageSize = 60

// ListUsersAPI is the one Cognito operation needed.
type ListUsersAPI interface {
	ListUsers(ctx context.Context, in *cip.ListUsersInput, opts ...func(*cip.Options)) (*cip.ListUsersOutput, error)
}

// User is what the tools need of a Cognito user.
type User struct {
	Username, Sub string
	Confirmed     bool
}

// Pages reads the pool's users, filtered when filter is set, page by page
// from token ("" for the first), and calls fn with each page and the token
// of the next ("" after the last). It stops at fn's first error.
func Pages(ctx context.Context, api ListUsersAPI, pool, filter, token string, fn func(users []User, next string) error) error {
	in := &cip.ListUsersInput{UserPoolId: aws.String(pool), Limit: aws.Int32(PageSize)}
	if filter != "" {
		in.Filter = aws.String(filter)
	}
	if token != "" {
		in.PaginationToken = aws.String(token)
	}
	p := cip.NewListUsersPaginator(api, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		users := make([]User, 0, len(out.Users))
		for _, u := range out.Users {
			cu := User{Username: aws.ToString(u.Username), Confirmed: u.UserStatus == ciptypes.UserStatusTypeConfirmed}
			for _, a := range u.Attributes {
				if aws.ToString(a.Name) == "sub" {
					cu.Sub = aws.ToString(a.Value)
				}
			}
			users = append(users, cu)
		}
		if err := fn(users, aws.ToString(out.PaginationToken)); err != nil {
			return err
		}
	}
	return nil
}

// Each reads every page, calling fn for each.
func Each(ctx context.Context, api ListUsersAPI, pool, filter string, fn func([]User) error) error {
	return Pages(ctx, api, pool, filter, "", func(users []User, _ string) error { return fn(users) })
}
