package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// A frontend on its own dev server loads the pool and client ids from
// config.json at run time: a page of an allowed origin may read it, no
// other page may.
func TestConfigIsReadableByTheAllowedOriginsOnly(t *testing.T) {
	h := readableBy([]string{"http://localhost:5173"}, asset("application/json", []byte(`{}`)))
	for origin, want := range map[string]string{"http://localhost:5173": "http://localhost:5173", "http://127.0.0.1:5173": "", "": ""} {
		req := httptest.NewRequest(http.MethodGet, "/console/config.json", nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		rec := httptest.NewRecorder()
		h(rec, req)
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != want {
			t.Errorf("Origin %q: Access-Control-Allow-Origin %q, want %q", origin, got, want)
		}
	}
}
