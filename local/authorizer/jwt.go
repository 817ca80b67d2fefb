// Package authorizer verifies access tokens as API Gateway's JWT authorizer
// does, against a user pool's JWKS: the local HTTP API's authorizer.
package authorizer

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"
)

var b64 = base64.RawURLEncoding

// JWK is one public key of a JWKS document.
type JWK struct {
	Kty string `json:"kty"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// Verifier checks tokens like API Gateway's JWT authorizer: the signature
// by the key of the JWKS its kid names, the issuer, the audience (aud if
// the token has one, else client_id), and exp, nbf and iat against now.
// Scopes are the route's business: see HasScope.
type Verifier struct {
	Issuer   string
	Audience []string
	Keys     map[string]*rsa.PublicKey
	Now      func() time.Time
}

// NewVerifier builds a Verifier from a JWKS.
func NewVerifier(issuer string, audience []string, set JWKS) (*Verifier, error) {
	v := &Verifier{Issuer: issuer, Audience: audience, Keys: map[string]*rsa.PublicKey{}, Now: time.Now}
	for _, k := range set.Keys {
		if k.Kty != "RSA" {
			continue
		}
		n, err1 := b64.DecodeString(k.N)
		e, err2 := b64.DecodeString(k.E)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("JWKS key %s is malformed", k.Kid)
		}
		v.Keys[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	if len(v.Keys) == 0 {
		return nil, errors.New("JWKS has no RSA key")
	}
	return v, nil
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
	var set JWKS
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, fmt.Errorf("decoding the JWKS: %w", err)
	}
	return NewVerifier(issuer, audience, set)
}

// ErrInvalidToken is every verification failure; the reason is wrapped.
var ErrInvalidToken = errors.New("invalid token")

// Verify returns the token's claims if it is valid now.
func (v *Verifier) Verify(token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: not a compact JWS", ErrInvalidToken)
	}
	var header struct{ Alg, Kid string }
	if err := decodePart(parts[0], &header); err != nil || header.Alg != "RS256" {
		return nil, fmt.Errorf("%w: bad header", ErrInvalidToken)
	}
	key, ok := v.Keys[header.Kid]
	if !ok {
		return nil, fmt.Errorf("%w: unknown key", ErrInvalidToken)
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("%w: bad signature encoding", ErrInvalidToken)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig); err != nil {
		return nil, fmt.Errorf("%w: bad signature", ErrInvalidToken)
	}
	var claims map[string]any
	if err := decodePart(parts[1], &claims); err != nil {
		return nil, fmt.Errorf("%w: bad payload", ErrInvalidToken)
	}
	if iss, _ := claims["iss"].(string); iss != v.Issuer {
		return nil, fmt.Errorf("%w: the token does not have a valid issuer", ErrInvalidToken)
	}
	if !v.audienceOK(claims) {
		return nil, fmt.Errorf("%w: the token does not have a valid audience", ErrInvalidToken)
	}
	if err := v.timesOK(claims); err != nil {
		return nil, err
	}
	return claims, nil
}

// timesOK checks exp (required), nbf and iat (if present).
func (v *Verifier) timesOK(claims map[string]any) error {
	now := v.Now().Unix()
	exp, ok := claims["exp"].(float64)
	if !ok || int64(exp) <= now {
		return fmt.Errorf("%w: the token has expired", ErrInvalidToken)
	}
	if nbf, ok := claims["nbf"].(float64); ok && int64(nbf) > now {
		return fmt.Errorf("%w: the token is not valid yet", ErrInvalidToken)
	}
	if iat, ok := claims["iat"].(float64); ok && int64(iat) > now {
		return fmt.Errorf("%w: the token was issued in the future", ErrInvalidToken)
	}
	return nil
}

// audienceOK: aud decides when present; client_id only when aud is absent.
func (v *Verifier) audienceOK(claims map[string]any) bool {
	var auds []string
	switch a := claims["aud"].(type) {
	case string:
		auds = append(auds, a)
	case []any:
		for _, x := range a {
			if s, ok := x.(string); ok {
				auds = append(auds, s)
			}
		}
	case nil:
		if cid, ok := claims["client_id"].(string); ok {
			auds = append(auds, cid)
		}
	}
	for _, a := range auds {
		if slices.Contains(v.Audience, a) {
			return true
		}
	}
	return false
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
	for _, r := range required {
		if slices.Contains(have, r) {
			return true
		}
	}
	return false
}

func decodePart(s string, v any) error {
	raw, err := b64.DecodeString(s)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}
