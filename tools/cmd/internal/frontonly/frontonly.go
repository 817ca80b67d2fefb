// Package frontonly makes a server of ours answer only its Go front in the
// local run (kandy-provisioner's local/guard): with
// KANDY_FRONT_TOKEN set, a request without that token in X-Kandy-Front is
// refused, so a web page that finds the server's port, or reaches it by a
// rebound DNS name, gets nothing. Without the variable, as in a package's
// own tests, every request is served.
package frontonly

import (
	"crypto/subtle"
	"net/http"
	"os"
)

// Handler is h, behind the token check when KANDY_FRONT_TOKEN is set.
func Handler(h http.Handler) http.Handler {
	token := os.Getenv("KANDY_FRONT_TOKEN")
	if token == "" {
		return h
	}
	os.Unsetenv("KANDY_FRONT_TOKEN")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Kandy-Front")), []byte(token)) != 1 {
			w.Header().Set("Connection", "close")
			http.Error(w, "refused: only the local run's front may call this server", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}
