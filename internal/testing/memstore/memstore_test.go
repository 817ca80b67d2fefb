package memstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/accountstest"
	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/memstore"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

func TestContract(t *testing.T) {
	accountstest.Contract(t, func(*testing.T) provision.Accounts { return memstore.New() })
}

// Sweep removes what DynamoDB's TTL would: tombstones expired, and nothing else.
func TestSweepRemovesExpiredTombstonesOnly(t *testing.T) {
	m := memstore.New()
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	m.Put(provision.Record{Sub: "due", Status: provision.StatusDeleted, ExpiresAt: now})
	m.Put(provision.Record{Sub: "later", Status: provision.StatusDeleted, ExpiresAt: now.Add(time.Second)})
	m.Put(provision.Record{Sub: "kept", Status: provision.StatusDeleted})
	m.Put(provision.Record{Sub: "active", Status: provision.StatusActive})
	if n := m.Sweep(now); n != 1 {
		t.Fatalf("swept %d, want 1", n)
	}
	for sub, want := range map[string]bool{"due": false, "later": true, "kept": true, "active": true} {
		_, err := m.Get(context.Background(), sub)
		if got := err == nil; got != want {
			t.Errorf("%s present = %v, want %v", sub, got, want)
		}
	}
}
