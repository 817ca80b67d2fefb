package guard

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A backend learns from its environment where to listen and what token to
// want: tools/front-only.js does this in Node servers, and our mains of
// local-kms and goaws in Go.
const (
	SocketEnv = "KANDY_BACKEND_SOCKET"
	TokenEnv  = "KANDY_FRONT_TOKEN"
)

// Backend is a server only its front calls. It listens on a Unix socket,
// in a folder only this user may enter, never on a TCP port a page could
// find; and it answers only requests that carry its token.
type Backend struct {
	Socket string
	Token  string
}

// NewBackend is a backend called name, its socket in dir.
func NewBackend(dir, name string) Backend {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return Backend{Socket: filepath.Join(dir, name+".sock"), Token: hex.EncodeToString(b)}
}

// SocketDir is a new folder for backends' sockets, which only this user
// may enter; the caller removes it.
func SocketDir() (string, error) {
	// Short: a socket's path may not exceed 107 bytes.
	return os.MkdirTemp("", "kl-")
}

// Env is the backend's environment: where to listen, what to want.
func (b Backend) Env() []string {
	return []string{SocketEnv + "=" + b.Socket, TokenEnv + "=" + b.Token}
}

// Client calls the backend as its front does, over its socket, token
// and all. URLs name any host: the socket is the only place it dials.
func (b Backend) Client() *http.Client { return &http.Client{Transport: b.transport()} }

// URL is a base URL for Client.
func (b Backend) URL() string { return "http://backend" }

// transport dials the socket and adds the token. Its idle connections
// close before Node's (5 s), so none is reused as the server closes it.
func (b Backend) transport() http.RoundTripper {
	var d net.Dialer
	t := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", b.Socket)
		},
		IdleConnTimeout:     4 * time.Second,
		MaxIdleConnsPerHost: 32,
	}
	return tokenTransport{token: b.Token, next: t}
}

type tokenTransport struct {
	token string
	next  http.RoundTripper
}

func (t tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(TokenHeader, t.token)
	return t.next.RoundTrip(r)
}

// Front is the public face of a backend: its guard's checks, CORS answered
// here for a Pages front (never "*", never the backend's own headers),
// whole bodies only, then the backend.
type Front struct {
	Guard   Guard
	Backend Backend
	// Wrap, if set, wraps the proxy: it sees each request that passed the
	// checks, with its whole body, and may answer it or pass it on.
	Wrap func(proxy http.Handler) http.Handler
}

// Handler serves the front.
func (f *Front) Handler() http.Handler {
	target, _ := url.Parse(f.Backend.URL())
	var h http.Handler = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// The backend never makes a CORS decision: the front has.
			pr.Out.Header.Del("Origin")
			// A caller that hangs up does not abort the backend mid-call:
			// dynalite dies of an aborted request.
			pr.Out = pr.Out.WithContext(context.WithoutCancel(pr.Out.Context()))
		},
		Transport: f.Backend.transport(),
		ModifyResponse: func(resp *http.Response) error {
			for k := range resp.Header {
				if strings.HasPrefix(strings.ToLower(k), "access-control-") {
					resp.Header.Del(k)
				}
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if f.Guard.Log != nil {
				f.Guard.Log.Error("front: proxying failed", "server", f.Guard.Name, "path", r.URL.Path, "err", err.Error())
			}
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	if f.Wrap != nil {
		h = f.Wrap(h)
	}
	h = f.whole(h)
	if f.Guard.Audience == Pages {
		h = cors(h)
	}
	return f.Guard.Handler(h)
}

// maxBody is the largest request body a front passes on: DynamoDB's
// request limit, the largest of the services behind a front.
const maxBody = 16 << 20

// whole reads a request's body before next sees it, so the backend gets
// whole requests only: a body cut by the read timeout, or that its sender
// abandons, never reaches it half sent.
func (f *Front) whole(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		case err != nil:
			if f.Guard.Log != nil {
				f.Guard.Log.Warn("front: a request body did not arrive whole; nothing was passed on", "server", f.Guard.Name, "path", r.URL.Path, "err", err.Error())
			}
			http.Error(w, "the request body did not arrive in time", http.StatusRequestTimeout)
			return
		}
		r.Body, r.ContentLength, r.TransferEncoding = io.NopCloser(bytes.NewReader(body)), int64(len(body)), nil
		next.ServeHTTP(w, r)
	})
}

// exposedHeaders are those an AWS API's browser clients read.
const exposedHeaders = "x-amzn-RequestId,x-amzn-ErrorType,x-amzn-ErrorMessage,Date"

// cors answers a request from an origin the guard let in: a preflight
// here, with what it asks for; any other request with that origin named.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		if method := r.Header.Get("Access-Control-Request-Method"); r.Method == http.MethodOptions && method != "" {
			h.Set("Access-Control-Allow-Methods", method)
			if asked := r.Header.Get("Access-Control-Request-Headers"); asked != "" {
				h.Set("Access-Control-Allow-Headers", asked)
			}
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", exposedHeaders)
		next.ServeHTTP(w, r)
	})
}
