// Package kandy is a client for the part of the Kandy REST API v1.2 that
// user provisioning needs.
package kandy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// maxBody bounds what is read from Kandy; its answers are small.
const maxBody = 1 << 20

// KeySource gives the project's key and secret, typically from Secrets Manager.
type KeySource interface {
	ProjectKey(ctx context.Context) (ProjectKey, error)
}

// KeyRefresher is a KeySource that caches: when Kandy refuses the key it
// gave, the client asks it to read the key again, past its cache, and
// retries once, as AWS's own secrets caching clients refresh on failure.
type KeyRefresher interface {
	KeySource
	// RefreshProjectKey reads the key again unless it already differs
	// from stale, the one Kandy refused.
	RefreshProjectKey(ctx context.Context, stale ProjectKey) (ProjectKey, error)
}

// Options configures a Client.
type Options struct {
	BaseURL    string       // required: config.DefaultKandyAPIURL is Kandy's own
	HTTPClient *http.Client // default NewHTTPClient()
	Keys       KeySource
	// CallTimeout bounds each HTTP attempt, inside the caller's context.
	CallTimeout time.Duration // default 5s
	// Backoff is the wait before each retry of an idempotent call.
	Backoff []time.Duration // default 50ms, 200ms
	// Observer, if set, is told of every HTTP call.
	Observer Observer
}

// Observer is told of every HTTP call to Kandy, for metrics. op is the
// call's name in snake case; errKind is KindName of its error, or empty.
type Observer interface {
	KandyCall(ctx context.Context, op string, elapsed time.Duration, errKind string)
}

// Client talks to Kandy. It is safe for concurrent use and meant to live as
// long as the process: it caches the domain access token. It is the Kandy
// port of pkg/provision; its errors match the domain's errors too.
type Client struct {
	base    *url.URL
	http    *http.Client
	keys    KeySource
	timeout time.Duration
	backoff []time.Duration
	observe Observer

	mu      sync.Mutex
	token   string
	fetches singleflight.Group
}

// NewHTTPClient returns an http.Client with time-outs fit for Lambda.
func NewHTTPClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   3 * time.Second,
			ResponseHeaderTimeout: 8 * time.Second,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       60 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// New builds a Client.
func New(o Options) (*Client, error) {
	if o.Keys == nil {
		return nil, errors.New("kandy: no key source")
	}
	base, err := url.Parse(strings.TrimRight(o.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("kandy: base URL %q is not an absolute http(s) URL", o.BaseURL)
	}
	c := &Client{base: base, http: o.HTTPClient, keys: o.Keys, timeout: o.CallTimeout, backoff: o.Backoff, observe: o.Observer}
	if c.http == nil {
		c.http = NewHTTPClient()
	}
	if c.timeout <= 0 {
		c.timeout = 5 * time.Second
	}
	if c.backoff == nil {
		c.backoff = []time.Duration{50 * time.Millisecond, 200 * time.Millisecond}
	}
	return c, nil
}

var _ provision.Kandy = (*Client)(nil)

// CreateUser creates a user with a chosen id. It is never retried after an
// ambiguous failure: the caller decides, since Kandy may have created it.
func (c *Client) CreateUser(ctx context.Context, userID, countryCode string) (provision.Credentials, error) {
	body, err := json.Marshal(createUserInput{UserID: userID, CountryCode: countryCode})
	if err != nil {
		return provision.Credentials{}, fmt.Errorf("kandy: encode create user: %w", err)
	}
	var u createdUser
	err = c.withDomainToken(ctx, func(token string) error {
		return c.call(ctx, "create user", http.MethodPost, "/domains/users/user_id", url.Values{"key": {token}}, body, &u)
	})
	if err != nil {
		return provision.Credentials{}, err
	}
	if u.UserID == "" || u.Password == "" || u.UserAPIKey == "" || u.UserAPISecret == "" {
		return provision.Credentials{}, &Error{Op: "create user", Status: 0, Message: "answer lacks credentials", Kind: ErrUnavailable}
	}
	return provision.Credentials{
		FullUserID: u.FullUserID, DomainName: u.DomainName, UserAPIKey: u.UserAPIKey,
		UserAPISecret: u.UserAPISecret, UserPassword: u.Password,
	}, nil
}

// ListUsers lists the domain's users.
func (c *Client) ListUsers(ctx context.Context) ([]ListedUser, error) {
	var res struct {
		Users []ListedUser `json:"users"`
	}
	err := c.withDomainToken(ctx, func(token string) error {
		return c.retry(ctx, func() error {
			return c.call(ctx, "list users", http.MethodGet, "/domains/users", url.Values{"key": {token}}, nil, &res)
		})
	})
	return res.Users, err
}

// DeleteUser deletes a user. Deleting is idempotent in effect, so it is
// retried; a user that is already gone yields ErrNoSuchUser.
func (c *Client) DeleteUser(ctx context.Context, userID string) error {
	return c.withDomainToken(ctx, func(token string) error {
		return c.retry(ctx, func() error {
			return c.call(ctx, "delete user", http.MethodDelete, "/domains/users", url.Values{"key": {token}, "user_id": {userID}}, nil, nil)
		})
	})
}

// UserAccessToken returns a token the frontend passes to loginSSO. Kandy
// authenticates this call with the project key itself, not the domain token.
func (c *Client) UserAccessToken(ctx context.Context, userID string) (string, error) {
	return c.withProjectKey(ctx, func(key ProjectKey) (string, error) {
		q := url.Values{"key": {key.APIKey}, "domain_api_secret": {key.APISecret}, "user_id": {userID}}
		return c.accessToken(ctx, "user access token", "/domains/users/accesstokens", q, "user_access_token")
	})
}

// Ping asks Kandy for a fresh domain access token: it proves that the base
// URL answers and that Kandy accepts the project's key and secret.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.fetchDomainToken(ctx)
	return err
}

// withDomainToken runs fn with the cached domain token. If Kandy says the
// token expired, it fetches a new one once and runs fn once more.
func (c *Client) withDomainToken(ctx context.Context, fn func(token string) error) error {
	token, err := c.domainToken(ctx, "")
	if err != nil {
		return err
	}
	err = fn(token)
	if !errors.Is(err, ErrTokenExpired) {
		return err
	}
	if token, err = c.domainToken(ctx, token); err != nil {
		return err
	}
	return fn(token)
}

// domainToken returns the cached token, fetching it when there is none or
// when the cached one is the stale one the caller saw expire. Concurrent
// callers share a single fetch, made with the first one's context.
func (c *Client) domainToken(ctx context.Context, stale string) (string, error) {
	c.mu.Lock()
	t := c.token
	c.mu.Unlock()
	if t != "" && t != stale {
		return t, nil
	}
	fetched := c.fetches.DoChan("domain token", func() (any, error) {
		c.mu.Lock()
		t := c.token
		c.mu.Unlock()
		if t != "" && t != stale {
			return t, nil // fetched by a flight that ended as this one began
		}
		t, err := c.fetchDomainToken(ctx)
		c.mu.Lock()
		c.token = t
		c.mu.Unlock()
		return t, err
	})
	select {
	case r := <-fetched:
		t, _ := r.Val.(string)
		return t, r.Err
	case <-ctx.Done():
		return "", &Error{Op: "domain access token", Status: -1, Message: "waiting for token", Kind: ErrUnavailable, Cause: ctx.Err()}
	}
}

func (c *Client) fetchDomainToken(ctx context.Context) (string, error) {
	return c.withProjectKey(ctx, func(key ProjectKey) (string, error) {
		q := url.Values{"key": {key.APIKey}, "domain_api_secret": {key.APISecret}}
		return c.accessToken(ctx, "domain access token", "/domains/accesstokens", q, "domain_access_token")
	})
}

// withProjectKey runs fn with the project's key. If Kandy refuses it and
// the source caches, the key is read again and fn runs once more with it:
// the secret was rotated since it was cached. A refusal of the fresh key
// stands.
func (c *Client) withProjectKey(ctx context.Context, fn func(ProjectKey) (string, error)) (string, error) {
	key, err := c.keys.ProjectKey(ctx)
	if err != nil {
		return "", err
	}
	out, err := fn(key)
	r, caches := c.keys.(KeyRefresher)
	if !caches || !(errors.Is(err, ErrInvalidCredentials) || errors.Is(err, ErrProjectKeyRefused)) {
		return out, err
	}
	fresh, rerr := r.RefreshProjectKey(ctx, key)
	switch {
	case rerr != nil:
		return "", rerr
	case fresh == key:
		return "", err
	}
	return fn(fresh)
}

// accessToken asks Kandy for a token, which its answer carries in field;
// an answer without one is Kandy's failure.
func (c *Client) accessToken(ctx context.Context, op, path string, q url.Values, field string) (string, error) {
	var res map[string]json.RawMessage
	err := c.retry(ctx, func() error { return c.call(ctx, op, http.MethodGet, path, q, nil, &res) })
	if err != nil {
		return "", err
	}
	var token string
	if json.Unmarshal(res[field], &token) != nil || token == "" {
		return "", &Error{Op: op, Message: "answer lacks the token", Kind: ErrUnavailable}
	}
	return token, nil
}

// retry runs an idempotent call again after transient failures.
func (c *Client) retry(ctx context.Context, fn func() error) error {
	err := fn()
	for _, wait := range c.backoff {
		if !errors.Is(err, ErrUnavailable) || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		err = fn()
	}
	return err
}

type envelope struct {
	Status  *int            `json:"status"`
	Message string          `json:"message"`
	Result  json.RawMessage `json:"result"`
}

// call makes one HTTP attempt and decodes Kandy's envelope into out.
func (c *Client) call(ctx context.Context, op, method, path string, q url.Values, body []byte, out any) error {
	if c.observe == nil {
		return c.attempt(ctx, op, method, path, q, body, out)
	}
	start := time.Now()
	err := c.attempt(ctx, op, method, path, q, body, out)
	c.observe.KandyCall(ctx, strings.ReplaceAll(op, " ", "_"), time.Since(start), KindName(err))
	return err
}

func (c *Client) attempt(ctx context.Context, op, method, path string, q url.Values, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	u := *c.base
	u.Path += path
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return &Error{Op: op, Status: -1, Message: "building request", Kind: ErrUnavailable}
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// *url.Error quotes the URL, and with it the key: keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &Error{Op: op, Status: -1, Message: transportMessage(err), Kind: ErrUnavailable, Cause: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return &Error{Op: op, Status: -1, HTTPStatus: resp.StatusCode, Message: "reading answer: " + transportMessage(err), Kind: ErrUnavailable, Cause: err}
	}
	return decode(op, resp.StatusCode, raw, out)
}

const msgTimedOut = "timed out"

func transportMessage(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return msgTimedOut
	case errors.Is(err, context.Canceled):
		return "canceled"
	default:
		return "transport failure"
	}
}

// decode turns an HTTP answer into out or a typed *Error. It is the one place
// that knows Kandy's envelope.
func decode(op string, httpStatus int, raw []byte, out any) error {
	switch {
	case httpStatus == http.StatusUnauthorized || httpStatus == http.StatusForbidden:
		return &Error{Op: op, Status: -1, HTTPStatus: httpStatus, Message: "refused by Kandy", Kind: ErrProjectKeyRefused}
	case httpStatus == http.StatusUpgradeRequired:
		return &Error{Op: op, Status: -1, HTTPStatus: httpStatus, Message: "API upgrade required", Kind: ErrRejected}
	case httpStatus >= 500:
		return &Error{Op: op, Status: -1, HTTPStatus: httpStatus, Message: "server error", Kind: ErrUnavailable}
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil || env.Status == nil {
		return &Error{Op: op, Status: -1, HTTPStatus: httpStatus, Message: "malformed answer", Kind: ErrUnavailable}
	}
	if *env.Status != 0 {
		return &Error{Op: op, Status: *env.Status, HTTPStatus: httpStatus, Message: sanitize(env.Message), Kind: kindOf(*env.Status, env.Message)}
	}
	if httpStatus != http.StatusOK {
		return &Error{Op: op, Status: 0, HTTPStatus: httpStatus, Message: "unexpected HTTP status", Kind: ErrUnavailable}
	}
	if out == nil {
		return nil
	}
	if len(env.Result) == 0 || string(env.Result) == "null" {
		return &Error{Op: op, Status: 0, HTTPStatus: httpStatus, Message: "answer lacks a result", Kind: ErrUnavailable}
	}
	if err := json.Unmarshal(env.Result, out); err != nil {
		return &Error{Op: op, Status: 0, HTTPStatus: httpStatus, Message: "malformed result", Kind: ErrUnavailable}
	}
	return nil
}

// keyLike matches Kandy keys, secrets and tokens by their prefixes,
// wherever they start: a key glued to the text before it is still a key.
var keyLike = regexp.MustCompile(`(DA[KST]|UA[KST])[0-9A-Za-z]{6,}`)

// sanitize bounds Kandy's message, keeps it printable and masks anything
// shaped like a key, so it is safe in an error or a log line.
func sanitize(s string) string {
	const max = 120
	if len(s) > max {
		s = s[:max]
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	return keyLike.ReplaceAllString(s, redacted)
}
