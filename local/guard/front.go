package guard

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// A server behind a Front answers only requests that carry its token in
// TokenHeader: the token reaches the server in TokenEnv, and only the
// front knows it. A page that finds the server's own port, or reaches it
// by a rebound name, gets nothing. tools/front-only.js does this in Node
// servers, and our mains of local-kms and goaws in Go.
const (
	TokenHeader = "X-Kandy-Front"
	TokenEnv    = "KANDY_FRONT_TOKEN"
)

// NewToken is a fresh token for one backend.
func NewToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Backend is a server that only its front may call.
type Backend struct {
	URL   string // http://127.0.0.1:port
	Token string
}

// Client calls the backend as its front does, token and all.
func (b Backend) Client() *http.Client { return &http.Client{Transport: b.transport()} }

// transport adds the token. Its idle connections close before Node's
// (5 s), so none is reused as the server closes it.
func (b Backend) transport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.IdleConnTimeout = 4 * time.Second
	t.MaxIdleConnsPerHost = 32
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

// Front is the public face of a backend: it refuses what the policy
// refuses, answers CORS itself for the allowed origins (never "*", and
// never the backend's own headers), and proxies the rest with the token.
type Front struct {
	Name    string // for the log: "dynalite", "cognito-local", …
	Policy  Policy
	Backend Backend
	// Wrap, if set, wraps the proxy: it sees each request that passed the
	// checks, after CORS, and may answer it or pass it on.
	Wrap func(proxy http.Handler) http.Handler
}

// Handler serves the front.
func (f *Front) Handler() http.Handler {
	target, err := url.Parse(f.Backend.URL)
	if err != nil || target.Host == "" {
		panic("guard: backend URL " + f.Backend.URL + " is not a URL")
	}
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
			if f.Policy.Log != nil {
				f.Policy.Log.Error("front: proxying failed", "server", f.Name, "path", r.URL.Path, "err", err.Error())
			}
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	h = f.whole(h)
	if f.Wrap != nil {
		h = f.Wrap(h)
	}
	return f.Policy.GuardWithCORS(f.Name, h)
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
			if f.Policy.Log != nil {
				f.Policy.Log.Warn("front: a request body did not arrive whole; nothing was passed on", "server", f.Name, "path", r.URL.Path, "err", err.Error())
			}
			http.Error(w, "the request body did not arrive in time", http.StatusRequestTimeout)
			return
		}
		r.Body, r.ContentLength, r.TransferEncoding = io.NopCloser(bytes.NewReader(body)), int64(len(body)), nil
		next.ServeHTTP(w, r)
	})
}

// GuardWithCORS is Guard, then CORS answered here for the origins let in:
// what a front does before its backend, for a server of ours that stands
// in for one (the SQS translation in front of goaws).
func (p Policy) GuardWithCORS(name string, next http.Handler) http.Handler {
	return p.Guard(name, cors(next))
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
