package authorizer

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": k.id, "typ": "JWT"})
	payload, _ := json.Marshal(claims)
	signing := b64.EncodeToString(header) + "." + b64.EncodeToString(payload)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k.private, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + b64.EncodeToString(sig)
}

func (k *testKey) jwks() JWKS {
	pub := k.private.PublicKey
	return JWKS{Keys: []JWK{{Kty: "RSA", Alg: "RS256", Use: "sig", Kid: k.id,
		N: b64.EncodeToString(pub.N.Bytes()), E: b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes())}}}
}

func TestVerify(t *testing.T) {
	k := newTestKey(t, "CognitoLocal")
	other := newTestKey(t, "CognitoLocal")
	v, err := NewVerifier("iss", []string{"client"}, k.jwks())
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
	tampered[1] = b64.EncodeToString([]byte(`{"sub":"admin","iss":"iss","client_id":"client","exp":9999999999}`))
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
		_ = json.NewEncoder(w).Encode(k.jwks())
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
