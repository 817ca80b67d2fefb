// Package httpapi turns API Gateway HTTP API (payload 2.0) events into
// provisioning calls, and errors into HTTP answers. It is the only place
// that maps an error to a status code.
package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 4 << 10

// retryAfter is the seconds a 503 asks the caller to wait: our AWS
// dependencies recover from a throttle or a lost connection in about that.
const retryAfter = "1"

// Provisioner is what the API needs of the domain.
type Provisioner interface {
	Ensure(ctx context.Context, sub string, o provision.EnsureOptions) (provision.Account, bool, error)
	Get(ctx context.Context, sub string) (provision.Account, error)
	UserToken(ctx context.Context, sub string) (string, error)
	// Delete reports whether there was an account to delete.
	Delete(ctx context.Context, sub string) (bool, error)
}

// Handler serves the HTTP API.
type Handler struct {
	svc    Provisioner
	log    *slog.Logger
	routes map[string]route
}

type route func(ctx context.Context, sub string, body []byte) (int, any, error)

// New builds the handler.
func New(svc Provisioner, log *slog.Logger) *Handler {
	h := &Handler{svc: svc, log: log}
	h.routes = map[string]route{
		"POST /users":          h.create,
		"GET /users/me":        h.get,
		"POST /users/me/token": h.token,
		"DELETE /users/me":     h.delete,
	}
	return h
}

// Routes lists the route keys the handler serves.
func (h *Handler) Routes() []string {
	keys := make([]string, 0, len(h.routes))
	for k := range h.routes {
		keys = append(keys, k)
	}
	return keys
}

// errNoRoute answers a request for a route the API does not have.
var errNoRoute = errors.New("no such route")

// CodeNotFound is the HTTP API's own code, for a route it does not have:
// no concern of the domain's.
const CodeNotFound provision.Code = "not_found"

// Codes are every code the API answers: the domain's and its own.
var Codes = append([]provision.Code{CodeNotFound}, provision.Codes...)

// codeOf is the code of err.
func codeOf(err error) provision.Code {
	if errors.Is(err, errNoRoute) {
		return CodeNotFound
	}
	return provision.CodeOf(err)
}

// badRequest is a refusal of the caller's input; its text is ours and is
// shown to the caller.
type badRequest string

func (b badRequest) Error() string { return string(b) }
func (b badRequest) Unwrap() error { return provision.ErrInvalidRequest }

// Handle answers one event.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	start := time.Now()
	key := routeKey(req)
	status, body, err := h.serve(ctx, key, req)
	if err != nil {
		status, body = errorAnswer(err)
	}
	resp := jsonResponse(status, body)
	if status == http.StatusServiceUnavailable {
		resp.Headers["Retry-After"] = retryAfter
	}
	attrs := []any{"route", key, "status", resp.StatusCode, "duration_ms", time.Since(start).Milliseconds()}
	level := slog.LevelInfo
	if err != nil {
		attrs = append(attrs, "code", codeOf(err), "err", err.Error())
		if resp.StatusCode >= 500 {
			level = slog.LevelError
		}
	}
	h.log.Log(ctx, level, "request", attrs...)
	return resp, nil
}

func (h *Handler) serve(ctx context.Context, key string, req events.APIGatewayV2HTTPRequest) (int, any, error) {
	r, ok := h.routes[key]
	if !ok {
		return 0, nil, fmt.Errorf("route %q: %w", key, errNoRoute)
	}
	sub := callerSub(req)
	if sub == "" {
		return 0, nil, provision.ErrUnauthorized
	}
	body, err := readBody(req)
	if err != nil {
		return 0, nil, err
	}
	return r(ctx, sub, body)
}

// routeKey is "METHOD /path". API Gateway sets it for declared routes; a
// $default route or a bare event falls back to the method and path.
func routeKey(req events.APIGatewayV2HTTPRequest) string {
	if req.RouteKey != "" && req.RouteKey != "$default" {
		return req.RouteKey
	}
	path := req.RawPath
	if path == "" {
		path = req.RequestContext.HTTP.Path
	}
	if len(path) > 1 {
		path = strings.TrimRight(path, "/")
	}
	return req.RequestContext.HTTP.Method + " " + path
}

// callerSub is the JWT authorizer's sub claim, and nothing else: never the
// body, the path or the query.
func callerSub(req events.APIGatewayV2HTTPRequest) string {
	a := req.RequestContext.Authorizer
	if a == nil || a.JWT == nil {
		return ""
	}
	return strings.TrimSpace(a.JWT.Claims["sub"])
}

func readBody(req events.APIGatewayV2HTTPRequest) ([]byte, error) {
	tooLarge := badRequest(fmt.Sprintf("body over %d bytes", MaxBodyBytes))
	if len(req.Body) > 2*MaxBodyBytes {
		return nil, tooLarge
	}
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
			return nil, badRequest("body is not valid base64")
		}
	}
	if len(body) > MaxBodyBytes {
		return nil, tooLarge
	}
	return body, nil
}

// DecodeCreate decodes a POST /users body strictly: one JSON object whose
// only key is exactly user_country_code, a string holding a valid country
// code. An empty body is allowed.
func DecodeCreate(body []byte) (provision.EnsureOptions, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return provision.EnsureOptions{}, nil
	}
	raw, err := onlyField(body, "user_country_code")
	if err != nil || raw == nil {
		return provision.EnsureOptions{}, err
	}
	var code string
	if raw[0] != '"' || json.Unmarshal(raw, &code) != nil {
		return provision.EnsureOptions{}, badRequest("user_country_code must be a string")
	}
	if code != "" && !provision.ValidCountryCode(code) {
		return provision.EnsureOptions{}, badRequest(countryMessage)
	}
	return provision.EnsureOptions{CountryCode: code}, nil
}

// onlyField reads body as one JSON object whose only key, if any, is
// exactly name, given once, and returns that key's raw value (nil when it
// is absent). Not a struct or a map: encoding/json matches struct fields
// without regard to case, and with either a repeated key silently wins.
func onlyField(body []byte, name string) (json.RawMessage, error) {
	shape := badRequest("body must be a JSON object with only " + name)
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, shape
	}
	var raw json.RawMessage
	for dec.More() {
		key, err := dec.Token()
		switch {
		case err != nil || key != name:
			return nil, shape
		case raw != nil:
			return nil, badRequest(name + " is given twice")
		}
		if err := dec.Decode(&raw); err != nil {
			return nil, shape
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, shape
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badRequest("data after the JSON object")
	}
	return raw, nil
}

func (h *Handler) create(ctx context.Context, sub string, body []byte) (int, any, error) {
	opts, err := DecodeCreate(body)
	if err != nil {
		return 0, nil, err
	}
	// The user's own request: the one path that provisions a user who
	// deleted their account.
	opts.ByUser = true
	acc, created, err := h.svc.Ensure(ctx, sub, opts)
	if err != nil {
		return 0, nil, err
	}
	if created {
		return http.StatusCreated, acc, nil
	}
	return http.StatusOK, acc, nil
}

func (h *Handler) get(ctx context.Context, sub string, _ []byte) (int, any, error) {
	acc, err := h.svc.Get(ctx, sub)
	return http.StatusOK, acc, err
}

type tokenResponse struct {
	UserAccessToken string `json:"user_access_token"`
}

func (h *Handler) token(ctx context.Context, sub string, _ []byte) (int, any, error) {
	tok, err := h.svc.UserToken(ctx, sub)
	return http.StatusOK, tokenResponse{UserAccessToken: tok}, err
}

func (h *Handler) delete(ctx context.Context, sub string, _ []byte) (int, any, error) {
	had, err := h.svc.Delete(ctx, sub)
	if err == nil && !had {
		err = provision.ErrNotProvisioned
	}
	return http.StatusNoContent, nil, err
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

type answer struct {
	status  int
	message string
}

// misconfigured names our configuration, not Kandy's availability, when
// Kandy refuses the project's credentials as read again.
const misconfigured = "the service's Kandy credentials were refused; an operator must fix its configuration"

const countryMessage = "user_country_code must be an ISO 3166 alpha-2 code or + and 1 to 3 digits"

// answers is the one table from a failure's code to its HTTP status and
// message. Messages are fixed texts: never an internal error's.
var answers = map[provision.Code]answer{
	provision.CodeInvalidRequest:   {http.StatusBadRequest, "the request is invalid"},
	provision.CodeUnauthorized:     {http.StatusUnauthorized, "no caller identity"},
	CodeNotFound:                   {http.StatusNotFound, "no such route"},
	provision.CodeNotProvisioned:   {http.StatusNotFound, "the caller has no Kandy account"},
	provision.CodeAccountClosed:    {http.StatusForbidden, "the caller has left the user pool; the account is closed"},
	provision.CodeInProgress:       {http.StatusConflict, "provisioning is in progress for this user; retry shortly"},
	provision.CodeQuotaExceeded:    {http.StatusForbidden, "Kandy refused: the account's user limit is reached"},
	provision.CodeKandyUnavailable: {http.StatusBadGateway, "Kandy failed or timed out; retry later"},
	provision.CodeUnavailable:      {http.StatusServiceUnavailable, "the service is briefly unavailable; retry shortly"},
	provision.CodeInternal:         {http.StatusInternalServerError, "internal error"},
}

// errorAnswer is err's status and body. A refusal of the caller's input
// says what was wrong with it, in our own words.
func errorAnswer(err error) (int, errorBody) {
	code := codeOf(err)
	a, ok := answers[code]
	if !ok {
		code, a = provision.CodeInternal, answers[provision.CodeInternal]
	}
	var bad badRequest
	switch {
	case errors.As(err, &bad):
		a.message = string(bad)
	case errors.Is(err, provision.ErrKandyCredentialsRefused):
		a.message = misconfigured
	}
	var b errorBody
	b.Error.Code, b.Error.Message = string(code), a.message
	return a.status, b
}

func jsonResponse(status int, body any) events.APIGatewayV2HTTPResponse {
	resp := events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers:    map[string]string{"Cache-Control": "no-store"},
	}
	if body == nil {
		return resp
	}
	raw, err := json.Marshal(body)
	if err != nil {
		resp.StatusCode = http.StatusInternalServerError
		raw = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	resp.Headers["Content-Type"] = "application/json"
	resp.Body = string(raw)
	return resp
}
