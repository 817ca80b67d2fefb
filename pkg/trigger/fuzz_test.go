package trigger

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzHandle: any event comes back byte for byte, and only a sign-up with a
// sub reaches the domain.
func FuzzHandle(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "events", "post-confirmation-*.json"))
	for _, file := range files {
		if raw, err := os.ReadFile(file); err == nil {
			f.Add(raw)
		}
	}
	f.Add([]byte(signUp))
	f.Add([]byte(`{"triggerSource":"PostConfirmation_ConfirmSignUp","request":{"userAttributes":{"sub":""}}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		fe := &fakeEnsurer{}
		out, err := New(fe, quiet, 0, nil, nil).Handle(context.Background(), json.RawMessage(raw))
		if err != nil {
			t.Fatalf("Handle: %v", err)
		}
		if !bytes.Equal(out, raw) {
			t.Fatalf("event changed:\n got %q\nwant %q", out, raw)
		}
		var ev struct {
			TriggerSource string `json:"triggerSource"`
			Request       struct {
				UserAttributes map[string]string `json:"userAttributes"`
			} `json:"request"`
		}
		valid := json.Unmarshal(raw, &ev) == nil && ev.TriggerSource == SourceConfirmSignUp && ev.Request.UserAttributes["sub"] != ""
		if !valid && fe.calls != 0 {
			t.Fatalf("provisioned from %q", raw)
		}
	})
}
