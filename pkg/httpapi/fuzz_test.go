package httpapi

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

func FuzzDecodeCreate(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"user_country_code":"US"}`, `{"user_country_code":"+44"}`,
		`{"user_country_code":"USA"}`, `{"x":1}`, `[]`, `{"user_country_code":"US"} {}`, "\x00", `{"user_country_code":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		opts, err := DecodeCreate(body)
		if err != nil {
			if provision.CodeOf(err) != provision.CodeInvalidRequest {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if opts.CountryCode != "" && !provision.ValidCountryCode(opts.CountryCode) {
			t.Fatalf("accepted country %q", opts.CountryCode)
		}
	})
}

// FuzzHandle feeds arbitrary payload 2.0 events to the handler: every one
// must get a contract status and a well-formed answer, never a panic.
func FuzzHandle(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "events", "*.json"))
	for _, file := range files {
		if raw, err := os.ReadFile(file); err == nil {
			f.Add(raw)
		}
	}
	f.Add([]byte(`{"routeKey":"$default","rawPath":"/users/","requestContext":{"http":{"method":"POST"},"authorizer":{"jwt":{"claims":{"sub":"x"}}}},"body":"e30=","isBase64Encoded":true}`))
	allowed := map[int]bool{200: true, 201: true, 204: true, 400: true, 401: true, 403: true, 404: true, 409: true, 500: true, 502: true}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var req events.APIGatewayV2HTTPRequest
		if json.Unmarshal(raw, &req) != nil {
			return
		}
		h := New(&fakeProvisioner{created: true}, quiet)
		resp, err := h.Handle(context.Background(), req)
		if err != nil {
			t.Fatalf("Handle: %v", err)
		}
		if !allowed[resp.StatusCode] {
			t.Fatalf("status %d, not one the API answers", resp.StatusCode)
		}
		if resp.Body != "" {
			if !json.Valid([]byte(resp.Body)) {
				t.Fatalf("body is not JSON: %q", resp.Body)
			}
			if ct := resp.Headers["Content-Type"]; ct != "application/json" {
				t.Fatalf("Content-Type %q, want application/json, for body %q", ct, resp.Body)
			}
		}
		if resp.StatusCode < 300 && callerSub(req) == "" {
			t.Fatal("served a request without identity")
		}
	})
}
