package cognitofront

import (
	"fmt"
	"slices"
	"strings"
)

// standardAttributes are the user pool attributes every pool has, which
// a client or an administrator may write unless the pool's schema makes
// one immutable.
var standardAttributes = []string{
	"address", "birthdate", "email", "email_verified", "family_name", "gender", "given_name", "locale",
	"middle_name", "name", "nickname", "phone_number", "phone_number_verified", "picture",
	"preferred_username", "profile", "updated_at", "website", "zoneinfo",
}

// managedAttributes are Cognito's own: nobody writes them, not even an
// administrator creating a user. sub is the user's identity.
var managedAttributes = []string{"sub", "identities"}

// SchemaAttribute is one entry of a pool's Schema, as CloudFormation's
// AWS::Cognito::UserPool declares it: a standard attribute's settings, or
// a custom attribute by its name without "custom:".
type SchemaAttribute struct {
	Name    string
	Mutable *bool // unset: mutable
}

// Schema is what a pool lets be written to a user.
type Schema struct {
	mutable map[string]bool // by the API's name (custom:x)
}

// NewSchema is the standard attributes and a pool's own Schema.
func NewSchema(declared []SchemaAttribute) Schema {
	s := Schema{mutable: map[string]bool{}}
	for _, name := range standardAttributes {
		s.mutable[name] = true
	}
	for _, a := range declared {
		name := a.Name
		if _, standard := s.mutable[name]; !standard && !strings.HasPrefix(name, "custom:") {
			name = "custom:" + name
		}
		s.mutable[name] = a.Mutable == nil || *a.Mutable
	}
	return s
}

// write is a writing operation: creating a user (SignUp,
// AdminCreateUser) or updating one (UpdateUserAttributes,
// AdminUpdateUserAttributes).
type write int

const (
	create write = iota
	update
)

// check is nil when the operation may write these attributes, or the
// InvalidParameterException Cognito answers: a managed attribute (sub),
// an immutable one on update, or one the schema does not have.
func (s Schema) check(op write, names []string) *apiError {
	for _, name := range names {
		mutable, known := s.mutable[name]
		switch {
		case isManaged(name), known && !mutable && op == update:
			return invalidParameter("Cannot modify the non-mutable attribute " + name)
		case !known:
			return invalidParameter(fmt.Sprintf("Attributes did not conform to the schema: %s: Attribute does not exist in the schema.\n", name))
		}
	}
	return nil
}

func isManaged(name string) bool {
	return slices.Contains(managedAttributes, name) || strings.HasPrefix(name, "cognito:")
}
