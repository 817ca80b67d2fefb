package provision

import (
	"errors"
	"fmt"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/userid"
)

// Errors of the domain and of its ports. Adapters return these (or errors
// that match them with errors.Is); CodeOf names each one's kind.
var (
	ErrNotProvisioned = errors.New("no Kandy account for this user")
	// ErrAccountDeleted answers an automatic path (the trigger, the retry
	// worker, backfill, reconcile) for a user who deleted their account or
	// left the pool: only the user's own POST /users provisions them again.
	ErrAccountDeleted = fmt.Errorf("%w: the account was deleted", ErrNotProvisioned)
	// ErrAccountClosed answers Ensure for a user who left the pool, the
	// user's own request with a still-valid token included: it is final.
	// Every automatic path sees it as ErrAccountDeleted.
	ErrAccountClosed = fmt.Errorf("%w: the user left the pool", ErrAccountDeleted)
	ErrInProgress    = errors.New("provisioning already in progress for this user")
	ErrInvalidSub    = userid.ErrInvalidSub

	// ErrInvalidRequest is wrapped by every refusal of a caller's input.
	ErrInvalidRequest     = errors.New("invalid request")
	ErrInvalidCountryCode = fmt.Errorf("%w: user_country_code must be an ISO 3166 alpha-2 code or + and 1 to 3 digits", ErrInvalidRequest)
	// ErrUnauthorized means the caller has no identity.
	ErrUnauthorized = errors.New("no caller identity")

	// Errors of the Kandy port.
	ErrQuotaExceeded    = errors.New("Kandy refused: the account's user limit is reached")
	ErrKandyUnavailable = errors.New("Kandy failed or timed out")
	// ErrKandyCredentialsRefused means Kandy refused the project's key and
	// secret, read again from Secrets Manager: every later call fails the
	// same way until an operator fixes the secret. It is our configuration
	// that failed, not Kandy.
	ErrKandyCredentialsRefused = errors.New("Kandy refused the project's credentials: the Kandy secret needs an operator")
	ErrKandyUserExists         = errors.New("the Kandy user already exists")
	ErrKandyNoSuchUser         = errors.New("the Kandy user does not exist")

	// ErrUnavailable means one of the service's own AWS dependencies
	// (DynamoDB, KMS, Secrets Manager) failed, throttled or timed out: the
	// caller may retry. A *DependencyError names which.
	ErrUnavailable = errors.New("a dependency of the service failed or timed out")

	// ErrClaimLost is the accounts port's answer when a conditional write
	// finds the record changed: the claim expired and was taken over, or
	// the record is not in the state the caller saw.
	ErrClaimLost = errors.New("claim lost")
)

// DependencyError is a failure of one of the service's own AWS
// dependencies that a retry may get past: a throttle, a server error, a
// lost connection or a time-out. It matches ErrUnavailable.
type DependencyError struct {
	Dependency string // "dynamodb", "kms" or "secretsmanager"
	Err        error
}

func (e *DependencyError) Error() string { return e.Dependency + ": " + e.Err.Error() }

// Unwrap matches ErrUnavailable and the cause.
func (e *DependencyError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }

// Code names a kind of failure, the same way in every answer and log: the
// HTTP API's error codes, the trigger's logged reasons and the retry
// queue's dead-letter reasons.
type Code string

// The codes. Adding one means adding it here, to Codes and to CodeOf; a
// test checks that every adapter that answers with codes knows them all.
const (
	CodeInvalidRequest   Code = "invalid_request"
	CodeUnauthorized     Code = "unauthorized"
	CodeNotProvisioned   Code = "not_provisioned"
	CodeAccountClosed    Code = "account_closed"
	CodeInProgress       Code = "provisioning_in_progress"
	CodeQuotaExceeded    Code = "kandy_quota_exceeded"
	CodeKandyUnavailable Code = "kandy_unavailable"
	CodeUnavailable      Code = "unavailable"
	CodeInternal         Code = "internal"
)

// Codes lists every code.
var Codes = []Code{
	CodeInvalidRequest, CodeUnauthorized, CodeNotProvisioned, CodeAccountClosed,
	CodeInProgress, CodeQuotaExceeded, CodeKandyUnavailable, CodeUnavailable, CodeInternal,
}

// codeOf is checked in order; the first error that matches names the code.
var codeOf = []struct {
	err  error
	code Code
}{
	{ErrInvalidRequest, CodeInvalidRequest},
	{ErrUnauthorized, CodeUnauthorized},
	{ErrInvalidSub, CodeUnauthorized},
	{ErrAccountClosed, CodeAccountClosed},
	{ErrNotProvisioned, CodeNotProvisioned},
	{ErrInProgress, CodeInProgress},
	{ErrQuotaExceeded, CodeQuotaExceeded},
	{ErrKandyCredentialsRefused, CodeUnavailable},
	{ErrKandyUnavailable, CodeKandyUnavailable},
	{ErrKandyUserExists, CodeKandyUnavailable},
	{ErrKandyNoSuchUser, CodeKandyUnavailable},
	{ErrUnavailable, CodeUnavailable},
}

// CodeOf names the kind of err; nil has no code, and an error the domain
// does not know is CodeInternal.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	for _, c := range codeOf {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return CodeInternal
}
