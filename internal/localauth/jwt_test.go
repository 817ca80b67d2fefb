package localauth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewKey()
	v, err := NewVerifier("iss", []string{"client"}, k.JWKS())
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
	good, _ := k.Sign(claims(nil))
	got, err := v.Verify(good)
	if err != nil || got["sub"] != "s1" {
		t.Fatalf("Verify(good) = %v, %v", got, err)
	}
	forged, _ := other.Sign(claims(nil))
	forged = strings.Replace(forged, strings.Split(forged, ".")[0], strings.Split(good, ".")[0], 1)
	tampered := strings.Split(good, ".")
	tampered[1] = b64.EncodeToString([]byte(`{"sub":"admin","iss":"iss","client_id":"client","exp":9999999999}`))
	bad := map[string]string{
		"expired":        must(k.Sign(claims(func(c map[string]any) { c["exp"] = now - 1 }))),
		"no exp":         must(k.Sign(claims(func(c map[string]any) { delete(c, "exp") }))),
		"not yet":        must(k.Sign(claims(func(c map[string]any) { c["nbf"] = now + 60 }))),
		"wrong issuer":   must(k.Sign(claims(func(c map[string]any) { c["iss"] = "evil" }))),
		"wrong audience": must(k.Sign(claims(func(c map[string]any) { c["client_id"] = "other" }))),
		"other key":      forged,
		"tampered":       strings.Join(tampered, "."),
		"garbage":        "abc",
		"empty":          "",
	}
	for name, tok := range bad {
		if _, err := v.Verify(tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	aud, _ := k.Sign(claims(func(c map[string]any) { delete(c, "client_id"); c["aud"] = "client" }))
	if _, err := v.Verify(aud); err != nil {
		t.Errorf("id token with aud: %v", err)
	}
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}
