package reconcilesources

import (
	"context"
	"fmt"
	"sort"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/kandy"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/userpool"
)

func sub(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

type noKandy struct{}

func (noKandy) ListUsers(context.Context) ([]kandy.ListedUser, error) { return nil, nil }

// pagingPool serves ListUsers in pages, and honours a sub filter.
type pagingPool struct{ users []ciptypes.UserType }

func (p pagingPool) ListUsers(_ context.Context, in *cip.ListUsersInput, _ ...func(*cip.Options)) (*cip.ListUsersOutput, error) {
	users := p.users
	if f := aws.ToString(in.Filter); f != "" {
		users = nil
		for _, u := range p.users {
			if fmt.Sprintf("sub = %q", aws.ToString(u.Attributes[0].Value)) == f {
				users = append(users, u)
			}
		}
	}
	start := 0
	fmt.Sscan(aws.ToString(in.PaginationToken), &start)
	end := min(start+int(aws.ToInt32(in.Limit)), len(users))
	out := &cip.ListUsersOutput{Users: users[start:end]}
	if end < len(users) {
		out.PaginationToken = aws.String(fmt.Sprint(end))
	}
	return out, nil
}

func TestSourcesPageThroughThePool(t *testing.T) {
	var p pagingPool
	for n := 0; n < 1000; n++ {
		status := ciptypes.UserStatusTypeConfirmed
		if n%7 == 0 {
			status = ciptypes.UserStatusTypeUnconfirmed
		}
		p.users = append(p.users, ciptypes.UserType{Username: aws.String(fmt.Sprint(n)), UserStatus: status,
			Attributes: []ciptypes.AttributeType{{Name: aws.String("sub"), Value: aws.String(sub(n))}}})
	}
	src := New(p, "pool", nil, "table", 1, noKandy{})
	var seen []string
	confirmed := 0
	err := src.CognitoUsers(context.Background(), func(page []userpool.User) error {
		if len(page) > userpool.PageSize {
			t.Fatalf("a page of %d", len(page))
		}
		for _, u := range page {
			seen = append(seen, u.Sub)
			if u.Confirmed {
				confirmed++
			}
		}
		return nil
	})
	sort.Strings(seen)
	if err != nil {
		t.Fatalf("CognitoUsers: %v", err)
	}
	if len(seen) != 1000 {
		t.Fatalf("%d users, want 1000", len(seen))
	}
	if seen[0] != sub(0) {
		t.Errorf("first sub %q, want %q", seen[0], sub(0))
	}
	if seen[999] != sub(999) {
		t.Errorf("last sub %q, want %q", seen[999], sub(999))
	}
	if confirmed != 1000-143 {
		t.Errorf("%d confirmed, want %d", confirmed, 1000-143)
	}
	gone := StillGone(p, "pool")
	if g, err := gone(context.Background(), sub(500)); err != nil {
		t.Fatalf("StillGone of a listed user: %v", err)
	} else if g {
		t.Error("a listed user is gone")
	}
	if g, err := gone(context.Background(), sub(5000)); err != nil {
		t.Fatalf("StillGone of an unlisted user: %v", err)
	} else if !g {
		t.Error("an unlisted user is not gone")
	}
}
