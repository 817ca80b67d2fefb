package kandy_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/kandy"
)

// TestACachedTokenIsUsedWithoutWaiting: with a domain token cached, a call
// does not wait on a token fetch, so a caller whose context has already
// ended is told its own call failed, never that it waited for a token.
func TestACachedTokenIsUsedWithoutWaiting(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/domains/accesstokens" {
			fmt.Fprint(w, `{"status":0,"result":{"domain_access_token":"DATabcdef0123456789"}}`)
			return
		}
		fmt.Fprint(w, `{"status":0,"result":{"users":[]}}`)
	}))
	defer srv.Close()
	c, err := kandy.New(kandy.Options{BaseURL: srv.URL, Keys: staticKeys{APIKey: "DAKk", APISecret: "DASs"}, Backoff: []time.Duration{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListUsers(context.Background()); err != nil {
		t.Fatal(err) // caches the token
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	// Several tries: a wait that races the cached answer loses some.
	for range 20 {
		_, err := c.ListUsers(ended)
		var ke *kandy.Error
		if !errors.As(err, &ke) || ke.Op != "list users" || !errors.Is(err, context.Canceled) {
			t.Fatalf("ListUsers with an ended context = %v, want the list call's own failure", err)
		}
	}
}
