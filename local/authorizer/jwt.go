// Package authorizer verifies access tokens as API Gateway's JWT
// authorizer does, against a user pool's JWKS: the local HTTP API's
// authorizer. The signature and the JWKS are the maintained libraries'
// work (golang-jwt/jwt and MicahParks/keyfunc); this package holds API
// Gateway's rules on top of them.
package authorizer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// Verifier checks tokens like API Gateway's JWT authorizer: an RS256
// signature by the key of the JWKS its kid names, the issuer, the
// audience (aud if the token has one, else client_id), and exp (required),
// nbf and iat against now, with no leeway. Scopes are the route's
// business: see HasScope.
type Verifier struct {
	Issuer   string
	Audience []string
	Now      func() time.Time
	keys     keyfunc.Keyfunc
}

// NewVerifier builds a Verifier from a JWKS document.
func NewVerifier(issuer string, audience []string, jwks []byte) (*Verifier, error) {
	keys, err := keyfunc.NewJWKSetJSON(jwks)
	if err != nil {
		return nil, fmt.Errorf("reading the JWKS: %w", err)
	}
	return &Verifier{Issuer: issuer, Audience: audience, Now: time.Now, keys: keys}, nil
}

// FetchVerifier reads the issuer's JWKS at <issuer>/.well-known/jwks.json,
// where API Gateway reads a Cognito pool's, and builds a Verifier.
func FetchVerifier(ctx context.Context, client *http.Client, issuer string, audience []string) (*Verifier, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, issuer+"/.well-known/jwks.json", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching the JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching the JWKS: HTTP %d", resp.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("fetching the JWKS: %w", err)
	}
	return NewVerifier(issuer, audience, raw)
}

// ErrInvalidToken is every verification failure; the reason is wrapped.
var ErrInvalidToken = errors.New("invalid token")

// Verify returns the token's claims if it is valid now.
func (v *Verifier) Verify(token string) (map[string]any, error) {
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(v.Issuer),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(v.Now))
	claims := jwt.MapClaims{}
	if _, err := parser.ParseWithClaims(token, claims, v.keys.Keyfunc); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidToken, reason(err))
	}
	if !v.audienceOK(claims) {
		return nil, fmt.Errorf("%w: the token does not have a valid audience", ErrInvalidToken)
	}
	return claims, nil
}

// reason says in API Gateway's words why a token was refused.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired), errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "the token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "the token is not valid yet"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "the token was issued in the future"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "the token does not have a valid issuer"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "bad signature"
	default:
		return "malformed"
	}
}

// audienceOK: aud decides when present; client_id only when aud is absent.
func (v *Verifier) audienceOK(claims jwt.MapClaims) bool {
	auds, err := claims.GetAudience()
	if err != nil {
		return false
	}
	if _, has := claims["aud"]; !has {
		if cid, ok := claims["client_id"].(string); ok {
			auds = jwt.ClaimStrings{cid}
		}
	}
	return slices.ContainsFunc(auds, func(a string) bool { return slices.Contains(v.Audience, a) })
}

// HasScope reports whether the claims' scope (or scp) holds at least one of
// required, as a route's authorization scopes demand. No required scope
// lets every token through.
func HasScope(claims map[string]any, required []string) bool {
	if len(required) == 0 {
		return true
	}
	var have []string
	for _, name := range []string{"scope", "scp"} {
		switch s := claims[name].(type) {
		case string:
			have = append(have, strings.Fields(s)...)
		case []any:
			for _, x := range s {
				if str, ok := x.(string); ok {
					have = append(have, str)
				}
			}
		}
	}
	return slices.ContainsFunc(required, func(r string) bool { return slices.Contains(have, r) })
}
