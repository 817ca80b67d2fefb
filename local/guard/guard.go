// Package guard is what every server of the local run answers
// through, so that `make run` is safe to leave running while its user
// browses: a request whose Host is not a loopback name (DNS rebinding) or
// whose Origin was not invited (a page of another site) is refused before
// it reaches the server behind, and each server has read and write
// deadlines. Servers that are not ours (dynalite, cognito-local, local-kms,
// goaws) sit behind a Front on the public port and answer only it.
package guard

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Policy says which browser origins the local servers let in. Requests
// with no Origin (SDKs, the AWS CLI, curl, a page's own same-origin GETs)
// are let in; so are those from Origins.
type Policy struct {
	// Origins are exact origins (scheme://host[:port]): the console's own
	// and CORS_ALLOWED_ORIGINS. A wildcard opens nothing here.
	Origins []string
	// Log, if set, hears of each refusal.
	Log *slog.Logger
}

// AllowsOrigin reports whether a request from origin may reach a server.
func (p Policy) AllowsOrigin(origin string) bool {
	return slices.ContainsFunc(p.Origins, func(o string) bool { return strings.EqualFold(o, origin) })
}

// loopbackHost reports whether a Host header names this machine by a
// loopback name, with or without a port.
func loopbackHost(host string) bool {
	name := host
	if h, port, err := net.SplitHostPort(host); err == nil {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return false
		}
		name = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		name = host[1 : len(host)-1]
	}
	switch strings.ToLower(name) {
	case "127.0.0.1", "localhost", "::1":
		return true
	}
	return false
}

// Guard refuses, with 403, a request to the server called name whose Host
// is not 127.0.0.1, localhost or [::1], or whose Origin the policy does
// not allow; other requests reach next.
func (p Policy) Guard(name string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin, hasOrigin := r.Header["Origin"]
		var why string
		switch {
		case !loopbackHost(r.Host):
			why = fmt.Sprintf("Host %q is not 127.0.0.1, localhost or [::1]: the local servers answer only loopback names", r.Host)
		case hasOrigin && (len(origin) != 1 || !p.AllowsOrigin(origin[0])):
			why = fmt.Sprintf("Origin %q is not the console's own or one of CORS_ALLOWED_ORIGINS", strings.Join(origin, ","))
		default:
			next.ServeHTTP(w, r)
			return
		}
		if p.Log != nil {
			p.Log.Warn("refused a request", "server", name, "method", r.Method, "path", r.URL.Path, "why", why)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `{"message":%q}`+"\n", "refused: "+why)
	})
}

// Timeouts bound how long a server waits on a client: for the request's
// header, for the whole request, for the answer (from the end of the
// header), and for the next request on an idle connection.
type Timeouts struct {
	ReadHeader, Read, Write, Idle time.Duration
}

// Each kind of local server's timeouts, sized like the service it stands
// in for.
var (
	// HTTPAPI is API Gateway's HTTP API: it gives an integration 30 s, so a
	// request has 30 s to arrive and its answer 30 s more.
	HTTPAPI = Timeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Write: 65 * time.Second, Idle: 60 * time.Second}
	// Lambda is the Invoke API: a synchronous invocation may run for 15
	// minutes, a function's longest time-out.
	Lambda = Timeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Write: 16 * time.Minute, Idle: 60 * time.Second}
	// Service is an AWS service's API or Kandy's: the longest answer is an
	// SQS long poll (20 s) or Cognito waiting for a trigger (5 s, three
	// tries).
	Service = Timeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Write: 60 * time.Second, Idle: 60 * time.Second}
)

// Server is an http.Server for h with these timeouts.
func (t Timeouts) Server(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read, WriteTimeout: t.Write, IdleTimeout: t.Idle}
}

// Listen listens on a loopback port (0: a free one) now, so that a busy
// port fails a start at once.
func Listen(port int) (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return nil, fmt.Errorf("port %d: %w", port, err)
	}
	return l, nil
}
