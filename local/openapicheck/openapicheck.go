// Package openapicheck checks one HTTP request and the answer it got
// against the API's OpenAPI description, api/openapi.yaml: the answer's
// status must be one the operation lists, with that answer's headers and
// body; and a request the description refuses must be refused. The local
// gateway runs it on every exchange under make run.
package openapicheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/kandy-provisioner/kandy-provisioner/api"
)

// Checker checks exchanges against one description, parsed once.
type Checker struct {
	router  routers.Router
	options *openapi3filter.Options
}

// Exchange is one request and the answer it got.
type Exchange struct {
	// Request gives the method, path and headers; its Body is not read.
	Request     *http.Request
	RequestBody []byte
	Status      int
	Header      http.Header
	Body        []byte
}

// Violation is an exchange the description does not allow. Route is the
// operation, "METHOD /path", or the request's method and path when the
// description has no operation for it.
type Violation struct {
	Route  string
	Status int
	Reason string
}

func (v *Violation) Error() string {
	return fmt.Sprintf("%s answered %d: %s", v.Route, v.Status, v.Reason)
}

// Load returns the checker of api/openapi.yaml, parsed on the first call.
var Load = sync.OnceValues(func() (*Checker, error) { return New(api.OpenAPI) })

// New parses and validates a description.
func New(spec []byte) (*Checker, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("reading the OpenAPI description: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("the OpenAPI description is invalid: %w", err)
	}
	// Requests are matched by method and path alone: one description
	// serves the deployed API and the local one, whatever their host.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("routing the OpenAPI description: %w", err)
	}
	return &Checker{router: router, options: &openapi3filter.Options{
		IncludeResponseStatus: true,
		MultiError:            true,
		AuthenticationFunc:    tokenSent,
		// A reason names the field that differs, never its value: an
		// answer may hold a Kandy login token.
		SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.DisableSchemaErrorDetails()},
	}}, nil
}

// tokenSent is as much of the security requirement as a request shows:
// it sends a token where the authorizer reads it. Whether the token is
// good is the authorizer's call, and its refusals are listed answers.
func tokenSent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if strings.TrimSpace(strings.TrimPrefix(h, "Bearer ")) == "" {
		return in.NewError(errors.New("no bearer token in Authorization"))
	}
	return nil
}

// Check returns a *Violation when the description does not allow x.
func (c *Checker) Check(ctx context.Context, x Exchange) error {
	req := x.Request.Clone(ctx)
	req.Body = io.NopCloser(bytes.NewReader(x.RequestBody))
	req.ContentLength = int64(len(x.RequestBody))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(x.RequestBody)), nil }
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		return &Violation{Route: req.Method + " " + req.URL.Path, Status: x.Status, Reason: "the description has no such operation"}
	}
	v := &Violation{Route: req.Method + " " + route.Path, Status: x.Status}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: c.options}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && x.Status < 400 {
		v.Reason = fmt.Sprintf("the description refuses the request (%s), yet it was not refused", oneLine(err))
		return v
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: x.Status, Header: x.Header, Options: c.options}
	if err := openapi3filter.ValidateResponse(ctx, out.SetBodyBytes(x.Body)); err != nil {
		v.Reason = oneLine(err)
		return v
	}
	// ValidateResponse passes any body where the description lists none.
	if r := route.Operation.Responses.Status(x.Status); r != nil && len(r.Value.Content) == 0 && len(x.Body) > 0 {
		v.Reason = "the answer has a body, and the description lists none for this status"
		return v
	}
	return nil
}

// oneLine is err's message on one line, for a log line or a header.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
