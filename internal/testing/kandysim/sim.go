// Package kandysim is a small, faithful model of the Kandy REST API v1.2 as
// an http.Handler: the paths, query keys, envelopes, status codes and key
// prefixes the Kandy client relies on (see pkg/kandy). Tests, the local run
// and the benchmarks use it; the functions never do.
package kandysim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// Endpoint names, as used by counters and fault injection.
const (
	EndpointDomainToken = "domain_token"
	EndpointCreateUser  = "create_user"
	EndpointListUsers   = "list_users"
	EndpointDeleteUser  = "delete_user"
	EndpointUserToken   = "user_token"
)

// Fault is a failure the simulator can be told to produce.
type Fault int

const (
	// FaultHTTP500 answers HTTP 500 without doing the work.
	FaultHTTP500 Fault = iota + 1
	// FaultTimeout never answers; the caller's time-out ends the call.
	FaultTimeout
	// FaultMalformed answers HTTP 200 with a body that is not JSON.
	FaultMalformed
	// FaultInternal answers status 1, "internal error".
	FaultInternal
	// FaultLostAnswer does the work, then answers HTTP 500, as when the
	// answer is lost on the way back.
	FaultLostAnswer
)

// Options configures a Sim. Zero values give a Basic account.
type Options struct {
	Quota     int    // users allowed; default 5
	APIKey    string // project API key; default a random DAK…
	APISecret string // project API secret; default a random DAS…
	Domain    string // default "sim.kandy.local"
}

type user struct {
	id, password, apiKey, apiSecret, country string
}

type fault struct {
	endpoint string
	kind     Fault
	left     int
}

// Sim is the simulated Kandy service.
type Sim struct {
	mu        sync.Mutex
	quota     int
	apiKey    string
	apiSecret string
	domain    string
	users     map[string]*user
	tokens    map[string]bool // domain access token -> still valid
	calls     map[string]int
	latency   time.Duration
	faults    []*fault
	injected  int      // faults taken
	issued    []string // every password, user secret and token handed out
	created   int      // successful creates
	deleted   int      // successful deletes
	mux       *http.ServeMux
	file      string // if set, the project key and the users are kept there
}

// New returns a simulator with no users.
func New(o Options) *Sim {
	s := &Sim{
		quota: o.Quota, apiKey: o.APIKey, apiSecret: o.APISecret, domain: o.Domain,
		users: map[string]*user{}, tokens: map[string]bool{}, calls: map[string]int{},
	}
	if s.quota <= 0 {
		s.quota = 5
	}
	if s.apiKey == "" {
		s.apiKey = newKey("DAK")
	}
	if s.apiSecret == "" {
		s.apiSecret = newKey("DAS")
	}
	if s.domain == "" {
		s.domain = "sim.kandy.local"
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /domains/accesstokens", s.endpoint(EndpointDomainToken, s.domainToken))
	m.HandleFunc("POST /domains/users/user_id", s.endpoint(EndpointCreateUser, s.createUser))
	m.HandleFunc("GET /domains/users", s.endpoint(EndpointListUsers, s.listUsers))
	m.HandleFunc("DELETE /domains/users", s.endpoint(EndpointDeleteUser, s.deleteUser))
	m.HandleFunc("GET /domains/users/accesstokens", s.endpoint(EndpointUserToken, s.userToken))
	s.mux = m
	return s
}

// ServeHTTP serves Kandy's paths, with or without a /v1.2 prefix.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p, ok := strings.CutPrefix(r.URL.Path, "/v1.2"); ok {
		r.URL.Path = p
	}
	s.mux.ServeHTTP(w, r)
}

// ProjectKey returns the project API key and secret the simulator accepts.
func (s *Sim) ProjectKey() (key, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apiKey, s.apiSecret
}

// SetProjectSecret rotates the project's secret, as an operator does in
// Kandy's portal: the old one is refused (status 55) from now on. Domain
// access tokens already issued live on until they expire (ExpireTokens).
func (s *Sim) SetProjectSecret(secret string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiSecret = secret
	return s.save()
}

// Forget removes a user behind the service's back, as an operator or a
// loss at Kandy would: later calls about it answer status 53.
func (s *Sim) Forget(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users, id)
	return s.save()
}

// SetQuota changes how many users the account allows.
func (s *Sim) SetQuota(n int) { s.mu.Lock(); s.quota = n; s.mu.Unlock() }

// SetLatency delays every answer by d.
func (s *Sim) SetLatency(d time.Duration) { s.mu.Lock(); s.latency = d; s.mu.Unlock() }

// ExpireTokens expires every domain access token handed out so far.
func (s *Sim) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.tokens {
		s.tokens[t] = false
	}
	s.injected++
}

// Inject makes the next n calls to endpoint ("" for any) fail with f.
func (s *Sim) Inject(endpoint string, f Fault, n int) {
	s.mu.Lock()
	s.faults = append(s.faults, &fault{endpoint: endpoint, kind: f, left: n})
	s.mu.Unlock()
}

// ClearFaults drops every pending fault.
func (s *Sim) ClearFaults() { s.mu.Lock(); s.faults = nil; s.mu.Unlock() }

// Calls returns how many calls an endpoint received, faults included.
func (s *Sim) Calls(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[endpoint]
}

// CallCounts returns a copy of every endpoint's call count.
func (s *Sim) CallCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// Stats are counts over the simulator's life.
type Stats struct {
	Created, Deleted, FaultsInjected int
}

// Stats returns how many users were created and deleted, and how many
// faults were injected.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Created: s.created, Deleted: s.deleted, FaultsInjected: s.injected}
}

// Issued returns every secret the simulator handed out: passwords, user
// API secrets, domain and user tokens, deleted users' included. Tests scan
// logs for them.
func (s *Sim) Issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}

// UserAPIKeys maps each user id to its user API key.
func (s *Sim) UserAPIKeys() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.users))
	for id, u := range s.users {
		out[id] = u.apiKey
	}
	return out
}

// Credentials are what the simulator issued a user.
type Credentials struct {
	APIKey, APISecret, Password string
}

// User returns the credentials of a user of the domain, if it exists.
func (s *Sim) User(id string) (Credentials, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return Credentials{}, false
	}
	return Credentials{APIKey: u.apiKey, APISecret: u.apiSecret, Password: u.password}, true
}

// UserIDs returns the ids of the domain's users, sorted.
func (s *Sim) UserIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sortedIDs()
}

// sortedIDs lists the users' ids; the caller holds s.mu.
func (s *Sim) sortedIDs() []string {
	ids := make([]string, 0, len(s.users))
	for id := range s.users {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// hangLimit bounds FaultTimeout, so a client without a time-out cannot
// wedge a test.
const hangLimit = 30 * time.Second

type handler func(r *http.Request) (status int, message string, result any)

func (s *Sim) endpoint(name string, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls[name]++
		f := s.takeFault(name)
		delay := s.latency
		s.mu.Unlock()

		if delay > 0 && !sleep(r.Context(), delay) {
			return
		}
		switch f {
		case FaultHTTP500:
			http.Error(w, "internal server error", http.StatusInternalServerError)
			return
		case FaultTimeout:
			// The server notices a departed client only once the body is read.
			_, _ = io.Copy(io.Discard, r.Body)
			sleep(r.Context(), hangLimit)
			return
		case FaultMalformed:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"status":0,"result":{`))
			return
		case FaultInternal:
			writeEnvelope(w, 1, "internal error", nil)
			return
		}
		status, msg, result := h(r)
		if f == FaultLostAnswer {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		writeEnvelope(w, status, msg, result)
	}
}

func (s *Sim) takeFault(endpoint string) Fault {
	for i, f := range s.faults {
		if f.endpoint != "" && f.endpoint != endpoint {
			continue
		}
		f.left--
		if f.left <= 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		s.injected++
		return f.kind
	}
	return 0
}

func writeEnvelope(w http.ResponseWriter, status int, message string, result any) {
	if message == "" {
		message = "success"
	}
	body := map[string]any{"status": status, "message": message}
	if result != nil {
		body["result"] = result
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Sim) domainToken(r *http.Request) (int, string, any) {
	q := r.URL.Query()
	if q.Get("key") == "" || q.Get("domain_api_secret") == "" {
		return 15, "missing parameter", nil
	}
	if q.Get("key") != s.apiKey || q.Get("domain_api_secret") != s.apiSecret {
		return 55, "invalid credentials", nil
	}
	t := newKey("DAT")
	s.mu.Lock()
	s.tokens[t] = true
	s.issued = append(s.issued, t)
	s.mu.Unlock()
	return 0, "", map[string]string{"domain_access_token": t}
}

// checkToken validates a domain access token; the caller holds s.mu.
func (s *Sim) checkToken(r *http.Request) (int, string) {
	t := r.URL.Query().Get("key")
	valid, known := s.tokens[t]
	switch {
	case t == "":
		return 15, "missing parameter"
	case !known:
		return 11, "permission denied"
	case !valid:
		return 10, "token expired"
	}
	return 0, ""
}

var (
	userIDPattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$`)
	countryPattern  = regexp.MustCompile(`^([A-Z]{2}|\+[0-9]{1,3})$`)
	passwordLetters = regexp.MustCompile(`[A-Za-z]`)
	passwordDigits  = regexp.MustCompile(`[0-9].*[0-9]`)
)

func (s *Sim) createUser(r *http.Request) (int, string, any) {
	var in struct {
		UserID      string `json:"user_id"`
		CountryCode string `json:"user_country_code"`
		Password    string `json:"user_password"`
		FirstName   string `json:"user_first_name"`
		LastName    string `json:"user_last_name"`
		Email       string `json:"user_email"`
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, msg := s.checkToken(r); st != 0 {
		return st, msg, nil
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		return 14, "validation failed", nil
	}
	switch {
	case in.UserID == "" || in.CountryCode == "":
		return 15, "missing parameter", nil
	case !userIDPattern.MatchString(in.UserID):
		return 51, "invalid identifier", nil
	case !countryPattern.MatchString(in.CountryCode):
		return 54, "invalid country code", nil
	case in.Password != "" && (len(in.Password) < 8 || len(in.Password) > 20 ||
		!passwordLetters.MatchString(in.Password) || !passwordDigits.MatchString(in.Password)):
		return 52, "invalid password", nil
	case s.users[in.UserID] != nil:
		return 50, "already exists", nil
	case len(s.users) >= s.quota:
		return 1, "failed to register user on compass", nil
	}
	u := &user{id: in.UserID, password: in.Password, apiKey: newKey("UAK"), apiSecret: newKey("UAS"), country: in.CountryCode}
	if u.password == "" {
		u.password = randomHex(7)
	}
	s.users[u.id] = u
	if err := s.save(); err != nil {
		delete(s.users, u.id)
		return 1, "internal error", nil
	}
	s.created++
	s.issued = append(s.issued, u.password, u.apiSecret)
	return 0, "", map[string]string{
		"user_id":         u.id,
		"user_password":   u.password,
		"full_user_id":    u.id + "@" + s.domain,
		"domain_name":     s.domain,
		"user_api_key":    u.apiKey,
		"user_api_secret": u.apiSecret,
	}
}

func (s *Sim) listed(u *user) map[string]string {
	return map[string]string{
		"user_id": u.id, "domain_name": s.domain, "user_api_key": u.apiKey,
		"user_api_secret": u.apiSecret, "user_country_code": u.country,
	}
}

func (s *Sim) listUsers(r *http.Request) (int, string, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, msg := s.checkToken(r); st != 0 {
		return st, msg, nil
	}
	users := []map[string]string{}
	for _, u := range s.users {
		users = append(users, s.listed(u))
	}
	sort.Slice(users, func(i, j int) bool { return users[i]["user_id"] < users[j]["user_id"] })
	return 0, "", map[string]any{"users": users}
}

func (s *Sim) deleteUser(r *http.Request) (int, string, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, msg := s.checkToken(r); st != 0 {
		return st, msg, nil
	}
	id := r.URL.Query().Get("user_id")
	switch {
	case id == "":
		return 15, "missing parameter", nil
	case s.users[id] == nil:
		return 53, "does not exist", nil
	}
	gone := s.users[id]
	delete(s.users, id)
	if err := s.save(); err != nil {
		s.users[id] = gone
		return 1, "internal error", nil
	}
	s.deleted++
	return 0, "User Deleted", nil
}

func (s *Sim) userToken(r *http.Request) (int, string, any) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case q.Get("key") == "" || q.Get("domain_api_secret") == "" || q.Get("user_id") == "":
		return 15, "missing parameter", nil
	case q.Get("key") != s.apiKey || q.Get("domain_api_secret") != s.apiSecret:
		return 55, "invalid credentials", nil
	case s.users[q.Get("user_id")] == nil:
		return 53, "does not exist", nil
	}
	t := newKey("UAT")
	s.issued = append(s.issued, t)
	return 0, "", map[string]string{"user_access_token": t}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func newKey(prefix string) string { return prefix + randomHex(16) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
