package kandy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/kandysim"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/kandy"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

type staticKeys kandy.ProjectKey

func (k staticKeys) ProjectKey(context.Context) (kandy.ProjectKey, error) {
	return kandy.ProjectKey(k), nil
}

func newClient(t *testing.T, sim *kandysim.Sim) (*kandy.Client, kandy.ProjectKey) {
	t.Helper()
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	key, secret := sim.ProjectKey()
	pk := kandy.ProjectKey{APIKey: key, APISecret: secret}
	c, err := kandy.New(kandy.Options{
		BaseURL: srv.URL + "/v1.2", Keys: staticKeys(pk),
		HTTPClient: srv.Client(), CallTimeout: 300 * time.Millisecond,
		Backoff: []time.Duration{time.Millisecond, time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, pk
}

func TestCreateListDeleteAndUserToken(t *testing.T) {
	sim := kandysim.New(kandysim.Options{})
	c, _ := newClient(t, sim)
	ctx := context.Background()

	u, err := c.CreateUser(ctx, "bob", "+1")
	if err != nil {
		t.Fatal(err)
	}
	if u.FullUserID != "bob@sim.kandy.local" {
		t.Errorf("full user id %q, want %q", u.FullUserID, "bob@sim.kandy.local")
	}
	if !strings.HasPrefix(u.UserAPIKey, "UAK") {
		t.Errorf("user API key %q, want a UAK prefix", u.UserAPIKey)
	}
	if !strings.HasPrefix(u.UserAPISecret, "UAS") {
		t.Errorf("user API secret %q, want a UAS prefix", u.UserAPISecret)
	}
	if u.UserPassword == "" {
		t.Error("no user password")
	}
	if u.DomainName != "sim.kandy.local" {
		t.Errorf("domain %q, want %q", u.DomainName, "sim.kandy.local")
	}
	users, err := c.ListUsers(ctx)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(users) != 1 {
		t.Fatalf("list = %v, want one user", users)
	}
	if users[0].UserID != "bob" {
		t.Errorf("listed user %q, want %q", users[0].UserID, "bob")
	}
	tok, err := c.UserAccessToken(ctx, "bob")
	if err != nil {
		t.Fatalf("user token: %v", err)
	}
	if !strings.HasPrefix(tok, "UAT") {
		t.Errorf("user token = %q, want a UAT prefix", tok)
	}
	if err := c.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	err = c.DeleteUser(ctx, "bob")
	for _, want := range []error{kandy.ErrNoSuchUser, provision.ErrKandyNoSuchUser} {
		if !errors.Is(err, want) {
			t.Errorf("second delete = %v, want %v", err, want)
		}
	}
	if errors.Is(err, provision.ErrKandyUnavailable) {
		t.Errorf("second delete = %v, is %v; want no such user only", err, provision.ErrKandyUnavailable)
	}
	if _, err := c.UserAccessToken(ctx, "bob"); !errors.Is(err, kandy.ErrNoSuchUser) {
		t.Fatalf("token for deleted user = %v", err)
	}
	if n := sim.Calls(kandysim.EndpointDomainToken); n != 1 {
		t.Fatalf("domain token fetched %d times, want 1 (cached)", n)
	}
}

func TestCreateErrors(t *testing.T) {
	sim := kandysim.New(kandysim.Options{Quota: 1})
	c, _ := newClient(t, sim)
	ctx := context.Background()
	if _, err := c.CreateUser(ctx, "a", "US"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, id, country string
		want, domain      error
	}{
		{"already exists", "a", "US", kandy.ErrAlreadyExists, provision.ErrKandyUserExists},
		{"quota", "b", "US", kandy.ErrQuotaExceeded, provision.ErrQuotaExceeded},
		{"country", "c", "USA", kandy.ErrInvalidCountryCode, provision.ErrInvalidCountryCode},
		{"missing id", "", "US", kandy.ErrRejected, provision.ErrKandyUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.CreateUser(ctx, tt.id, tt.country)
			for _, want := range []error{tt.want, tt.domain} {
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want %v", err, want)
				}
			}
		})
	}
}

func TestInvalidProjectCredentials(t *testing.T) {
	sim := kandysim.New(kandysim.Options{})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c, err := kandy.New(kandy.Options{BaseURL: srv.URL, Keys: staticKeys{APIKey: "DAKwrong000000", APISecret: "DASwrong000000"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateUser(context.Background(), "a", "US")
	if err == nil {
		t.Fatal("wrong keys accepted")
	}
	for _, want := range []error{kandy.ErrInvalidCredentials, provision.ErrKandyCredentialsRefused} {
		if !errors.Is(err, want) {
			t.Errorf("err = %v, want %v", err, want)
		}
	}
	if errors.Is(err, provision.ErrKandyUnavailable) {
		t.Errorf("err = %v names Kandy's availability, not our configuration", err)
	}
	for _, secret := range []string{"DAKwrong", "DASwrong"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks %s: %v", secret, err)
		}
	}
}

// rotatingKeys is a caching key source whose cache holds a stale key
// until refreshed; fresh is what a refresh reads.
type rotatingKeys struct {
	mu        sync.Mutex
	cached    kandy.ProjectKey
	fresh     kandy.ProjectKey
	refreshes int
}

func (k *rotatingKeys) ProjectKey(context.Context) (kandy.ProjectKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cached, nil
}

func (k *rotatingKeys) RefreshProjectKey(_ context.Context, stale kandy.ProjectKey) (kandy.ProjectKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.refreshes++
	if k.cached == stale {
		k.cached = k.fresh
	}
	return k.cached, nil
}

// After a rotation, the first call that meets Kandy's refusal of the cached
// key reads the key again and succeeds: for the domain token and for a
// user's token alike. A fresh key that is refused too stands, once.
func TestARotatedSecretIsReadAgain(t *testing.T) {
	sim := kandysim.New(kandysim.Options{})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	key, secret := sim.ProjectKey()
	right, wrong := kandy.ProjectKey{APIKey: key, APISecret: secret}, kandy.ProjectKey{APIKey: key, APISecret: "DASrotated000"}
	for _, tt := range []struct {
		name      string
		fresh     kandy.ProjectKey
		refreshes int
		ok        bool
	}{{"rotated", right, 2, true}, {"still wrong", wrong, 1, false}} {
		keys := &rotatingKeys{cached: wrong, fresh: tt.fresh}
		c, err := kandy.New(kandy.Options{BaseURL: srv.URL, Keys: keys, Backoff: []time.Duration{}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.CreateUser(context.Background(), "rot-"+tt.name[:5], "US")
		if (err == nil) != tt.ok {
			t.Fatalf("%s: create = %v, want success %v", tt.name, err, tt.ok)
		}
		if !tt.ok {
			if !errors.Is(err, provision.ErrKandyCredentialsRefused) {
				t.Errorf("%s: err = %v, want the credentials refused", tt.name, err)
			}
			if keys.refreshes != tt.refreshes {
				t.Errorf("%s: %d refreshes, want %d", tt.name, keys.refreshes, tt.refreshes)
			}
			continue
		}
		keys.cached = wrong // rotated again, for the user token's own check
		if _, err := c.UserAccessToken(context.Background(), "rot-"+tt.name[:5]); err != nil {
			t.Errorf("%s: user token = %v, want success after a refresh", tt.name, err)
		}
		if keys.refreshes != tt.refreshes {
			t.Errorf("%s: %d refreshes, want %d", tt.name, keys.refreshes, tt.refreshes)
		}
	}
}

func TestTokenExpiryRefetchesOnceAndRetries(t *testing.T) {
	sim := kandysim.New(kandysim.Options{})
	c, _ := newClient(t, sim)
	ctx := context.Background()
	if _, err := c.ListUsers(ctx); err != nil {
		t.Fatal(err)
	}
	sim.ExpireTokens()
	if _, err := c.CreateUser(ctx, "a", "US"); err != nil {
		t.Fatalf("create after expiry: %v", err)
	}
	if got := sim.Calls(kandysim.EndpointDomainToken); got != 2 {
		t.Fatalf("token fetches = %d, want 2", got)
	}
	if got := sim.Calls(kandysim.EndpointCreateUser); got != 2 {
		t.Fatalf("creates = %d, want 2 (one refused, one retried)", got)
	}
}

func TestConcurrentCallersShareOneTokenFetch(t *testing.T) {
	sim := kandysim.New(kandysim.Options{})
	sim.SetLatency(20 * time.Millisecond)
	c, _ := newClient(t, sim)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.ListUsers(context.Background())
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := sim.Calls(kandysim.EndpointDomainToken); got != 1 {
		t.Fatalf("token fetches = %d, want 1", got)
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name      string
		endpoint  string
		fault     kandysim.Fault
		times     int
		call      func(*kandy.Client) error
		want      error // nil: the call must succeed after retries
		wantCalls int   // calls to endpoint
	}{
		{"list retried after 500", kandysim.EndpointListUsers, kandysim.FaultHTTP500, 1, list, nil, 2},
		{"list gives up after retries", kandysim.EndpointListUsers, kandysim.FaultHTTP500, 5, list, kandy.ErrUnavailable, 3},
		{"list malformed then ok", kandysim.EndpointListUsers, kandysim.FaultMalformed, 1, list, nil, 2},
		{"list internal error", kandysim.EndpointListUsers, kandysim.FaultInternal, 3, list, kandy.ErrUnavailable, 3},
		{"list time-out", kandysim.EndpointListUsers, kandysim.FaultTimeout, 3, list, kandy.ErrUnavailable, 3},
		{"create 500 not retried", kandysim.EndpointCreateUser, kandysim.FaultHTTP500, 1, create, kandy.ErrUnavailable, 1},
		{"create time-out not retried", kandysim.EndpointCreateUser, kandysim.FaultTimeout, 1, create, kandy.ErrUnavailable, 1},
		{"create malformed", kandysim.EndpointCreateUser, kandysim.FaultMalformed, 1, create, kandy.ErrUnavailable, 1},
		{"create lost answer", kandysim.EndpointCreateUser, kandysim.FaultLostAnswer, 1, create, kandy.ErrUnavailable, 1},
		{"token 500 retried", kandysim.EndpointDomainToken, kandysim.FaultHTTP500, 2, create, nil, 3},
		{"user token retried", kandysim.EndpointUserToken, kandysim.FaultHTTP500, 1, userToken, kandy.ErrNoSuchUser, 2},
		{"delete retried", kandysim.EndpointDeleteUser, kandysim.FaultTimeout, 1, deleteUser, kandy.ErrNoSuchUser, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := kandysim.New(kandysim.Options{})
			c, pk := newClient(t, sim)
			sim.Inject(tt.endpoint, tt.fault, tt.times)
			err := tt.call(c)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if got := sim.Calls(tt.endpoint); got != tt.wantCalls {
				t.Fatalf("calls to %s = %d, want %d", tt.endpoint, got, tt.wantCalls)
			}
			if err != nil {
				assertNoSecrets(t, err.Error(), pk.APIKey, pk.APISecret, "DAT", "key=")
			}
		})
	}
}

func list(c *kandy.Client) error { _, err := c.ListUsers(context.Background()); return err }
func create(c *kandy.Client) error {
	_, err := c.CreateUser(context.Background(), "x", "US")
	return err
}
func userToken(c *kandy.Client) error {
	_, err := c.UserAccessToken(context.Background(), "nobody")
	return err
}
func deleteUser(c *kandy.Client) error { return c.DeleteUser(context.Background(), "nobody") }

// TestEnvelopeStatuses drives every documented status and HTTP failure
// through a server that answers exactly that.
func TestEnvelopeStatuses(t *testing.T) {
	tests := []struct {
		httpStatus int
		body       string
		want       error
	}{
		{200, `{"status":1,"message":"failed to register user on compass"}`, kandy.ErrQuotaExceeded},
		{200, `{"status":1,"message":"internal error"}`, kandy.ErrUnavailable},
		{200, `{"status":10,"message":"token expired"}`, kandy.ErrTokenExpired},
		{200, `{"status":11,"message":"permission denied"}`, kandy.ErrProjectKeyRefused},
		{200, `{"status":12,"message":"usage quota exceeded"}`, kandy.ErrQuotaExceeded},
		{200, `{"status":14,"message":"validation failed"}`, kandy.ErrRejected},
		{200, `{"status":15,"message":"missing parameter"}`, kandy.ErrRejected},
		{200, `{"status":16,"message":"invalid parameter"}`, kandy.ErrRejected},
		{200, `{"status":17,"message":"bad parameter"}`, kandy.ErrRejected},
		{200, `{"status":19,"message":"no data"}`, kandy.ErrRejected},
		{200, `{"status":50,"message":"already exists"}`, kandy.ErrAlreadyExists},
		{200, `{"status":51,"message":"invalid identifier"}`, kandy.ErrRejected},
		{200, `{"status":52,"message":"invalid password"}`, kandy.ErrRejected},
		{200, `{"status":53,"message":"does not exist"}`, kandy.ErrNoSuchUser},
		{200, `{"status":54,"message":"invalid country code"}`, kandy.ErrInvalidCountryCode},
		{200, `{"status":55,"message":"invalid credentials DAS0123456789abcdef"}`, kandy.ErrInvalidCredentials},
		{401, ``, kandy.ErrProjectKeyRefused},
		{403, `{"status":0}`, kandy.ErrProjectKeyRefused},
		{426, ``, kandy.ErrRejected},
		{500, ``, kandy.ErrUnavailable},
		{503, `{"status":0,"result":{}}`, kandy.ErrUnavailable},
		{200, `not json`, kandy.ErrUnavailable},
		{200, `{"message":"no status"}`, kandy.ErrUnavailable},
		{200, `{"status":0,"message":"success"}`, kandy.ErrUnavailable},      // no result
		{200, `{"status":0,"result":{"user_id":1}}`, kandy.ErrUnavailable},   // wrong types
		{200, `{"status":0,"result":{"user_id":"a"}}`, kandy.ErrUnavailable}, // no credentials
		{302, `{"status":0,"result":{"user_id":"a"}}`, kandy.ErrUnavailable}, // redirect not followed
		{200, `{"status":"0","result":{}}`, kandy.ErrUnavailable},            // status not a number
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d %s", tt.httpStatus, tt.body), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/domains/accesstokens" {
					fmt.Fprint(w, `{"status":0,"result":{"domain_access_token":"DATabcdef0123456789"}}`)
					return
				}
				w.WriteHeader(tt.httpStatus)
				fmt.Fprint(w, tt.body)
			}))
			defer srv.Close()
			c, err := kandy.New(kandy.Options{BaseURL: srv.URL, Keys: staticKeys{APIKey: "DAKk", APISecret: "DASs"}, Backoff: []time.Duration{}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.CreateUser(context.Background(), "a", "US")
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			assertNoSecrets(t, err.Error(), "DATabcdef", "DAS0123456789abcdef")
		})
	}
}

func TestNewRejectsBadBaseURL(t *testing.T) {
	for _, u := range []string{"api.kandy.io", "ftp://x", "http://", "://"} {
		if _, err := kandy.New(kandy.Options{BaseURL: u, Keys: staticKeys{}}); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
}

func TestSecretBearingTypesRedact(t *testing.T) {
	pk := kandy.ProjectKey{APIKey: "DAKsecretkey", APISecret: "DASsecretsecret"}
	u := provision.Credentials{FullUserID: "bob@d", UserPassword: "pw12345678", UserAPIKey: "UAKkey", UserAPISecret: "UASsecret"}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "key", pk, "user", u)
	out := buf.String() + fmt.Sprintf("%v %+v %#v %s %v %+v %#v %s", pk, pk, pk, pk, u, u, u, u)
	assertNoSecrets(t, out, "DAKsecretkey", "DASsecretsecret", "pw12345678", "UASsecret")
	if !strings.Contains(out, "bob") {
		t.Fatalf("user id should stay visible: %s", out)
	}
}

func assertNoSecrets(t *testing.T, s string, secrets ...string) {
	t.Helper()
	for _, x := range secrets {
		if strings.Contains(s, x) {
			t.Fatalf("%q contains %q", s, x)
		}
	}
}

type observed struct {
	mu    sync.Mutex
	calls []string
}

func (o *observed) KandyCall(_ context.Context, op string, elapsed time.Duration, errKind string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if elapsed <= 0 {
		errKind += "(no latency)"
	}
	o.calls = append(o.calls, op+":"+errKind)
}

// Every HTTP attempt, retries included, reaches the observer with its kind.
func TestObserverSeesEveryAttempt(t *testing.T) {
	sim := kandysim.New(kandysim.Options{Quota: 1})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	key, secret := sim.ProjectKey()
	obs := &observed{}
	c, err := kandy.New(kandy.Options{
		BaseURL: srv.URL + "/v1.2", Keys: staticKeys{APIKey: key, APISecret: secret}, HTTPClient: srv.Client(),
		CallTimeout: 100 * time.Millisecond, Backoff: []time.Duration{time.Millisecond}, Observer: obs,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.CreateUser(ctx, "a", "US"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateUser(ctx, "b", "US"); !errors.Is(err, kandy.ErrQuotaExceeded) {
		t.Fatal(err)
	}
	sim.Inject(kandysim.EndpointDeleteUser, kandysim.FaultTimeout, 1)
	if err := c.DeleteUser(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"domain_access_token:", "create_user:", "create_user:quota_exceeded",
		"delete_user:timeout", "delete_user:",
	}
	if strings.Join(obs.calls, " ") != strings.Join(want, " ") {
		t.Fatalf("observed %v, want %v", obs.calls, want)
	}
}

func TestKindName(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("x"), "other"},
		{fmt.Errorf("wrapped: %w", &kandy.Error{Kind: kandy.ErrNoSuchUser}), "no_such_user"},
	} {
		if got := kandy.KindName(tt.err); got != tt.want {
			t.Errorf("KindName(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestPing(t *testing.T) {
	sim := kandysim.New(kandysim.Options{})
	c, _ := newClient(t, sim)
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	bad, _ := kandy.New(kandy.Options{BaseURL: srv.URL + "/v1.2", Keys: staticKeys{APIKey: "DAKnope", APISecret: "DASnope"}, HTTPClient: srv.Client()})
	if err := bad.Ping(context.Background()); !errors.Is(err, kandy.ErrInvalidCredentials) {
		t.Fatalf("Ping with a wrong key = %v", err)
	}
}
