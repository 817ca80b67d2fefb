// Package fieldcrypt encrypts a user's Kandy credentials with KMS before
// they reach the table. The functions hold kms:Encrypt only; reading the
// credentials back needs kms:Decrypt, which only operators have.
//
// One Encrypt call seals both secrets as one JSON document; user_password
// and user_api_secret then both hold that same base64 ciphertext. The
// encryption context binds it to the table and the sub, so a ciphertext
// copied to another user's item does not decrypt.
package fieldcrypt

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/awsdep"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// EncryptAPI is the KMS operation the functions use.
type EncryptAPI interface {
	Encrypt(ctx context.Context, in *kms.EncryptInput, opts ...func(*kms.Options)) (*kms.EncryptOutput, error)
}

// DecryptAPI is the KMS operation operators use.
type DecryptAPI interface {
	Decrypt(ctx context.Context, in *kms.DecryptInput, opts ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

// ErrCannotOpen marks a ciphertext that does not decrypt for this table and sub.
var ErrCannotOpen = errors.New("credentials do not decrypt for this user")

// Context is the encryption context of one user's credentials.
func Context(table, sub string) map[string]string {
	return map[string]string{"purpose": "kandy-credentials", "table": table, "sub": sub}
}

// Secrets are a user's decrypted credentials.
type Secrets struct {
	UserPassword  string `json:"user_password"`
	UserAPISecret string `json:"user_api_secret"`
}

func (Secrets) String() string       { return "fieldcrypt.Secrets{[REDACTED]}" }
func (Secrets) LogValue() slog.Value { return slog.StringValue("[REDACTED]") }
func (s Secrets) GoString() string   { return s.String() }

// Sealer encrypts credentials for one table with one KMS key.
type Sealer struct {
	api   EncryptAPI
	keyID string
	table string
}

// KMS is the sealer of every function that stores credentials: Encrypt
// with keyID, through a KMS client built from awsCfg. It is an app.Seal.
func KMS(awsCfg aws.Config, keyID, table string) provision.Sealer {
	return NewSealer(kms.NewFromConfig(awsCfg), keyID, table)
}

// NewSealer builds a Sealer.
func NewSealer(api EncryptAPI, keyID, table string) *Sealer {
	return &Sealer{api: api, keyID: keyID, table: table}
}

var _ provision.Sealer = (*Sealer)(nil)

// Seal replaces the password and the user API secret by their ciphertext.
func (s *Sealer) Seal(ctx context.Context, sub string, c provision.Credentials) (provision.Credentials, error) {
	plain, err := json.Marshal(Secrets{UserPassword: c.UserPassword, UserAPISecret: c.UserAPISecret})
	if err != nil {
		return provision.Credentials{}, err
	}
	out, err := s.api.Encrypt(ctx, &kms.EncryptInput{
		KeyId: aws.String(s.keyID), Plaintext: plain, EncryptionContext: Context(s.table, sub),
	})
	if err != nil {
		return provision.Credentials{}, fmt.Errorf("encrypting credentials: %w", awsdep.Failure(awsdep.KMS, err))
	}
	sealed := base64.StdEncoding.EncodeToString(out.CiphertextBlob)
	c.UserPassword, c.UserAPISecret = sealed, sealed
	return c, nil
}

// Open decrypts a stored ciphertext for the given table and sub.
func Open(ctx context.Context, api DecryptAPI, table, sub, ciphertext string) (Secrets, error) {
	blob, err := base64.StdEncoding.DecodeString(ciphertext)
	if err != nil {
		return Secrets{}, fmt.Errorf("%w: not base64", ErrCannotOpen)
	}
	out, err := api.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: Context(table, sub)})
	if err != nil {
		return Secrets{}, fmt.Errorf("%w: %w", ErrCannotOpen, awsdep.Failure(awsdep.KMS, err))
	}
	var s Secrets
	if err := json.Unmarshal(out.Plaintext, &s); err != nil {
		return Secrets{}, fmt.Errorf("%w: unexpected plaintext", ErrCannotOpen)
	}
	return s, nil
}
