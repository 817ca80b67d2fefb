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

// User is what Kandy returns when it creates a user. The password and the
// user API secret are shown only at creation.
type User struct {
	UserID        string `json:"user_id"`
	Password      string `json:"user_password"`
	FullUserID    string `json:"full_user_id"`
	DomainName    string `json:"domain_name"`
	UserAPIKey    string `json:"user_api_key"`
	UserAPISecret string `json:"user_api_secret"`
}

// LogValue keeps the credentials out of logs.
func (u User) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user_id", u.UserID), slog.String("full_user_id", u.FullUserID))
}

func (u User) String() string {
	return fmt.Sprintf("kandy.User{UserID:%s FullUserID:%s credentials:%s}", u.UserID, u.FullUserID, redacted)
}

func (u User) GoString() string           { return u.String() }
func (u User) Format(f fmt.State, _ rune) { fmt.Fprint(f, u.String()) }

// ListedUser is one entry of the domain's user list.
type ListedUser struct {
	UserID      string `json:"user_id"`
	DomainName  string `json:"domain_name"`
	UserAPIKey  string `json:"user_api_key"`
	CountryCode string `json:"user_country_code"`
}

// CreateUserInput names the user to create.
type CreateUserInput struct {
	UserID      string `json:"user_id"`
	CountryCode string `json:"user_country_code"`
}
