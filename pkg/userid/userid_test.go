package userid

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

func TestFromSub(t *testing.T) {
	tests := []struct{ sub, want string }{
		{"0f8fad5b-d9cb-469f-a165-70867728950e", "u0f8fad5bd9cb469fa16570867728950e"},
		{"0F8FAD5B-D9CB-469F-A165-70867728950E", "xgbddqrsbiq2uelkehfbueljugy4umlkbge3dkljxga4dmnzxgi4dsnjqiu"},
		{"abc", "xmfrgg"},
		{"u0f8fad5bd9cb469fa16570867728950e", "xouygmodgmfsdkytehfrwenbwhftgcmjwgu3taobwg43teobzguygk"},
	}
	for _, tt := range tests {
		got, err := FromSub(tt.sub)
		if err != nil {
			t.Errorf("FromSub(%q): %v", tt.sub, err)
		} else if got != tt.want {
			t.Errorf("FromSub(%q) = %q, want %q", tt.sub, got, tt.want)
		}
	}
}

func TestFromSubRejects(t *testing.T) {
	for _, sub := range []string{"", " ", "a b", "a\nb", strings.Repeat("a", MaxSubLen+1)} {
		if _, err := FromSub(sub); !errors.Is(err, ErrInvalidSub) {
			t.Errorf("FromSub(%q) err = %v", sub, err)
		}
	}
}

func TestToSubInvertsFromSub(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 5000; i++ {
		b := make([]byte, 1+r.IntN(40))
		for j := range b {
			b[j] = byte(0x21 + r.IntN(94))
		}
		for _, sub := range []string{string(b), fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xffff, r.Uint32()&0xffff, r.Uint64()&0xffffffffffff)} {
			id, err := FromSub(sub)
			if err != nil {
				continue
			}
			got, ok := ToSub(id)
			if !ok {
				t.Fatalf("ToSub(FromSub(%q)) refused %q", sub, id)
			}
			if got != sub {
				t.Fatalf("ToSub(FromSub(%q)) = %q", sub, got)
			}
		}
	}
}

// Ids this service never makes are not ours: Kandy users created by hand,
// or near misses of the scheme.
func TestToSubRefusesForeignIds(t *testing.T) {
	for _, id := range []string{"", "bob", "u", "x", "u0f8fad5bd9cb469fa16570867728950", "u0F8FAD5BD9CB469FA16570867728950E",
		"u0f8fad5bd9cb469fa16570867728950e0", "xMFRGG", "x0", "xmfrgg=", "xmfrgh", "xeaqca", "y0f8fad5bd9cb469fa16570867728950e"} {
		if sub, ok := ToSub(id); ok {
			t.Errorf("ToSub(%q) = %q, true", id, sub)
		}
	}
}

// The hand-written checks accept exactly what the regular expressions
// they replaced accepted.
func TestChecksMatchTheirPatterns(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	hex := regexp.MustCompile(`^[0-9a-f]+$`)
	r := rand.New(rand.NewPCG(5, 6))
	const alphabet = "0123456789abcdefABCDEFgz-/:@`G"
	inputs := []string{"", "-", "0f8fad5b-d9cb-469f-a165-70867728950e", "0f8fad5b-d9cb-469f-a165-70867728950E",
		"0f8fad5bd9cb-469f-a165-70867728950e-", "0f8fad5b-d9cb-469f-a165-70867728950e\n", "0f8fad5b-d9cb-469f-a165-7086772895"}
	for i := 0; i < 50000; i++ {
		b := []byte(fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xffff, r.Uint32()&0xffff, r.Uint64()&0xffffffffffff))
		switch i % 3 {
		case 0:
			b = b[:r.IntN(len(b)+1)]
		case 1:
			b = append(b, alphabet[r.IntN(len(alphabet))])
		}
		for n := r.IntN(3); n > 0 && len(b) > 0; n-- {
			b[r.IntN(len(b))] = alphabet[r.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(b))
	}
	for _, s := range inputs {
		if got, want := isCanonicalUUID(s), uuid.MatchString(s); got != want {
			t.Errorf("isCanonicalUUID(%q) = %v, the pattern says %v", s, got, want)
		}
		if got, want := isLowerHex(s), hex.MatchString(s); got != want {
			t.Errorf("isLowerHex(%q) = %v, the pattern says %v", s, got, want)
		}
	}
}
