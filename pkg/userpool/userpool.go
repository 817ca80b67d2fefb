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

// Page reads one page of the pool's users, filtered when filter is set,
// from token ("" for the first); next is "" after the last page.
func Page(ctx context.Context, api ListUsersAPI, pool, filter, token string) (users []User, next string, err error) {
	in := &cip.ListUsersInput{UserPoolId: aws.String(pool), Limit: aws.Int32(PageSize)}
	if filter != "" {
		in.Filter = aws.String(filter)
	}
	if token != "" {
		in.PaginationToken = aws.String(token)
	}
	out, err := api.ListUsers(ctx, in)
	if err != nil {
		return nil, "", err
	}
	users = make([]User, 0, len(out.Users))
	for _, u := range out.Users {
		cu := User{Username: aws.ToString(u.Username), Confirmed: u.UserStatus == ciptypes.UserStatusTypeConfirmed}
		for _, a := range u.Attributes {
			if aws.ToString(a.Name) == "sub" {
				cu.Sub = aws.ToString(a.Value)
			}
		}
		users = append(users, cu)
	}
	return users, aws.ToString(out.PaginationToken), nil
}

// Each reads every page, calling fn for each.
func Each(ctx context.Context, api ListUsersAPI, pool, filter string, fn func([]User) error) error {
	token := ""
	for {
		page, next, err := Page(ctx, api, pool, filter, token)
		if err != nil {
			return err
		}
		if err := fn(page); err != nil {
			return err
		}
		if next == "" {
			return nil
		}
		token = next
	}
}
