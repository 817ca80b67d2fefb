// Package guard is how every TCP listener of the local run is served, so
// that `make run` is safe to leave running while its user browses: any
// page the browser opens can send requests to 127.0.0.1, so every request
// passes the same checks before a handler runs. A request whose Host is
// not a loopback name (DNS rebinding) is refused; so is one from a page
// that is not an allowed origin, told by its Origin or, for the requests
// that carry none (a no-cors GET, a navigation), by Fetch Metadata. A
// server only other processes call refuses every request a browser
// makes. Servers that are not ours (dynalite, cognito-local, local-kms,
// goaws) listen on Unix sockets, not TCP, and a Front serves them.
package guard

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Audience is who may call a server.
type Audience int

const (
	// Pages are servers a browser calls: the HTTP API with its console,
	// and Cognito. A page of an allowed origin reaches them; a page of
	// any other origin, and a page with no origin at all, does not.
	Pages Audience = iota + 1
	// Programs are servers only other processes call: the SDKs, the AWS
	// CLI, curl, the functions. Every request a browser makes carries an
	// Origin or a Sec-Fetch-* header, and is refused.
	Programs
)

// Guard is one listener's checks, timeouts and limits.
type Guard struct {
	// Name names the server in the log of refused requests.
	Name     string
	Audience Audience
	// Origins are the exact origins (scheme://host[:port]) whose pages a
	// Pages server answers. A wildcard opens nothing.
	Origins []string
	// Token, if set, must come with every request, in TokenHeader or,
	// with TokenInPath, as the first segment of the path (which next does
	// not see): a server of ours that only the run's own processes call.
	Token       string
	TokenInPath bool
	Timeouts    Timeouts
	// MaxBody bounds a request body; 0 leaves it to the handler.
	MaxBody int64
	// Log, if set, hears of each refusal.
	Log *slog.Logger
}

// TokenHeader carries a server's per-run token (see Guard.Token and
// Backend).
const TokenHeader = "X-Kandy-Front"

// AllowsOrigin reports whether a page of origin may call a Pages server.
func (g Guard) AllowsOrigin(origin string) bool {
	return slices.ContainsFunc(g.Origins, func(o string) bool { return strings.EqualFold(o, origin) })
}

// Handler is next behind the checks.
func (g Guard) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if why := g.refusal(r); why != "" {
			g.refuse(w, r, why)
			return
		}
		if g.TokenInPath {
			r.URL.Path = strings.TrimPrefix(r.URL.Path, "/"+g.Token)
			r.URL.RawPath = ""
		}
		if g.MaxBody > 0 {
			if r.ContentLength > g.MaxBody {
				g.refuseStatus(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is over %d bytes", g.MaxBody))
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, g.MaxBody)
		}
		next.ServeHTTP(w, r)
	})
}

// refusal is why r is refused, or "".
func (g Guard) refusal(r *http.Request) string {
	if !loopbackHost(r.Host) {
		return fmt.Sprintf("Host %q is not 127.0.0.1, localhost or [::1]: the local servers answer only loopback names", r.Host)
	}
	if g.Token != "" && subtle.ConstantTimeCompare([]byte(g.tokenOf(r)), []byte(g.Token)) != 1 {
		return "the request does not carry this server's token: only the local run calls it"
	}
	origin, hasOrigin := r.Header["Origin"]
	if g.Audience == Programs {
		if browser := fromBrowser(r); browser != "" {
			return "a web page's request (" + browser + "): only programs call this server"
		}
		return ""
	}
	switch {
	case hasOrigin && (len(origin) != 1 || !g.AllowsOrigin(origin[0])):
		return fmt.Sprintf("Origin %q is not the console's own or one of CORS_ALLOWED_ORIGINS", strings.Join(origin, ","))
	case hasOrigin:
		return ""
	}
	// No Origin: a program, the page's own same-origin GET, the user's own
	// navigation, or a no-cors request of another page, which only Fetch
	// Metadata tells apart.
	switch site := r.Header.Get("Sec-Fetch-Site"); {
	case site == "", site == "same-origin", site == "none":
		return ""
	case topLevelNavigation(r):
		return ""
	default:
		return fmt.Sprintf("a %s request (Sec-Fetch-Site %s, Sec-Fetch-Mode %s) from a page of no allowed origin",
			r.Method, site, r.Header.Get("Sec-Fetch-Mode"))
	}
}

// tokenOf is the token r carries where this guard wants it.
func (g Guard) tokenOf(r *http.Request) string {
	if !g.TokenInPath {
		return r.Header.Get(TokenHeader)
	}
	first, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	return first
}

// topLevelNavigation is a link followed to a page: it can read nothing
// and, being a GET, change nothing.
func topLevelNavigation(r *http.Request) bool {
	return r.Method == http.MethodGet && r.Header.Get("Sec-Fetch-Mode") == "navigate" && r.Header.Get("Sec-Fetch-Dest") == "document"
}

// fromBrowser names the header that shows a browser sent r, with its
// value, or "".
func fromBrowser(r *http.Request) string {
	if origin, ok := r.Header["Origin"]; ok {
		return fmt.Sprintf("Origin %q", strings.Join(origin, ","))
	}
	for name, v := range r.Header {
		if strings.HasPrefix(name, "Sec-Fetch-") {
			return fmt.Sprintf("%s %q", name, strings.Join(v, ","))
		}
	}
	return ""
}

func (g Guard) refuse(w http.ResponseWriter, r *http.Request, why string) {
	g.refuseStatus(w, r, http.StatusForbidden, why)
}

func (g Guard) refuseStatus(w http.ResponseWriter, r *http.Request, status int, why string) {
	if g.Log != nil {
		g.Log.Warn("refused a request", "server", g.Name, "method", r.Method, "path", r.URL.Path, "status", status, "why", why)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Connection", "close")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"message":%q}`+"\n", "refused: "+why)
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

// Timeouts bound how long a server waits on a client: for the request's
// header, for the whole request, for the answer (from the end of the
// header; 0: no bound, for a long poll), and for the next request on an
// idle connection.
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
	// Runtime is the Lambda Runtime API: a runtime waits for its next
	// invocation for as long as there is none, so answers have no bound;
	// what it posts back must arrive in time.
	Runtime = Timeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Idle: 16 * time.Minute}
)

// Server is a guarded listener.
type Server struct {
	// URL is its base URL: http://127.0.0.1:port.
	URL string
	srv *http.Server
	l   net.Listener
}

// Serve listens on a loopback port (0: a free one) and serves next behind
// the guard until Close.
func (g Guard) Serve(port int, next http.Handler) (*Server, error) {
	s, err := Listen(port)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.Name, err)
	}
	if err := s.Serve(g, next); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Listen listens on a loopback port (0: a free one) now, so that a busy
// port fails a start at once, for Serve to serve later: a server whose
// guard or handler needs its own address first. With Serve, it is the
// only way the local run opens a TCP port.
func Listen(port int) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return nil, fmt.Errorf("port %d: %w", port, err)
	}
	return &Server{URL: "http://" + l.Addr().String(), l: l}, nil
}

// Serve serves next behind g, once.
func (s *Server) Serve(g Guard, next http.Handler) error {
	if g.Audience != Pages && g.Audience != Programs {
		return fmt.Errorf("guard %s: say who calls it (Pages or Programs)", g.Name)
	}
	t := g.Timeouts
	s.srv = &http.Server{Handler: g.Handler(next), ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read, WriteTimeout: t.Write, IdleTimeout: t.Idle}
	go func() { _ = s.srv.Serve(s.l) }()
	return nil
}

// FreePort is a loopback port that was free a moment ago, for a server
// that takes no guard: AWS's own emulator, aws-lambda-rie, which only the
// end-to-end suite and the benchmarks start, never make run.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Port is the port it listens on.
func (s *Server) Port() int { return s.l.Addr().(*net.TCPAddr).Port }

// Close stops it, letting requests under way finish for a moment.
func (s *Server) Close() {
	if s.srv == nil {
		s.l.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
		_ = s.srv.Close()
	}
}
