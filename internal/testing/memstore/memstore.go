// Package memstore is an in-memory accounts store with the same contract
// as pkg/store's DynamoDB one (internal/testing/accountstest checks both), for the
// domain's unit tests and benchmarks. Each write asks provision's rule for
// its transition, as DynamoDB's condition expressions do.
package memstore

import (
	"context"
	"sync"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// Accounts keeps records in a map.
type Accounts struct {
	mu   sync.Mutex
	recs map[string]provision.Record
}

var _ provision.Accounts = (*Accounts)(nil)

// New returns an empty store.
func New() *Accounts { return &Accounts{recs: map[string]provision.Record{}} }

// Put stores rec as it is, for tests that start from a given state.
func (m *Accounts) Put(rec provision.Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs[rec.Sub] = rec
}

// Sweep removes the tombstones expired at now, as DynamoDB's TTL does some
// time after their expiry.
func (m *Accounts) Sweep(now time.Time) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for sub, r := range m.recs {
		if r.Expired(now) {
			delete(m.recs, sub)
			n++
		}
	}
	return n
}

// write applies a transition to sub's record under the lock: may says
// whether the rule holds for the record as stored (the zero Record when
// there is none), next is what replaces it (the zero Record removes it).
func (m *Accounts) write(sub string, may func(provision.Record) bool, next func(provision.Record) provision.Record) (provision.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.recs[sub]
	if !may(cur) {
		return cur, provision.ErrClaimLost
	}
	n := next(cur)
	if n.Exists() {
		m.recs[sub] = n
	} else {
		delete(m.recs, sub)
	}
	return n, nil
}

// Claim makes the record PENDING under c.
func (m *Accounts) Claim(_ context.Context, c provision.Claim) (provision.Record, bool, error) {
	cur, err := m.write(c.Sub, func(r provision.Record) bool { return provision.MayClaim(r, c) },
		func(provision.Record) provision.Record {
			return provision.Record{Sub: c.Sub, UserID: c.UserID, Status: provision.StatusPending, ClaimToken: c.Token,
				ClaimExpiresAt: c.ExpiresAt, Generation: c.Token, CreatedAt: c.Now, UpdatedAt: c.Now}
		})
	if err != nil {
		return cur, false, nil
	}
	return provision.Record{}, true, nil
}

// Finalize stores the credentials of a PENDING record under c.
func (m *Accounts) Finalize(_ context.Context, c provision.Claim, cr provision.Credentials) (provision.Record, error) {
	return m.write(c.Sub, func(r provision.Record) bool { return provision.MayEndCreate(r, c) },
		func(r provision.Record) provision.Record {
			r.Status, r.ClaimToken, r.ClaimExpiresAt = provision.StatusActive, "", time.Time{}
			r.FullUserID, r.DomainName, r.UserAPIKey = cr.FullUserID, cr.DomainName, cr.UserAPIKey
			r.UserAPISecret, r.UserPassword, r.CreatedAt, r.UpdatedAt = cr.UserAPISecret, cr.UserPassword, c.Now, c.Now
			return r
		})
}

// Release ends c's claim at c.Now and keeps the record.
func (m *Accounts) Release(_ context.Context, c provision.Claim) error {
	_, err := m.write(c.Sub, func(r provision.Record) bool { return provision.MayEndCreate(r, c) },
		func(r provision.Record) provision.Record {
			r.ClaimExpiresAt, r.UpdatedAt = c.Now, c.Now
			return r
		})
	return err
}

// Drop deletes a PENDING record under c.
func (m *Accounts) Drop(_ context.Context, c provision.Claim) error {
	_, err := m.write(c.Sub, func(r provision.Record) bool { return provision.MayEndCreate(r, c) },
		func(provision.Record) provision.Record { return provision.Record{} })
	return err
}

// Get returns the record; ErrNotProvisioned if there is none.
func (m *Accounts) Get(_ context.Context, sub string) (provision.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[sub]
	if !ok {
		return provision.Record{}, provision.ErrNotProvisioned
	}
	return r, nil
}

// ClaimDelete makes the record DELETING under c, if it is still as seen.
func (m *Accounts) ClaimDelete(_ context.Context, c provision.Claim, seen provision.Record, end provision.Ending) error {
	_, err := m.write(c.Sub, func(r provision.Record) bool { return provision.MayClaimDelete(r, seen, c) },
		func(r provision.Record) provision.Record {
			if !r.Exists() {
				r = provision.Record{Sub: c.Sub, UserID: c.UserID, CreatedAt: c.Now}
			}
			r.Status, r.ClaimToken, r.ClaimExpiresAt, r.Generation, r.UpdatedAt = provision.StatusDeleting, c.Token, c.ExpiresAt, c.Token, c.Now
			r.DeletedAt, r.ExpiresAt = time.Time{}, end.ExpiresAt
			return r
		})
	return err
}

// FinishDelete leaves end in place of a DELETING record under c.
func (m *Accounts) FinishDelete(_ context.Context, c provision.Claim, end provision.Ending) error {
	_, err := m.write(c.Sub, func(r provision.Record) bool { return provision.MayFinishDelete(r, c) },
		func(r provision.Record) provision.Record {
			if !end.Tombstone {
				return provision.Record{}
			}
			return provision.Record{Sub: r.Sub, UserID: r.UserID, Status: provision.StatusDeleted, Generation: r.Generation,
				CreatedAt: r.CreatedAt, UpdatedAt: c.Now, DeletedAt: c.Now, ExpiresAt: end.ExpiresAt}
		})
	return err
}

// Expire gives a tombstone still as seen an expiry.
func (m *Accounts) Expire(_ context.Context, seen provision.Record, at, now time.Time) error {
	_, err := m.write(seen.Sub, func(r provision.Record) bool { return provision.MayExpire(r, seen) },
		func(r provision.Record) provision.Record {
			r.ExpiresAt, r.UpdatedAt = at, now
			return r
		})
	return err
}
