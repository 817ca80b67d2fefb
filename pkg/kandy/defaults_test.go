package kandy_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/kandy"
)

// TestDefaultBackoffWaits50Then200ms: with no Backoff given, the retries
// of an idempotent call wait 50 ms, then 200 ms, giving a Kandy that
// failed a moment to recover.
func TestDefaultBackoffWaits50Then200ms(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/domains/accesstokens" {
			fmt.Fprint(w, `{"status":0,"result":{"domain_access_token":"DATabcdef0123456789"}}`)
			return
		}
		mu.Lock()
		at = append(at, time.Now())
		n := len(at)
		mu.Unlock()
		if n < 3 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, `{"status":0,"result":{"users":[]}}`)
	}))
	defer srv.Close()
	c, err := kandy.New(kandy.Options{BaseURL: srv.URL, Keys: staticKeys{APIKey: "DAKk", APISecret: "DASs"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListUsers(context.Background()); err != nil {
		t.Fatalf("list = %v after %d calls, want success after two retries", err, len(at))
	}
	if len(at) != 3 {
		t.Fatalf("%d calls, want 3", len(at))
	}
	if first, second := at[1].Sub(at[0]), at[2].Sub(at[1]); first < 50*time.Millisecond || second < 200*time.Millisecond {
		t.Errorf("retries after %v and %v, want 50 ms and 200 ms", first, second)
	}
}
