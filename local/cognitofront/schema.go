package cognitofront

import (
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
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

// checkInput is nil when a decoded input writes or deletes only
// attributes the pool lets it (see check), or the error Cognito answers.
func (s Schema) checkInput(in any) *apiError {
	var op write
	var attrs []types.AttributeType
	switch in := in.(type) {
	case *cip.SignUpInput:
		op, attrs = create, in.UserAttributes
	case *cip.AdminCreateUserInput:
		op, attrs = create, in.UserAttributes
	case *cip.UpdateUserAttributesInput:
		op, attrs = update, in.UserAttributes
	case *cip.AdminUpdateUserAttributesInput:
		op, attrs = update, in.UserAttributes
	case *cip.DeleteUserAttributesInput:
		return s.check(update, in.UserAttributeNames)
	case *cip.AdminDeleteUserAttributesInput:
		return s.check(update, in.UserAttributeNames)
	default:
		return nil
	}
	names := make([]string, len(attrs))
	for i, a := range attrs {
		names[i] = aws.ToString(a.Name)
	}
	return s.check(op, names)
}

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
