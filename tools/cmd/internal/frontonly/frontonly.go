// Package frontonly makes a server of ours answer only its Go front in the
// local run (kandy-provisioner's local/guard): it listens on the Unix
// socket KANDY_BACKEND_SOCKET, never on a TCP port a web page could
// reach, and refuses every request without the token KANDY_FRONT_TOKEN in
// X-Kandy-Front.
package frontonly

import (
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"os"
)

// Listen is the backend's socket, and the handler that wants the token in
// front of h. Both variables are read once and removed from the
// environment.
func Listen(h http.Handler) (net.Listener, http.Handler, error) {
	socket, token := os.Getenv("KANDY_BACKEND_SOCKET"), os.Getenv("KANDY_FRONT_TOKEN")
	if socket == "" || token == "" {
		return nil, nil, errors.New("set KANDY_BACKEND_SOCKET and KANDY_FRONT_TOKEN: this server answers only the local run's front")
	}
	os.Unsetenv("KANDY_BACKEND_SOCKET")
	os.Unsetenv("KANDY_FRONT_TOKEN")
	_ = os.Remove(socket)
	l, err := net.Listen("unix", socket)
	if err != nil {
		return nil, nil, err
	}
	return l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Kandy-Front")), []byte(token)) != 1 {
			w.Header().Set("Connection", "close")
			http.Error(w, "refused: only the local run's front may call this server", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	}), nil
}
