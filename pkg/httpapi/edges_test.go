package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// TestTheRootPathKeepsItsSlash: a $default request is logged under the
// path it asked for; only a trailing slash after a name is dropped.
func TestTheRootPathKeepsItsSlash(t *testing.T) {
	for path, want := range map[string]string{"/": "GET /", "/users/me/": "GET /users/me", "/x//": "GET /x"} {
		var logs strings.Builder
		req := request("GET "+path, "s1", "")
		req.RouteKey = "$default"
		New(&fakeProvisioner{}, slog.New(slog.NewJSONHandler(&logs, nil))).Handle(context.Background(), req)
		var line struct{ Route string }
		if err := json.Unmarshal([]byte(logs.String()), &line); err != nil || line.Route != want {
			t.Errorf("%s: logged route %q (%v), want %q", path, line.Route, err, want)
		}
	}
}

// TestABase64BodyIsJudgedDecoded: a base64 body up to twice the limit is
// decoded before it is judged, so one that is not base64 is told so; only
// a longer one is refused on its length alone.
func TestABase64BodyIsJudgedDecoded(t *testing.T) {
	for body, want := range map[string]string{
		strings.Repeat("%", 2*MaxBodyBytes):   "body is not valid base64",
		strings.Repeat("%", 2*MaxBodyBytes+1): "body over 4096 bytes",
	} {
		req := request("POST /users", "s1", body)
		req.IsBase64Encoded = true
		resp, _ := New(&fakeProvisioner{}, quiet).Handle(context.Background(), req)
		var b errorBody
		if err := json.Unmarshal([]byte(resp.Body), &b); err != nil || resp.StatusCode != 400 || b.Error.Message != want {
			t.Errorf("%d bytes: %d %s, want 400 %q", len(body), resp.StatusCode, resp.Body, want)
		}
	}
}
