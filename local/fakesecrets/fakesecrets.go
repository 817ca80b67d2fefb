// Package fakesecrets answers Secrets Manager's GetSecretValue, the one call
// the service makes, for the local run and the tests. No real
// Secrets Manager server can run locally, so this stands in for it.
package fakesecrets

import (
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server holds secrets by name or ARN.
type Server struct {
	mu      sync.Mutex
	secrets map[string]string
	calls   atomic.Int64
}

// New returns a server holding the given SecretString values.
func New(secrets map[string]string) *Server {
	s := &Server{secrets: map[string]string{}}
	for k, v := range secrets {
		s.secrets[k] = v
	}
	return s
}

// Put stores or replaces a secret.
func (s *Server) Put(id, value string) {
	s.mu.Lock()
	s.secrets[id] = value
	s.mu.Unlock()
}

// Calls counts GetSecretValue requests.
func (s *Server) Calls() int64 { return s.calls.Load() }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" {
		fail(w, http.StatusBadRequest, "UnknownOperationException", "only GetSecretValue is served")
		return
	}
	s.calls.Add(1)
	var in struct{ SecretId string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil || in.SecretId == "" {
		fail(w, http.StatusBadRequest, "InvalidParameterException", "SecretId is required")
		return
	}
	s.mu.Lock()
	v, ok := s.secrets[in.SecretId]
	s.mu.Unlock()
	if !ok {
		fail(w, http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"ARN": in.SecretId, "Name": in.SecretId, "SecretString": v,
		"VersionId": "00000000-0000-0000-0000-000000000001", "VersionStages": []string{"AWSCURRENT"},
		"CreatedDate": float64(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix()),
	})
}

func fail(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}
