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

// Provisioner is what the API needs of the domain.
type Provisioner interface {
	Ensure(ctx context.Context, sub string, o provision.EnsureOptions) (provision.Account, bool, error)
	Get(ctx context.Context, sub string) (provision.Account, error)
	UserToken(ctx context.Context, sub string) (string, error)
	Delete(ctx context.Context, sub string) error
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

// Request errors, answered with 400 or 401.
var (
	errInvalidRequest = errors.New("invalid request")
	errUnauthorized   = errors.New("unauthorized")
	errUnknownRoute   = errors.New("unknown route")
)

// Handle answers one event.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	start := time.Now()
	key := routeKey(req)
	status, body, err := h.serve(ctx, key, req)
	var resp events.APIGatewayV2HTTPResponse
	if err != nil {
		resp = h.errorResponse(ctx, key, err)
	} else {
		resp = jsonResponse(status, body)
	}
	h.log.InfoContext(ctx, "request", "route", key, "status", resp.StatusCode, "duration_ms", time.Since(start).Milliseconds())
	return resp, nil
}

func (h *Handler) serve(ctx context.Context, key string, req events.APIGatewayV2HTTPRequest) (int, any, error) {
	r, ok := h.routes[key]
	if !ok {
		return 0, nil, errUnknownRoute
	}
	sub := callerSub(req)
	if sub == "" {
		return 0, nil, errUnauthorized
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
	if len(req.Body) > 2*MaxBodyBytes {
		return nil, fmt.Errorf("%w: body over %d bytes", errInvalidRequest, MaxBodyBytes)
	}
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
			return nil, fmt.Errorf("%w: body is not valid base64", errInvalidRequest)
		}
	}
	if len(body) > MaxBodyBytes {
		return nil, fmt.Errorf("%w: body over %d bytes", errInvalidRequest, MaxBodyBytes)
	}
	return body, nil
}

type createRequest struct {
	CountryCode string `json:"user_country_code"`
}

// DecodeCreate decodes a POST /users body strictly: one JSON object, no
// unknown fields, a valid country code if any. An empty body is allowed.
func DecodeCreate(body []byte) (provision.EnsureOptions, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return provision.EnsureOptions{}, nil
	}
	var in createRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return provision.EnsureOptions{}, fmt.Errorf("%w: body must be a JSON object with only user_country_code", errInvalidRequest)
	}
	if _, err := dec.Token(); err != io.EOF {
		return provision.EnsureOptions{}, fmt.Errorf("%w: data after the JSON object", errInvalidRequest)
	}
	if in.CountryCode != "" && !provision.ValidCountryCode(in.CountryCode) {
		return provision.EnsureOptions{}, provision.ErrInvalidCountryCode
	}
	return provision.EnsureOptions{CountryCode: in.CountryCode}, nil
}

func (h *Handler) create(ctx context.Context, sub string, body []byte) (int, any, error) {
	opts, err := DecodeCreate(body)
	if err != nil {
		return 0, nil, err
	}
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
	return http.StatusNoContent, nil, h.svc.Delete(ctx, sub)
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// errorResponse maps an error to its status and code. Messages are fixed
// texts or our own validation messages, never an internal error's text.
func (h *Handler) errorResponse(ctx context.Context, key string, err error) events.APIGatewayV2HTTPResponse {
	status, code, msg := http.StatusInternalServerError, "internal", "internal error"
	switch {
	case errors.Is(err, errUnknownRoute):
		status, code, msg = http.StatusNotFound, "not_found", "no such route"
	case errors.Is(err, errUnauthorized), errors.Is(err, provision.ErrInvalidSub):
		status, code, msg = http.StatusUnauthorized, "unauthorized", "no caller identity"
	case errors.Is(err, errInvalidRequest):
		status, code, msg = http.StatusBadRequest, "invalid_request", err.Error()
	case errors.Is(err, provision.ErrInvalidCountryCode):
		status, code, msg = http.StatusBadRequest, "invalid_request", "user_country_code must be an ISO 3166 alpha-2 code or + and 1 to 3 digits"
	case errors.Is(err, provision.ErrNotProvisioned):
		status, code, msg = http.StatusNotFound, "not_provisioned", "the caller has no Kandy account"
	case errors.Is(err, provision.ErrInProgress):
		status, code, msg = http.StatusConflict, "provisioning_in_progress", "provisioning is in progress for this user; retry shortly"
	case errors.Is(err, provision.ErrQuotaExceeded):
		status, code, msg = http.StatusForbidden, "kandy_quota_exceeded", "Kandy refused: the account's user limit is reached"
	case errors.Is(err, provision.ErrKandyUnavailable), errors.Is(err, context.DeadlineExceeded):
		status, code, msg = http.StatusBadGateway, "kandy_unavailable", "Kandy failed or timed out; retry later"
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	h.log.Log(ctx, level, "request failed", "route", key, "status", status, "code", code, "err", err.Error())
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	return jsonResponse(status, b)
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
