package provision_test

import (
	"context"
	"fmt"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/memstore"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// An account's life, as the HTTP API, the trigger and the deletion event
// drive it, over the in-memory store and a fake Kandy.
func Example() {
	ctx := context.Background()
	svc, _ := provision.New(memstore.New(), newKandy(), provision.Options{Logger: quiet})
	const sub = "6f1c2a9e-4b7d-4e2a-9c3f-1a2b3c4d5e6f"
	user := provision.EnsureOptions{ByUser: true}

	a, created, _ := svc.Ensure(ctx, sub, user)
	fmt.Println("POST /users:", a.UserID, "created:", created)
	_, created, _ = svc.Ensure(ctx, sub, user)
	fmt.Println("POST /users again, created:", created)

	had, _ := svc.Delete(ctx, sub)
	fmt.Println("DELETE /users/me, had an account:", had)
	_, err := svc.Get(ctx, sub)
	fmt.Println("GET /users/me:", provision.CodeOf(err))
	_, _, err = svc.Ensure(ctx, sub, provision.EnsureOptions{})
	fmt.Println("a late sign-up retry:", provision.CodeOf(err))

	_, created, _ = svc.Ensure(ctx, sub, user)
	fmt.Println("POST /users after the delete, created:", created)

	_ = svc.Deprovision(ctx, sub)
	_, _, err = svc.Ensure(ctx, sub, user)
	fmt.Println("POST /users after leaving the pool:", provision.CodeOf(err))
	// Output:
	// POST /users: u6f1c2a9e4b7d4e2a9c3f1a2b3c4d5e6f created: true
	// POST /users again, created: false
	// DELETE /users/me, had an account: true
	// GET /users/me: not_provisioned
	// a late sign-up retry: not_provisioned
	// POST /users after the delete, created: true
	// POST /users after leaving the pool: account_closed
}

// Ensure is idempotent, and keyed by the sub alone: the trigger and the
// user's own POST /users never make two accounts.
func ExampleService_Ensure() {
	ctx := context.Background()
	k := newKandy()
	svc, _ := provision.New(memstore.New(), k, provision.Options{Logger: quiet})
	const sub = "0f8fad5b-d9cb-469f-a165-70867728950e"
	_, byTrigger, _ := svc.Ensure(ctx, sub, provision.EnsureOptions{})
	_, byUser, _ := svc.Ensure(ctx, sub, provision.EnsureOptions{ByUser: true, CountryCode: "GB"})
	fmt.Println("created by the trigger:", byTrigger, "by the user:", byUser, "Kandy users:", len(k.users))
	// Output: created by the trigger: true by the user: false Kandy users: 1
}

// The token route: a Kandy login token for the account; one whose Kandy
// user vanished is rebuilt first.
func ExampleService_UserToken() {
	ctx := context.Background()
	k := newKandy()
	svc, _ := provision.New(memstore.New(), k, provision.Options{Logger: quiet})
	const sub = "0f8fad5b-d9cb-469f-a165-70867728950e"
	a, _, _ := svc.Ensure(ctx, sub, provision.EnsureOptions{ByUser: true})
	delete(k.users, a.UserID) // removed at Kandy behind the service's back
	tok, err := svc.UserToken(ctx, sub)
	fmt.Println(tok, err)
	// Output: UATu0f8fad5bd9cb469fa16570867728950e <nil>
}
