// Package memstore is an in-memory accounts store with the same contract
// as pkg/store's DynamoDB one (internal/accountstest checks both), for the
// domain's unit tests and benchmarks.
package memstore

import (
	"context"
	"sync"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// Accounts keeps records in a map; every write is conditional, as in
// DynamoDB.
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

// Claim creates a PENDING record, or takes over an expired claim.
func (m *Accounts) Claim(_ context.Context, c provision.Claim) (provision.Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.recs[c.Sub]; ok && (r.Status == provision.StatusActive || !r.ClaimExpiresAt.Before(c.Now)) {
		return r, false, nil
	}
	m.recs[c.Sub] = provision.Record{
		Sub: c.Sub, UserID: c.UserID, Status: provision.StatusPending, ClaimToken: c.Token,
		ClaimExpiresAt: c.ExpiresAt, Generation: c.Token, CreatedAt: c.Now, UpdatedAt: c.Now,
	}
	return provision.Record{}, true, nil
}

// held returns the record if it has status under c's claim.
func (m *Accounts) held(c provision.Claim, status string) (provision.Record, bool) {
	r, ok := m.recs[c.Sub]
	return r, ok && r.Status == status && r.ClaimToken == c.Token
}

// Finalize stores the credentials of a PENDING record under c.
func (m *Accounts) Finalize(_ context.Context, c provision.Claim, cr provision.Credentials) (provision.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.held(c, provision.StatusPending)
	if !ok {
		return provision.Record{}, provision.ErrClaimLost
	}
	r.Status, r.ClaimToken, r.ClaimExpiresAt = provision.StatusActive, "", time.Time{}
	r.FullUserID, r.DomainName, r.UserAPIKey = cr.FullUserID, cr.DomainName, cr.UserAPIKey
	r.UserAPISecret, r.UserPassword, r.CreatedAt, r.UpdatedAt = cr.UserAPISecret, cr.UserPassword, c.Now, c.Now
	m.recs[c.Sub] = r
	return r, nil
}

// Release deletes a PENDING record under c.
func (m *Accounts) Release(_ context.Context, c provision.Claim) error {
	return m.deleteHeld(c, provision.StatusPending)
}

// deleteHeld deletes the record if it is in status under c.
func (m *Accounts) deleteHeld(c provision.Claim, status string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.held(c, status); !ok {
		return provision.ErrClaimLost
	}
	delete(m.recs, c.Sub)
	return nil
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
func (m *Accounts) ClaimDelete(_ context.Context, c provision.Claim, seen provision.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[c.Sub]
	switch {
	case seen.Status == "" && ok, seen.Status != "" && !ok:
		return provision.ErrClaimLost
	case !ok:
		r = provision.Record{Sub: c.Sub, UserID: c.UserID, CreatedAt: c.Now}
	case r.Status != seen.Status || r.Generation != seen.Generation ||
		(r.Status != provision.StatusActive && !r.ClaimExpiresAt.Before(c.Now)):
		return provision.ErrClaimLost
	}
	r.Status, r.ClaimToken, r.ClaimExpiresAt, r.Generation, r.UpdatedAt = provision.StatusDeleting, c.Token, c.ExpiresAt, c.Token, c.Now
	m.recs[c.Sub] = r
	return nil
}

// FinishDelete deletes a DELETING record under c.
func (m *Accounts) FinishDelete(_ context.Context, c provision.Claim) error {
	return m.deleteHeld(c, provision.StatusDeleting)
}
