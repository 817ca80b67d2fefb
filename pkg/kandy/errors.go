package kandy

import (
	"errors"
	"fmt"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// Sentinel kinds callers branch on with errors.Is.
var (
	ErrQuotaExceeded      = errors.New("kandy: account quota exceeded")
	ErrAlreadyExists      = errors.New("kandy: user already exists")
	ErrTokenExpired       = errors.New("kandy: domain access token expired")
	ErrInvalidCredentials = errors.New("kandy: invalid project credentials")
	ErrInvalidCountryCode = errors.New("kandy: invalid country code")
	// ErrProjectKeyRefused: Kandy refused the project's key (status 11,
	// HTTP 401 or 403), as ErrInvalidCredentials is its refusal of the
	// key and secret together (status 55).
	ErrProjectKeyRefused = errors.New("kandy: the project key was refused")
	ErrUnavailable       = errors.New("kandy: unavailable")
	ErrNoSuchUser        = errors.New("kandy: user does not exist")
	ErrRejected          = errors.New("kandy: request rejected")
)

// Error describes one failed Kandy call. It carries Kandy's status and the
// HTTP code, never a URL: Kandy puts keys and tokens in the query string.
type Error struct {
	Op         string // e.g. "create user"
	Status     int    // Kandy envelope status; -1 when there was no envelope
	HTTPStatus int
	Message    string // Kandy's own message, or a description of the failure
	Kind       error  // one of the sentinels above
	Cause      error  // transport or decoding error, if any
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %s", e.Op, e.Kind)
	if e.Status >= 0 {
		s += fmt.Sprintf(" (status %d", e.Status)
	} else {
		s += " (no envelope"
	}
	if e.HTTPStatus != 0 {
		s += fmt.Sprintf(", http %d", e.HTTPStatus)
	}
	s += ")"
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

var kindNames = map[error]string{
	ErrQuotaExceeded: "quota_exceeded", ErrAlreadyExists: "already_exists", ErrTokenExpired: "token_expired",
	ErrInvalidCredentials: "invalid_credentials", ErrInvalidCountryCode: "invalid_country_code",
	ErrProjectKeyRefused: "project_key_refused", ErrUnavailable: "unavailable", ErrNoSuchUser: "no_such_user", ErrRejected: "rejected",
}

// KindName names the kind of a Kandy error in snake case, for metrics:
// "" for nil, "timeout" for an unavailable Kandy that did not answer in
// time, "other" for an error that is not a *Error.
func KindName(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		if e.Kind == ErrUnavailable && e.Message == msgTimedOut {
			return "timeout"
		}
		if n, ok := kindNames[e.Kind]; ok {
			return n
		}
	}
	return "other"
}

// domainErrs says which domain error each kind is; a kind not listed is
// provision.ErrKandyUnavailable.
var domainErrs = map[error]error{
	ErrQuotaExceeded: provision.ErrQuotaExceeded, ErrAlreadyExists: provision.ErrKandyUserExists,
	ErrNoSuchUser: provision.ErrKandyNoSuchUser, ErrInvalidCountryCode: provision.ErrInvalidCountryCode,
	ErrInvalidCredentials: provision.ErrKandyCredentialsRefused, ErrProjectKeyRefused: provision.ErrKandyCredentialsRefused,
}

// Is matches the error's kind, and the domain error that kind is.
func (e *Error) Is(target error) bool {
	if target == e.Kind {
		return true
	}
	d, ok := domainErrs[e.Kind]
	if !ok {
		d = provision.ErrKandyUnavailable
	}
	return errors.Is(d, target)
}

func (e *Error) Unwrap() error { return e.Cause }

// kindOf maps an envelope status (and its message) to a sentinel.
func kindOf(status int, message string) error {
	switch status {
	case 1:
		if message == quotaMessage {
			return ErrQuotaExceeded
		}
		return ErrUnavailable
	case 10:
		return ErrTokenExpired
	case 11:
		return ErrProjectKeyRefused
	case 12:
		return ErrQuotaExceeded
	case 50:
		return ErrAlreadyExists
	case 53:
		return ErrNoSuchUser
	case 54:
		return ErrInvalidCountryCode
	case 55:
		return ErrInvalidCredentials
	default:
		return ErrRejected
	}
}

// quotaMessage is what Kandy answers, with status 1, when a Basic account's
// five users are used up.
const quotaMessage = "failed to register user on compass"
