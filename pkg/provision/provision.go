// Package provision is the domain: it gives each sub exactly one Kandy
// account and keeps its credentials. The HTTP API, the Cognito trigger and
// the operations CLI all go through Service.
package provision

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Record is one user's stored account.
type Record struct {
	Sub           string
	UserID        string
	FullUserID    string
	DomainName    string
	UserAPIKey    string
	UserAPISecret string
	UserPassword  string
	Status        Status
	// ClaimToken and ClaimExpiresAt are the claim of a PENDING or DELETING
	// record (see ClaimLive); empty for an ACTIVE or DELETED one.
	ClaimToken     string
	ClaimExpiresAt time.Time
	// Generation names this incarnation of the record: the token of the
	// claim that wrote its current state. A record deleted and created
	// again has another, so a request that read the old one cannot act on
	// the new one.
	Generation string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// DeletedAt is when a tombstone was written; ExpiresAt, when DynamoDB's
	// TTL removes it (zero: kept).
	DeletedAt time.Time
	ExpiresAt time.Time
}

// LogValue keeps credentials out of logs.
func (r Record) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user_id", r.UserID), slog.String("status", string(r.Status)))
}

// Account is what callers may see of a record: no secrets.
type Account struct {
	UserID     string    `json:"user_id"`
	FullUserID string    `json:"full_user_id"`
	DomainName string    `json:"domain_name"`
	CreatedAt  time.Time `json:"created_at"`
}

func (r Record) account() Account {
	return Account{UserID: r.UserID, FullUserID: r.FullUserID, DomainName: r.DomainName, CreatedAt: r.CreatedAt}
}

// Claim is a time-limited, exclusive right to create or delete one sub's
// Kandy user. Its times are whole milliseconds, as DynamoDB keeps them, so
// every store judges its expiry at the same instant.
type Claim struct {
	Sub       string
	UserID    string
	Token     string
	ExpiresAt time.Time
	Now       time.Time
	// ByUser marks the user's own request (POST /users): only it may take
	// over a tombstone or a delete abandoned half-way (see MayClaim).
	ByUser bool
}

// Credentials are what Kandy returned at creation. The password and the
// user API secret are shown only then.
type Credentials struct {
	FullUserID    string
	DomainName    string
	UserAPIKey    string
	UserAPISecret string
	UserPassword  string
}

// LogValue keeps the secrets out of logs.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

func (c Credentials) String() string {
	return "provision.Credentials{FullUserID:" + c.FullUserID + " [REDACTED]}"
}

// GoString keeps %#v as safe as %v.
func (c Credentials) GoString() string { return c.String() }

// Accounts is the store of records. Every write is one transition of
// state.go, made only if its rule holds for the record as stored; when it
// does not, the write changes nothing and returns ErrClaimLost.
type Accounts interface {
	// Claim makes the record PENDING under c if MayClaim holds; otherwise
	// it returns the existing record and false.
	Claim(ctx context.Context, c Claim) (existing Record, claimed bool, err error)
	// Finalize stores the credentials and makes the record ACTIVE (MayEndCreate).
	Finalize(ctx context.Context, c Claim, creds Credentials) (Record, error)
	// Release ends c's claim at c.Now and keeps the PENDING record (MayEndCreate).
	Release(ctx context.Context, c Claim) error
	// Drop deletes c's PENDING record (MayEndCreate).
	Drop(ctx context.Context, c Claim) error
	// Get reads a record consistently; ErrNotProvisioned if absent.
	Get(ctx context.Context, sub string) (Record, error)
	// ClaimDelete makes the record DELETING under c (MayClaimDelete),
	// with end's expiry if it has one, and no deletion time.
	ClaimDelete(ctx context.Context, c Claim, seen Record, end Ending) error
	// FinishDelete leaves what end says in place of c's DELETING record:
	// a tombstone with no credentials, or nothing (MayFinishDelete).
	FinishDelete(ctx context.Context, c Claim, end Ending) error
	// Expire gives the tombstone seen an expiry at at (MayExpire), as of
	// now, the caller's clock, as every other write.
	Expire(ctx context.Context, seen Record, at, now time.Time) error
}

// Sealer encrypts the secret parts of credentials before they are stored.
type Sealer interface {
	Seal(ctx context.Context, sub string, c Credentials) (Credentials, error)
}

// Kandy is what the domain needs of Kandy. Its errors match
// ErrQuotaExceeded, ErrInvalidCountryCode, ErrKandyUserExists,
// ErrKandyNoSuchUser, ErrKandyCredentialsRefused or ErrKandyUnavailable.
type Kandy interface {
	// CreateUser creates userID and returns its credentials. It is never
	// retried after an ambiguous failure: Kandy may have created the user.
	CreateUser(ctx context.Context, userID, countryCode string) (Credentials, error)
	DeleteUser(ctx context.Context, userID string) error
	// UserAccessToken returns a token a frontend logs the user in with.
	UserAccessToken(ctx context.Context, userID string) (string, error)
}

// DefaultCountryCode is the country of a new Kandy user when neither the
// request nor the configuration names one.
const DefaultCountryCode = "US"

// Service implements the provisioning operations.
type Service struct {
	accounts       Accounts
	kandy          Kandy
	sealer         Sealer
	defaultCountry string
	now            func() time.Time
	log            *slog.Logger
	metrics        Metrics
	// claimMargin is added to the caller's deadline to make a claim's
	// expiry; a holder stops calling Kandy that long before its claim ends.
	claimMargin time.Duration
	// claimTTL is used when the caller's context has no deadline.
	claimTTL time.Duration
	// finalizeTries bounds retries of the write that saves Kandy's answer.
	finalizeTries int
}

// Options configures a Service.
type Options struct {
	DefaultCountry string // default DefaultCountryCode
	// Sealer, if set, encrypts the password and user API secret before
	// they are stored.
	Sealer Sealer
	Logger *slog.Logger
	// Metrics, if set, is told how each Ensure ended, and of each failure
	// of an AWS dependency.
	Metrics Metrics
	Now     func() time.Time
}

// Metrics counts the outcomes operators watch.
type Metrics interface {
	UserCreated(ctx context.Context)
	UserAlreadyPresent(ctx context.Context)
	QuotaExceeded(ctx context.Context)
	// AccountRebuilt counts an account rebuilt because its Kandy user was
	// gone: drift found between reconciles.
	AccountRebuilt(ctx context.Context)
	// CredentialsRefused counts an operation Kandy refused for the
	// project's credentials, read again: the secret needs an operator.
	CredentialsRefused(ctx context.Context)
	// DependencyFailed counts a failure of one of the service's own AWS
	// dependencies, by DependencyError.Dependency.
	DependencyFailed(ctx context.Context, dependency string)
}

// New builds a Service.
func New(accounts Accounts, k Kandy, o Options) (*Service, error) {
	s := &Service{
		accounts: accounts, kandy: k, sealer: o.Sealer, defaultCountry: o.DefaultCountry, now: o.Now, log: o.Logger, metrics: o.Metrics,
		claimMargin: 5 * time.Second, claimTTL: 60 * time.Second, finalizeTries: 4,
	}
	if s.defaultCountry == "" {
		s.defaultCountry = DefaultCountryCode
	}
	if !ValidCountryCode(s.defaultCountry) {
		return nil, fmt.Errorf("default country code %q: %w", s.defaultCountry, ErrInvalidCountryCode)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s, nil
}

// counted returns err, having told the metrics if it is the failure of an
// AWS dependency or of the project's credentials: one count per
// operation, wherever it failed.
func (s *Service) counted(ctx context.Context, err error) error {
	var dep *DependencyError
	switch {
	case s.metrics == nil:
	case errors.As(err, &dep):
		s.metrics.DependencyFailed(ctx, dep.Dependency)
	case errors.Is(err, ErrKandyCredentialsRefused):
		s.metrics.CredentialsRefused(ctx)
	}
	return err
}

// claimExpiry is the caller's deadline plus a margin, so a claim outlives
// every call its holder can still make; never zero.
func (s *Service) claimExpiry(ctx context.Context, now time.Time) time.Time {
	if dl, ok := ctx.Deadline(); ok && now.Before(dl) {
		return dl.Add(s.claimMargin).Truncate(time.Millisecond)
	}
	return now.Add(s.claimTTL)
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
