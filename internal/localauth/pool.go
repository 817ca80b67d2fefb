package localauth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"sync"
	"time"
)

// Pool is a minimal local user pool: sign-up (confirmed at once, firing the
// post-confirmation trigger with the event Cognito sends) and access tokens.
type Pool struct {
	ID       string // e.g. "local_pool"
	ClientID string
	Issuer   string
	Key      *Key
	// Confirm receives the PostConfirmation_ConfirmSignUp event.
	Confirm func(ctx context.Context, event []byte) ([]byte, error)
	Log     *slog.Logger
	// File, if set, keeps the users across restarts.
	File string

	mu    sync.Mutex
	users map[string]string // username -> sub
}

var usernamePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Load reads the users file, if any.
func (p *Pool) Load() error {
	p.users = map[string]string{}
	if p.File == "" {
		return nil
	}
	raw, err := os.ReadFile(p.File)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, &p.users)
}

// Handler serves /.well-known/jwks.json, POST /signup and POST /token.
func (p *Pool) Handler() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p.Key.JWKS())
	})
	m.HandleFunc("POST /signup", p.signUp)
	m.HandleFunc("POST /token", p.token)
	return m
}

func username(r *http.Request) (string, bool) {
	var in struct {
		Username string `json:"username"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1024)).Decode(&in); err != nil {
		return "", false
	}
	return in.Username, usernamePattern.MatchString(in.Username)
}

func (p *Pool) signUp(w http.ResponseWriter, r *http.Request) {
	name, ok := username(r)
	if !ok {
		reply(w, http.StatusBadRequest, map[string]string{"error": `body must be {"username":"…"} with letters, digits, '.', '_' or '-'`})
		return
	}
	p.mu.Lock()
	if _, exists := p.users[name]; exists {
		p.mu.Unlock()
		reply(w, http.StatusConflict, map[string]string{"error": "user already exists"})
		return
	}
	sub := newUUID()
	p.users[name] = sub
	err := p.save()
	p.mu.Unlock()
	if err != nil {
		reply(w, http.StatusInternalServerError, map[string]string{"error": "saving users failed"})
		return
	}
	event, _ := json.Marshal(map[string]any{
		"version": "1", "region": "local", "userPoolId": p.ID, "userName": name,
		"callerContext": map[string]string{"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": p.ClientID},
		"triggerSource": "PostConfirmation_ConfirmSignUp",
		"request": map[string]any{"userAttributes": map[string]string{
			"sub": sub, "email": name + "@example.com", "email_verified": "true", "cognito:user_status": "CONFIRMED",
		}},
		"response": map[string]any{},
	})
	trigger := "PostConfirmation_ConfirmSignUp"
	if _, err := p.Confirm(r.Context(), event); err != nil {
		// Cognito would fail the sign-up; say so.
		p.Log.Error("auth: post-confirmation trigger failed", "username", name, "err", err.Error())
		trigger += " (failed)"
	}
	p.Log.Info("auth: signed up", "username", name, "sub", sub)
	reply(w, http.StatusCreated, map[string]string{"username": name, "sub": sub, "trigger": trigger})
}

func (p *Pool) token(w http.ResponseWriter, r *http.Request) {
	name, ok := username(r)
	p.mu.Lock()
	sub, exists := p.users[name]
	p.mu.Unlock()
	if !ok || !exists {
		reply(w, http.StatusNotFound, map[string]string{"error": "no such user; sign up first"})
		return
	}
	tok, err := p.AccessToken(name, sub, time.Hour)
	if err != nil {
		reply(w, http.StatusInternalServerError, map[string]string{"error": "signing failed"})
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintln(w, tok)
}

// AccessToken signs a Cognito-style access token.
func (p *Pool) AccessToken(name, sub string, ttl time.Duration) (string, error) {
	now := time.Now()
	return p.Key.Sign(map[string]any{
		"sub": sub, "iss": p.Issuer, "client_id": p.ClientID, "token_use": "access",
		"scope": "aws.cognito.signin.user.admin", "auth_time": now.Unix(), "iat": now.Unix(),
		"exp": now.Add(ttl).Unix(), "jti": newUUID(), "username": name,
	})
}

func (p *Pool) save() error {
	if p.File == "" {
		return nil
	}
	raw, _ := json.MarshalIndent(p.users, "", "  ")
	return os.WriteFile(p.File, raw, 0o600)
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
