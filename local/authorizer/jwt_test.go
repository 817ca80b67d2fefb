package authorizer

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// testKey signs tokens as a user pool would.
type testKey struct {
	id      string
	private *rsa.PrivateKey
}

func newTestKey(t *testing.T, id string) *testKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{id: id, private: k}
}

func (k *testKey) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims(claims))
	tok.Header["kid"] = k.id
	s, err := tok.SignedString(k.private)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwks is the key's JWKS document, as cognito-local serves it.
func (k *testKey) jwks(t *testing.T) []byte {
	t.Helper()
	jwk, err := jwkset.NewJWKFromKey(&k.private.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{
		KID: k.id, ALG: jwkset.AlgRS256, USE: jwkset.UseSig}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestVerify(t *testing.T) {
	k := newTestKey(t, "CognitoLocal")
	other := newTestKey(t, "CognitoLocal")
	v, err := NewVerifier("iss", []string{"client"}, k.jwks(t))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{"sub": "s1", "iss": "iss", "client_id": "client", "token_use": "access", "iat": now, "exp": now + 60}
		if mod != nil {
			mod(c)
		}
		return c
	}
	good := k.sign(t, claims(nil))
	if got, err := v.Verify(good); err != nil {
		t.Fatalf("Verify(good): %v", err)
	} else if got["sub"] != "s1" {
		t.Errorf("Verify(good): sub %v, want s1", got["sub"])
	}
	tampered := strings.Split(good, ".")
	tampered[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","iss":"iss","client_id":"client","exp":9999999999}`))
	bad := map[string]string{
		"expired":        k.sign(t, claims(func(c map[string]any) { c["exp"] = now - 1 })),
		"no exp":         k.sign(t, claims(func(c map[string]any) { delete(c, "exp") })),
		"not yet":        k.sign(t, claims(func(c map[string]any) { c["nbf"] = now + 60 })),
		"issued later":   k.sign(t, claims(func(c map[string]any) { c["iat"] = now + 60 })),
		"wrong issuer":   k.sign(t, claims(func(c map[string]any) { c["iss"] = "evil" })),
		"wrong client":   k.sign(t, claims(func(c map[string]any) { c["client_id"] = "other" })),
		"aud decides":    k.sign(t, claims(func(c map[string]any) { c["aud"] = "other" })),
		"other key":      other.sign(t, claims(nil)),
		"tampered":       strings.Join(tampered, "."),
		"garbage":        "abc",
		"empty":          "",
		"unknown key id": newTestKey(t, "elsewhere").sign(t, claims(nil)),
		"alg none":       unsigned(t, claims(nil)),
		"alg HS256":      hmacSigned(t, k, claims(nil)),
	}
	for name, tok := range bad {
		if _, err := v.Verify(tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	id := k.sign(t, claims(func(c map[string]any) { delete(c, "client_id"); c["aud"] = "client" }))
	if _, err := v.Verify(id); err != nil {
		t.Errorf("ID token with aud: %v", err)
	}
}

// unsigned is a token with alg none.
func unsigned(t *testing.T, claims map[string]any) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims(claims)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hmacSigned is a token signed with HS256 and the public key's modulus as
// the secret: the algorithm confusion a verifier must refuse.
func hmacSigned(t *testing.T, k *testKey, claims map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims))
	tok.Header["kid"] = k.id
	s, err := tok.SignedString(k.private.PublicKey.N.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHasScope(t *testing.T) {
	const admin = "aws.cognito.signin.user.admin"
	tests := []struct {
		claims   map[string]any
		required []string
		want     bool
	}{
		{map[string]any{"scope": "openid " + admin}, []string{admin}, true},
		{map[string]any{"scp": []any{admin}}, []string{admin}, true},
		{map[string]any{"scope": "openid"}, []string{admin, "openid"}, true},
		{map[string]any{"scope": "openid"}, []string{admin}, false},
		{map[string]any{"token_use": "id"}, []string{admin}, false},
		{map[string]any{"token_use": "id"}, nil, true},
	}
	for _, tt := range tests {
		if got := HasScope(tt.claims, tt.required); got != tt.want {
			t.Errorf("HasScope(%v, %v) = %v", tt.claims, tt.required, got)
		}
	}
}

func TestFetchVerifierReadsTheIssuersJWKS(t *testing.T) {
	k := newTestKey(t, "kid1")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/local_pool/.well-known/jwks.json" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(k.jwks(t))
	}))
	defer srv.Close()
	issuer := srv.URL + "/local_pool"
	v, err := FetchVerifier(context.Background(), srv.Client(), issuer, []string{"client"})
	if err != nil {
		t.Fatal(err)
	}
	tok := k.sign(t, map[string]any{"iss": issuer, "client_id": "client", "exp": time.Now().Add(time.Minute).Unix()})
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	if _, err := FetchVerifier(context.Background(), srv.Client(), srv.URL+"/other", nil); err == nil {
		t.Fatal("a missing JWKS gave a verifier")
	}
}
