package secrets

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzParse: no panic, and an error never quotes a value from the secret.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"project_api_key":"DAKabc","project_api_secret":"DASxyz"}`, `{}`, `{"project_api_key":"DAKabc"}`,
		`{"project_api_key":1}`, `[]`, `null`, ``, `{"project_api_key":"DAKabc","project_api_secret":"DASxyz"} x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := Parse(s)
		if err == nil {
			if k.APIKey == "" {
				t.Fatal("accepted an empty key")
			}
			if k.APISecret == "" {
				t.Fatal("accepted an empty secret")
			}
			return
		}
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("unclassified error %v", err)
		}
		var m map[string]any
		if json.Unmarshal([]byte(s), &m) != nil {
			return
		}
		for _, v := range m {
			if str, ok := v.(string); ok && len(str) >= 4 && strings.Contains(err.Error(), str) &&
				!strings.Contains("project_api_key project_api_secret", str) {
				t.Fatalf("error %q quotes the value %q", err, str)
			}
		}
	})
}
