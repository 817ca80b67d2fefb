package kandy

import (
	"fmt"
	"log/slog"
)

const redacted = "[REDACTED]"

// ProjectKey is the project's (domain's) API key and secret.
type ProjectKey struct {
	APIKey    string
	APISecret string
}

func (ProjectKey) String() string               { return "kandy.ProjectKey{" + redacted + "}" }
func (k ProjectKey) GoString() string           { return k.String() }
func (ProjectKey) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (k ProjectKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// createdUser is Kandy's answer to a create. The password and the user API
// secret are shown only then; CreateUser hands them on as
// provision.Credentials, which redact themselves.
type createdUser struct {
	UserID        string `json:"user_id"`
	Password      string `json:"user_password"`
	FullUserID    string `json:"full_user_id"`
	DomainName    string `json:"domain_name"`
	UserAPIKey    string `json:"user_api_key"`
	UserAPISecret string `json:"user_api_secret"`
}

// ListedUser is one entry of the domain's user list.
type ListedUser struct {
	UserID      string `json:"user_id"`
	DomainName  string `json:"domain_name"`
	UserAPIKey  string `json:"user_api_key"`
	CountryCode string `json:"user_country_code"`
}

// createUserInput names the user to create.
type createUserInput struct {
	UserID      string `json:"user_id"`
	CountryCode string `json:"user_country_code"`
}
