package provision_test

import (
	"context"
	"testing"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// TestATombstoneOfNoAccountNamesItsKandyUser: a user who deletes, or
// leaves the pool, before any account existed gets a tombstone that still
// names the Kandy user id of their sub, as every record does.
func TestATombstoneOfNoAccountNamesItsKandyUser(t *testing.T) {
	for name, remove := range map[string]func(*provision.Service) error{
		"delete": func(s *provision.Service) error { _, err := s.Delete(context.Background(), sub); return err },
		"leave":  func(s *provision.Service) error { return s.Deprovision(context.Background(), sub) },
	} {
		w := newWorld(t)
		if err := remove(w.svc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		rec, ok := w.record(t)
		if !ok || rec.Status != provision.StatusDeleted || rec.UserID != uid {
			t.Errorf("%s: record %+v, want a tombstone of %s", name, rec, uid)
		}
		if calls := w.kandy.callList(); len(calls) != 0 {
			t.Errorf("%s: Kandy calls %q, want none: there was no account", name, calls)
		}
	}
}
