package kandy

import (
	"errors"
	"regexp"
	"testing"
)

// FuzzDecode: any answer from Kandy is either a result or a typed *Error
// whose text carries nothing shaped like a key or token.
func FuzzDecode(f *testing.F) {
	seeds := []string{
		`{"status":0,"message":"success","result":{"user_id":"bob","user_password":"b0e4c71d674744","full_user_id":"bob@d","domain_name":"d","user_api_key":"UAK1","user_api_secret":"UAS1"}}`,
		`{"message":"failed to register user on compass","status":1}`,
		`{"status":10,"message":"token expired"}`, `{"status":55,"message":"bad key DAK0123456789abcdef"}`,
		`{"status":0}`, `{"status":0,"result":null}`, `not json`, ``, `{"status":"0"}`, `{"status":1e400}`,
	}
	for _, s := range seeds {
		f.Add(200, []byte(s))
	}
	f.Add(500, []byte(``))
	f.Add(401, []byte(`{"status":0}`))
	leak := regexp.MustCompile(`(?i)\b(DA[KST]|UA[KST])[0-9a-z]{6,}`)
	kinds := []error{ErrQuotaExceeded, ErrAlreadyExists, ErrTokenExpired, ErrInvalidCredentials, ErrInvalidCountryCode,
		ErrUnauthorized, ErrUnavailable, ErrNoSuchUser, ErrRejected}
	f.Fuzz(func(t *testing.T, httpStatus int, raw []byte) {
		var u User
		err := decode("create user", httpStatus, raw, &u)
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
		if leak.MatchString(err.Error()) {
			t.Fatalf("error text carries a key: %q", err.Error())
		}
	})
}
