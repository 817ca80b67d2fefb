package kandy

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// plantedKey is a key, secret or token of one of Kandy's prefixes with a
// random body, drawn from seed: the fuzzer chooses where it goes, not what
// it is, so no copy of the implementation's own pattern decides the check.
func plantedKey(seed uint64) string {
	r := rand.New(rand.NewPCG(seed, seed>>7|1))
	prefixes := []string{"DAK", "DAS", "DAT", "UAK", "UAS", "UAT"}
	const alphabet = "0123456789abcdefABCDEFghijklmnopqrstuvwxyz"
	var b strings.Builder
	b.WriteString(prefixes[r.IntN(len(prefixes))])
	for n := 16 + r.IntN(24); n > 0; n-- {
		b.WriteByte(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

// leaks reports whether any 12-character run of key appears in s: a key
// cut short by the message bound is still a leak if most of it survives.
func leaks(s, key string) bool {
	for i := 0; i+12 <= len(key); i++ {
		if strings.Contains(s, key[i:i+12]) {
			return true
		}
	}
	return false
}

// FuzzDecode: any answer from Kandy is either a result or a typed *Error of
// a known kind that the domain can name; no key planted in Kandy's answer
// ever comes out in the error's text.
func FuzzDecode(f *testing.F) {
	seeds := []string{
		`{"status":0,"message":"success","result":{"user_id":"bob","user_password":"b0e4c71d674744","full_user_id":"bob@d","domain_name":"d","user_api_key":"UAK1","user_api_secret":"UAS1"}}`,
		`{"message":"failed to register user on compass","status":1}`,
		`{"status":10,"message":"token expired"}`, `{"status":55,"message":"bad key DAK0123456789abcdef"}`,
		`{"status":0}`, `{"status":0,"result":null}`, `not json`, ``, `{"status":"0"}`, `{"status":1e400}`,
	}
	for i, s := range seeds {
		f.Add(200, []byte(s), 55, "invalid key: ", uint64(i))
	}
	f.Add(500, []byte(``), 1, "", uint64(99))
	f.Add(401, []byte(`{"status":0}`), 53, strings.Repeat("x", 110), uint64(7))
	kinds := []error{ErrQuotaExceeded, ErrAlreadyExists, ErrTokenExpired, ErrInvalidCredentials, ErrInvalidCountryCode,
		ErrProjectKeyRefused, ErrUnavailable, ErrNoSuchUser, ErrRejected}
	f.Fuzz(func(t *testing.T, httpStatus int, raw []byte, status int, prefix string, seed uint64) {
		var u createdUser
		checkTyped(t, decode("create user", httpStatus, raw, &u), kinds)

		key := plantedKey(seed)
		planted, _ := json.Marshal(map[string]any{"status": status, "message": prefix + key + " trailing"})
		err := decode("create user", 200, planted, &u)
		checkTyped(t, err, kinds)
		if err != nil && leaks(err.Error(), key) {
			t.Fatalf("error text carries the planted key %q: %q", key, err.Error())
		}
	})
}

func checkTyped(t *testing.T, err error, kinds []error) {
	t.Helper()
	if err == nil {
		return
	}
	var ke *Error
	if !errors.As(err, &ke) {
		t.Fatalf("untyped error %v", err)
	}
	known := false
	for _, k := range kinds {
		known = known || errors.Is(err, k)
	}
	if !known {
		t.Fatalf("error of no known kind: %v", err)
	}
	if provision.CodeOf(err) == provision.CodeInternal {
		t.Fatalf("the domain cannot name a Kandy error: %v", err)
	}
}
