package provision

import "time"

// Hooks for the external tests.

// ClaimMargin is the margin a claim outlives its holder's deadline by.
func (s *Service) ClaimMargin() time.Duration { return s.claimMargin }

// ClaimTTL is a claim's life when the caller has no deadline.
func (s *Service) ClaimTTL() time.Duration { return s.claimTTL }

// SetFinalizeTries changes how often finalize tries to store the answer.
func (s *Service) SetFinalizeTries(n int) { s.finalizeTries = n }

// NewToken draws a claim token.
var NewToken = newToken

// SetClaimMargin changes the margin, for tests that wait for a claim to end.
func (s *Service) SetClaimMargin(d time.Duration) { s.claimMargin = d }
