// Package userid maps a Cognito sub to its Kandy user_id.
//
// The mapping is deterministic and injective:
//   - a sub in canonical lower-case UUID form (what Cognito issues) maps to
//     "u" followed by its 32 hex digits, e.g. "u0f8fad5bd9cb469fa16570867728950e";
//   - any other sub maps to "x" followed by the unpadded lower-case base32
//     encoding of its bytes.
//
// The two prefixes keep the forms apart, and each form is reversible, so two
// different subs can never share a Kandy user.
package userid

import (
	"encoding/base32"
	"errors"
	"strings"
)

// MaxSubLen bounds a sub; Cognito's are 36 bytes.
const MaxSubLen = 128

// ErrInvalidSub marks a sub that is empty, too long or not printable.
var ErrInvalidSub = errors.New("invalid sub")

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// FromSub returns the Kandy user_id for sub.
func FromSub(sub string) (string, error) {
	if err := Validate(sub); err != nil {
		return "", err
	}
	if isCanonicalUUID(sub) {
		return "u" + strings.ReplaceAll(sub, "-", ""), nil
	}
	return "x" + strings.ToLower(b32.EncodeToString([]byte(sub))), nil
}

// Validate checks that sub can identify a user.
func Validate(sub string) error {
	if sub == "" || len(sub) > MaxSubLen {
		return ErrInvalidSub
	}
	for _, r := range sub {
		if r < 0x21 || r == 0x7f {
			return ErrInvalidSub
		}
	}
	return nil
}

// ToSub is the inverse of FromSub: the sub a Kandy user id was made from,
// and false for an id outside this scheme (a user this service never
// created).
func ToSub(id string) (string, bool) {
	switch {
	case len(id) == 33 && id[0] == 'u' && isLowerHex(id[1:]):
		h := id[1:]
		return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], true
	case len(id) > 1 && id[0] == 'x':
		b, err := b32.DecodeString(strings.ToUpper(id[1:]))
		if err != nil || strings.ToLower(b32.EncodeToString(b)) != id[1:] {
			return "", false
		}
		sub := string(b)
		if again, err := FromSub(sub); err != nil || again != id {
			return "", false
		}
		return sub, true
	}
	return "", false
}

// The two checks below are written out rather than as regular
// expressions: compiling those cost every function's start about half a
// millisecond (see docs/performance.md).

// isCanonicalUUID reports whether s is a UUID in lower-case 8-4-4-4-12 form.
func isCanonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isLowerHex(s[i : i+1]) {
				return false
			}
		}
	}
	return true
}

// isLowerHex reports whether s is one or more lower-case hex digits.
func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return s != ""
}
