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
	"regexp"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/userid"
)

// Status of a record.
const (
	StatusPending = "PENDING"
	StatusActive  = "ACTIVE"
)

// Record is one user's stored account.
type Record struct {
	Sub            string
	UserID         string
	FullUserID     string
	DomainName     string
	UserAPIKey     string
	UserAPISecret  string
	UserPassword   string
	Status         string
	ClaimToken     string
	ClaimExpiresAt time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// LogValue keeps credentials out of logs.
func (r Record) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user_id", r.UserID), slog.String("status", r.Status))
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

// Claim is a time-limited, exclusive right to create one sub's Kandy user.
type Claim struct {
	Sub       string
	UserID    string
	Token     string
	ExpiresAt time.Time
	Now       time.Time
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

// Accounts is the store of records.
type Accounts interface {
	// Claim takes the claim if the item is absent, or PENDING with an expired
	// claim. When it cannot, it returns the existing record and false.
	Claim(ctx context.Context, c Claim) (existing Record, claimed bool, err error)
	// Finalize stores the credentials and makes the record ACTIVE, if c still
	// holds the claim; otherwise ErrClaimLost.
	Finalize(ctx context.Context, c Claim, creds Credentials) (Record, error)
	// Release deletes the PENDING record if c still holds the claim.
	Release(ctx context.Context, c Claim) error
	// Get reads a record consistently; ErrNotProvisioned if absent.
	Get(ctx context.Context, sub string) (Record, error)
	// DeleteActive deletes an ACTIVE record for userID; ErrClaimLost if the
	// record is not that.
	DeleteActive(ctx context.Context, sub, userID string) error
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
	// expiry; a holder's context ends before its claim does.
	claimMargin time.Duration
	// claimTTL is used when the caller's context has no deadline.
	claimTTL time.Duration
	// finalizeTries bounds retries of the write that saves Kandy's answer.
	finalizeTries int
}

// Options configures a Service.
type Options struct {
	DefaultCountry string // default "US"
	// Sealer, if set, encrypts the password and user API secret before
	// they are stored.
	Sealer Sealer
	Logger *slog.Logger
	// Metrics, if set, is told how each Ensure ended.
	Metrics Metrics
	Now     func() time.Time
}

// Metrics counts the outcomes operators watch.
type Metrics interface {
	UserCreated(ctx context.Context)
	UserAlreadyPresent(ctx context.Context)
	QuotaExceeded(ctx context.Context)
}

// New builds a Service.
func New(accounts Accounts, k Kandy, o Options) (*Service, error) {
	s := &Service{
		accounts: accounts, kandy: k, sealer: o.Sealer, defaultCountry: o.DefaultCountry, now: o.Now, log: o.Logger, metrics: o.Metrics,
		claimMargin: 5 * time.Second, claimTTL: 60 * time.Second, finalizeTries: 4,
	}
	if s.defaultCountry == "" {
		s.defaultCountry = "US"
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

var countryPattern = regexp.MustCompile(`^([A-Z]{2}|\+[0-9]{1,3})$`)

// ValidCountryCode reports whether c is an ISO 3166 alpha-2 code or a
// dialling prefix of 1 to 3 digits.
func ValidCountryCode(c string) bool { return countryPattern.MatchString(c) }

// EnsureOptions are the caller's choices for a new account.
type EnsureOptions struct {
	CountryCode string // default: the service's default
}

// Ensure makes sure sub has a Kandy account and returns it, with created
// true when this call created it.
func (s *Service) Ensure(ctx context.Context, sub string, o EnsureOptions) (Account, bool, error) {
	a, created, err := s.ensure(ctx, sub, o)
	if s.metrics != nil {
		switch {
		case created:
			s.metrics.UserCreated(ctx)
		case err == nil:
			s.metrics.UserAlreadyPresent(ctx)
		case errors.Is(err, ErrQuotaExceeded):
			s.metrics.QuotaExceeded(ctx)
		}
	}
	return a, created, err
}

func (s *Service) ensure(ctx context.Context, sub string, o EnsureOptions) (Account, bool, error) {
	uid, err := userid.FromSub(sub)
	if err != nil {
		return Account{}, false, err
	}
	country := o.CountryCode
	if country == "" {
		country = s.defaultCountry
	}
	if !ValidCountryCode(country) {
		return Account{}, false, ErrInvalidCountryCode
	}
	now := s.now()
	c := Claim{Sub: sub, UserID: uid, Token: newToken(), ExpiresAt: s.claimExpiry(ctx, now), Now: now}
	existing, claimed, err := s.accounts.Claim(ctx, c)
	if err != nil {
		return Account{}, false, fmt.Errorf("claiming: %w", err)
	}
	// The claim may be ours already: when the answer to the claim write is
	// lost, the SDK retries it, and the retry finds the item the first wrote.
	if !claimed && existing.Status == StatusPending && existing.ClaimToken == c.Token {
		claimed = true
	}
	if !claimed {
		if existing.Status == StatusActive {
			return existing.account(), false, nil
		}
		return Account{}, false, ErrInProgress
	}

	creds, err := s.create(ctx, uid, country)
	if err != nil {
		// Kandy may or may not have created the user (an ambiguous failure).
		// Either way releasing is safe: a user left behind is an orphan the
		// next attempt recovers.
		if rerr := s.accounts.Release(context.WithoutCancel(ctx), c); rerr != nil {
			s.log.WarnContext(ctx, "releasing claim failed; it will expire", "user_id", uid, "err", rerr)
		}
		return Account{}, false, err
	}
	rec, err := s.finalize(ctx, c, creds)
	if err != nil {
		return Account{}, false, err
	}
	return rec.account(), true, nil
}

// create calls Kandy, recovering an orphan: a user whose credentials were
// never stored because an earlier holder crashed after Kandy answered.
// Nobody ever saw that user's password, so deleting it and creating it again
// loses nothing.
func (s *Service) create(ctx context.Context, uid, country string) (Credentials, error) {
	creds, err := s.kandy.CreateUser(ctx, uid, country)
	if errors.Is(err, ErrKandyUserExists) {
		s.log.WarnContext(ctx, "recovering orphaned Kandy user", "user_id", uid)
		if err := s.kandy.DeleteUser(ctx, uid); err != nil && !errors.Is(err, ErrKandyNoSuchUser) {
			return Credentials{}, err
		}
		creds, err = s.kandy.CreateUser(ctx, uid, country)
	}
	return creds, err
}

// finalize stores Kandy's answer. The credentials exist nowhere else, so a
// transient failure is retried, even past the caller's cancellation.
func (s *Service) finalize(ctx context.Context, c Claim, creds Credentials) (Record, error) {
	wctx := context.WithoutCancel(ctx)
	var err error
	sealed := s.sealer == nil
	for i := 0; i < s.finalizeTries; i++ {
		if i > 0 {
			time.Sleep(time.Duration(i*i) * 50 * time.Millisecond)
		}
		if !sealed {
			var sc Credentials
			if sc, err = s.sealer.Seal(wctx, c.Sub, creds); err != nil {
				continue
			}
			creds, sealed = sc, true
		}
		c.Now = s.now()
		var rec Record
		rec, err = s.accounts.Finalize(wctx, c, creds)
		if err == nil {
			return rec, nil
		}
		if errors.Is(err, ErrClaimLost) {
			break
		}
	}
	if errors.Is(err, ErrClaimLost) {
		// A finalize whose answer was lost is retried by the SDK and then
		// fails its condition: the record holds our credentials already.
		if rec, gerr := s.accounts.Get(wctx, c.Sub); gerr == nil && rec.Status == StatusActive && rec.UserAPIKey == creds.UserAPIKey {
			return rec, nil
		}
		s.log.WarnContext(ctx, "claim was taken over before the credentials were stored", "user_id", c.UserID)
		return Record{}, ErrInProgress
	}
	s.log.ErrorContext(ctx, "storing Kandy credentials failed; the claim will expire and the next attempt recovers the user", "user_id", c.UserID, "err", err)
	return Record{}, fmt.Errorf("finalizing: %w", err)
}

// Get returns sub's account.
func (s *Service) Get(ctx context.Context, sub string) (Account, error) {
	rec, err := s.active(ctx, sub)
	if err != nil {
		return Account{}, err
	}
	return rec.account(), nil
}

// UserToken returns a Kandy user access token for sub's account.
func (s *Service) UserToken(ctx context.Context, sub string) (string, error) {
	rec, err := s.active(ctx, sub)
	if err != nil {
		return "", err
	}
	return s.kandy.UserAccessToken(ctx, rec.UserID)
}

// Delete deletes sub's Kandy user, then its record. If it fails between the
// two, a retry finds the Kandy user gone and finishes.
func (s *Service) Delete(ctx context.Context, sub string) error {
	rec, err := s.active(ctx, sub)
	if err != nil {
		return err
	}
	if err := s.kandy.DeleteUser(ctx, rec.UserID); err != nil && !errors.Is(err, ErrKandyNoSuchUser) {
		return err
	}
	if err := s.accounts.DeleteActive(ctx, sub, rec.UserID); err != nil {
		if errors.Is(err, ErrClaimLost) {
			return ErrNotProvisioned
		}
		return fmt.Errorf("deleting record: %w", err)
	}
	return nil
}

func (s *Service) active(ctx context.Context, sub string) (Record, error) {
	if err := userid.Validate(sub); err != nil {
		return Record{}, err
	}
	rec, err := s.accounts.Get(ctx, sub)
	if err != nil {
		if errors.Is(err, ErrNotProvisioned) {
			return Record{}, err
		}
		return Record{}, fmt.Errorf("reading record: %w", err)
	}
	if rec.Status != StatusActive {
		if rec.ClaimExpiresAt.After(s.now()) {
			return Record{}, ErrInProgress
		}
		return Record{}, ErrNotProvisioned
	}
	return rec, nil
}

// claimExpiry is the caller's deadline plus a margin, so a claim outlives
// every call its holder can still make; never zero.
func (s *Service) claimExpiry(ctx context.Context, now time.Time) time.Time {
	if dl, ok := ctx.Deadline(); ok && dl.After(now) {
		return dl.Add(s.claimMargin)
	}
	return now.Add(s.claimTTL)
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
