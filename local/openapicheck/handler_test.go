package openapicheck_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/local/gateway"
	"github.com/kandy-provisioner/kandy-provisioner/local/openapicheck"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/httpapi"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// domain answers every call with its fields.
type domain struct {
	acc     provision.Account
	created bool
	token   string
	err     error
}

func (d domain) Ensure(context.Context, string, provision.EnsureOptions) (provision.Account, bool, error) {
	return d.acc, d.created, d.err
}
func (d domain) Get(context.Context, string) (provision.Account, error) { return d.acc, d.err }
func (d domain) UserToken(context.Context, string) (string, error)      { return d.token, d.err }
func (d domain) Delete(context.Context, string) (bool, error)           { return d.err == nil, d.err }

// domainErrors are the errors each route's domain call can return (see
// pkg/provision), besides the ones every call can: an invalid sub, a
// claim held by another request, an AWS dependency down and anything
// unforeseen.
var domainErrors = map[string][]error{
	"POST /users": {provision.ErrInvalidCountryCode, provision.ErrQuotaExceeded, provision.ErrKandyUnavailable, provision.ErrKandyUserExists,
		provision.ErrAccountClosed, provision.ErrKandyCredentialsRefused},
	"GET /users/me":        {provision.ErrNotProvisioned},
	"POST /users/me/token": {provision.ErrNotProvisioned, provision.ErrKandyUnavailable, provision.ErrKandyCredentialsRefused, provision.ErrQuotaExceeded},
	"DELETE /users/me":     {provision.ErrNotProvisioned, provision.ErrKandyUnavailable},
}

var everyCallErrors = []error{provision.ErrInvalidSub, provision.ErrInProgress, provision.ErrUnavailable, errors.New("unforeseen")}

// serve runs the real handler on the event the gateway builds for a
// request, and returns the exchange.
func serve(t *testing.T, d domain, route, body string, sub string) openapicheck.Exchange {
	t.Helper()
	method, path, _ := strings.Cut(route, " ")
	req, _ := http.NewRequest(method, "http://127.0.0.1:3000"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer a.b.c")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	claims := map[string]any{}
	if sub != "" {
		claims["sub"] = sub
	}
	resp, err := httpapi.New(d, slog.New(slog.DiscardHandler)).Handle(context.Background(), gateway.Event(req, route, claims, []byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for k, v := range resp.Headers {
		h.Set(k, v)
	}
	return openapicheck.Exchange{Request: req, RequestBody: []byte(body), Status: resp.StatusCode, Header: h, Body: []byte(resp.Body)}
}

// TestTheHandlersAnswersAreDescribed runs the real handler on every route
// with every outcome of its domain call, and checks each answer against
// the description: the account view, the token answer, every error.
func TestTheHandlersAnswersAreDescribed(t *testing.T) {
	const sub = "0f8fad5b-d9cb-469f-a165-70867728950e"
	acc := provision.Account{UserID: "u0f8fad5bd9cb469fa16570867728950e", FullUserID: "u0f8fad5bd9cb469fa16570867728950e@sim.kandy.local",
		DomainName: "sim.kandy.local", CreatedAt: time.Now().UTC()}
	ok := domain{acc: acc, token: "UAT1"}
	type outcome struct {
		name       string
		d          domain
		route      string
		body, sub  string
		wantStatus int
	}
	outcomes := []outcome{
		{"created", domain{acc: acc, created: true}, "POST /users", `{"user_country_code":"GB"}`, sub, 201},
		{"already there", ok, "POST /users", "", sub, 200},
		{"the account", ok, "GET /users/me", "", sub, 200},
		{"a login token", ok, "POST /users/me/token", "", sub, 200},
		{"deleted", ok, "DELETE /users/me", "", sub, 204},
		{"an unknown field", ok, "POST /users", `{"country":"GB"}`, sub, 400},
		{"a key given twice", ok, "POST /users", `{"user_country_code":"GB","user_country_code":"US"}`, sub, 400},
	}
	for route, errs := range domainErrors {
		outcomes = append(outcomes,
			outcome{"a body over 4 KiB", ok, route, strings.Repeat(" ", httpapi.MaxBodyBytes+1), sub, 400},
			outcome{"no caller identity", ok, route, "", "", 401})
		for _, err := range append(errs, everyCallErrors...) {
			outcomes = append(outcomes, outcome{err.Error(), domain{err: err}, route, "", sub, 0})
		}
	}
	c := checker(t)
	for _, o := range outcomes {
		x := serve(t, o.d, o.route, o.body, o.sub)
		if o.wantStatus != 0 && x.Status != o.wantStatus {
			t.Errorf("%s, %s: answered %d, want %d", o.route, o.name, x.Status, o.wantStatus)
		}
		if err := c.Check(context.Background(), x); err != nil {
			t.Errorf("%s: %v", o.name, err)
		}
	}
	t.Logf("%d answers of the handler checked", len(outcomes))
}
