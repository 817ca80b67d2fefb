// Package gateway emulates an API Gateway HTTP API in front of a Lambda
// function, for the local run: the routes, authorizer, CORS and throttling
// that template.yaml declares; it builds the same payload 2.0 event and
// turns the function's answer back into HTTP.
package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"golang.org/x/time/rate"

	"github.com/kandy-provisioner/kandy-provisioner/local/authorizer"
	"github.com/kandy-provisioner/kandy-provisioner/local/openapicheck"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
)

// maxPayload is API Gateway's request payload limit; maxEvent is Lambda's
// limit on a synchronous invocation's event, which a body under maxPayload
// can still pass once it is wrapped in the event.
const (
	maxPayload = 10 << 20
	maxEvent   = 6 << 20
)

// ViolationHeader names, on an answer that breaks the API's OpenAPI
// description, how it breaks it, so that a test's client can fail the
// call that got it.
const ViolationHeader = "Kandy-Local-Contract-Violation"

// Invoker runs a function with one event.
type Invoker interface {
	Invoke(ctx context.Context, event []byte) ([]byte, error)
}

// Gateway serves an API's routes with one function behind them.
type Gateway struct {
	API      API
	Verifier *authorizer.Verifier
	Function Invoker
	Log      *slog.Logger
	// Contract, when set, checks each request to a route and its answer
	// against the API's OpenAPI description. A violation is logged and
	// named in ViolationHeader; the answer is otherwise unchanged.
	Contract *openapicheck.Checker

	once     sync.Once
	limiters map[string]*rate.Limiter // by route
}

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	path := r.URL.Path
	if len(path) > 1 {
		path = strings.TrimRight(path, "/")
	}
	route := r.Method + " " + path
	var status int
	if g.API.CORS != nil && isPreflight(r) {
		route = "preflight " + path
		status = g.API.CORS.preflight(w, r)
	} else {
		if g.API.CORS != nil {
			g.API.CORS.annotate(w.Header(), r.Header.Get("Origin"))
		}
		if _, routed := g.API.Routes[route]; routed && g.Contract != nil {
			status = g.serveChecked(w, r, route, path)
		} else {
			status = g.serve(w, r, route)
		}
	}
	g.Log.Info("api", "route", route, "status", status, "duration_ms", time.Since(start).Milliseconds())
}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, route string) int {
	rt, ok := g.API.Routes[route]
	if !ok {
		return message(w, http.StatusNotFound, "Not Found")
	}
	if !g.limiter(route).Allow() {
		return message(w, http.StatusTooManyRequests, "Too Many Requests")
	}
	var claims map[string]any
	if rt.JWT {
		var status int
		if claims, status = g.authorize(w, r, rt); status != 0 {
			return status
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPayload+1))
	if err != nil || len(body) > maxPayload {
		return message(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
	}
	ev, err := json.Marshal(Event(r, route, claims, body))
	if err != nil {
		return message(w, http.StatusInternalServerError, "Internal Server Error")
	}
	if len(ev) > maxEvent {
		return message(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
	}
	// A caller that hangs up does not stop a Lambda invocation.
	out, err := g.Function.Invoke(context.WithoutCancel(r.Context()), ev)
	switch {
	case errors.Is(err, processes.ErrThrottled):
		return message(w, http.StatusTooManyRequests, "Too Many Requests")
	case err != nil:
		// A function error, a time-out or a crash: a 500 to the caller.
		g.Log.Error("api: invoke failed", "route", route, "err", err.Error())
		return message(w, http.StatusInternalServerError, "Internal Server Error")
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode == 0 {
		return message(w, http.StatusInternalServerError, "Internal Server Error")
	}
	return WriteResponse(w, resp, g.API.CORS != nil)
}

// serveChecked serves a request to a route with its answer held back,
// checks the request and the answer against the contract, then sends the
// answer.
func (g *Gateway) serveChecked(w http.ResponseWriter, r *http.Request, route, path string) int {
	var body bytes.Buffer
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.TeeReader(r.Body, &body), r.Body}
	held := &heldAnswer{header: w.Header()}
	g.serve(held, r, route)
	// The description's path: the route's, as the request was matched to it.
	checked := r.Clone(r.Context())
	checked.URL.Path, checked.URL.RawPath = path, ""
	err := g.Contract.Check(r.Context(), openapicheck.Exchange{Request: checked, RequestBody: body.Bytes(),
		Status: held.status, Header: held.header, Body: held.body.Bytes()})
	if err != nil {
		g.Log.Error("api: contract violation", "route", route, "status", held.status, "violation", err.Error())
		w.Header().Set(ViolationHeader, err.Error())
	}
	w.WriteHeader(held.status)
	_, _ = w.Write(held.body.Bytes())
	return held.status
}

// heldAnswer keeps an answer back from the caller. Its header is the
// caller's own, which goes out only at the caller's WriteHeader.
type heldAnswer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (h *heldAnswer) Header() http.Header { return h.header }

func (h *heldAnswer) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}

func (h *heldAnswer) Write(p []byte) (int, error) {
	h.WriteHeader(http.StatusOK)
	return h.body.Write(p)
}

// authorize runs the JWT authorizer: 401 for a missing or invalid token,
// 403 for a valid one without the route's scopes, as API Gateway answers.
func (g *Gateway) authorize(w http.ResponseWriter, r *http.Request, rt Route) (map[string]any, int) {
	header := r.Header.Get("Authorization")
	if strings.TrimSpace(header) == "" {
		return nil, message(w, http.StatusUnauthorized, "Unauthorized")
	}
	token := strings.TrimSpace(strings.TrimPrefix(header, "Bearer "))
	claims, err := g.Verifier.Verify(token)
	if err != nil {
		why := strings.TrimPrefix(err.Error(), authorizer.ErrInvalidToken.Error()+": ")
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer scope="" error="invalid_token" error_description=%q`, why))
		return nil, message(w, http.StatusUnauthorized, "Unauthorized")
	}
	if !authorizer.HasScope(claims, rt.Scopes) {
		scopes := strings.Join(rt.Scopes, " ")
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer scope=%q error="insufficient_scope" error_description="expected scopes: [%s]"`, scopes, scopes))
		return nil, message(w, http.StatusForbidden, "Forbidden")
	}
	return claims, 0
}

// limiter is a route's token bucket: its burst, refilled at its rate.
func (g *Gateway) limiter(route string) *rate.Limiter {
	g.once.Do(func() {
		g.limiters = map[string]*rate.Limiter{}
		for rt := range g.API.Routes {
			l := rate.NewLimiter(rate.Inf, 0)
			if g.API.Burst > 0 && g.API.Rate > 0 {
				l = rate.NewLimiter(rate.Limit(g.API.Rate), g.API.Burst)
			}
			g.limiters[rt] = l
		}
	})
	return g.limiters[route]
}

// Event builds the payload 2.0 event API Gateway would send.
func Event(r *http.Request, route string, claims map[string]any, body []byte) events.APIGatewayV2HTTPRequest {
	headers := map[string]string{}
	for k, vs := range r.Header {
		if strings.EqualFold(k, "Cookie") {
			continue
		}
		headers[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	headers["host"] = r.Host
	query := map[string]string{}
	for k, vs := range r.URL.Query() {
		query[k] = strings.Join(vs, ",")
	}
	var cookies []string
	for _, c := range r.Cookies() {
		cookies = append(cookies, c.String())
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	now := time.Now().UTC()
	ev := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              route,
		RawPath:               r.URL.Path,
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     route,
			AccountID:    "000000000000",
			Stage:        "$default",
			RequestID:    requestID(),
			APIID:        "local",
			DomainName:   r.Host,
			DomainPrefix: strings.Split(r.Host, ".")[0],
			Time:         now.Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: r.Method, Path: r.URL.Path, Protocol: r.Proto, SourceIP: ip, UserAgent: r.UserAgent(),
			},
		},
	}
	if claims != nil {
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: Claims(claims)},
		}
	}
	if len(body) > 0 {
		if utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		}
	}
	return ev
}

// Claims flattens claims to strings, as API Gateway passes them: numbers in
// plain decimal, arrays as "[a b]".
func Claims(in map[string]any) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = claimString(v)
	}
	return out
}

func claimString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = claimString(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// WriteResponse sends the function's answer as API Gateway does; with a
// CORS configuration, the function's own CORS headers are dropped.
func WriteResponse(w http.ResponseWriter, resp events.APIGatewayV2HTTPResponse, cors bool) int {
	keep := func(k string) bool {
		return !cors || !strings.HasPrefix(strings.ToLower(k), "access-control-")
	}
	keys := make([]string, 0, len(resp.Headers))
	for k := range resp.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if keep(k) {
			w.Header().Set(k, resp.Headers[k])
		}
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			if keep(k) {
				w.Header().Add(k, v)
			}
		}
	}
	for _, c := range resp.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if b, err := base64.StdEncoding.DecodeString(resp.Body); err == nil {
			body = b
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
	return resp.StatusCode
}

func message(w http.ResponseWriter, status int, msg string) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"message":%q}`+"\n", msg)
	return status
}

func requestID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
