// Package localauth is a local stand-in for a Cognito user pool's token
// side: it signs RS256 access tokens, publishes their JWKS, and verifies
// tokens as strictly as API Gateway's JWT authorizer does.
package localauth

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
)

var b64 = base64.RawURLEncoding

// Key signs tokens.
type Key struct {
	ID      string
	private *rsa.PrivateKey
}

// NewKey generates a signing key.
func NewKey() (*Key, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	return &Key{ID: fmt.Sprintf("%x", id), private: k}, nil
}

// Sign returns a compact RS256 JWT with the given claims.
func (k *Key) Sign(claims map[string]any) (string, error) {
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": k.ID, "typ": "JWT"})
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signing := b64.EncodeToString(header) + "." + b64.EncodeToString(payload)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k.private, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signing + "." + b64.EncodeToString(sig), nil
}

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

// JWKS publishes the key's public half.
func (k *Key) JWKS() JWKS {
	pub := k.private.PublicKey
	return JWKS{Keys: []JWK{{
		Kty: "RSA", Alg: "RS256", Use: "sig", Kid: k.ID,
		N: b64.EncodeToString(pub.N.Bytes()), E: b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}}
}

// Verifier checks tokens like API Gateway's JWT authorizer: the signature by
// a key of the JWKS, the issuer, the audience (aud, or client_id for access
// tokens), and the expiry and not-before times.
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
	now := v.Now().Unix()
	if iss, _ := claims["iss"].(string); iss != v.Issuer {
		return nil, fmt.Errorf("%w: wrong issuer", ErrInvalidToken)
	}
	exp, ok := claims["exp"].(float64)
	if !ok || int64(exp) <= now {
		return nil, fmt.Errorf("%w: expired", ErrInvalidToken)
	}
	if nbf, ok := claims["nbf"].(float64); ok && int64(nbf) > now {
		return nil, fmt.Errorf("%w: not yet valid", ErrInvalidToken)
	}
	if !v.audienceOK(claims) {
		return nil, fmt.Errorf("%w: wrong audience", ErrInvalidToken)
	}
	return claims, nil
}

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
	}
	if cid, ok := claims["client_id"].(string); ok {
		auds = append(auds, cid)
	}
	for _, a := range auds {
		if slices.Contains(v.Audience, a) {
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
