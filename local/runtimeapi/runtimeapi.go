// Package runtimeapi serves the Lambda Runtime API (2018-06-01) to the
// execution environments the local run starts: each function's bootstrap
// finds it at AWS_LAMBDA_RUNTIME_API, as it finds Lambda's, and runs
// unchanged. One listener serves every environment, behind the guard of
// servers only programs call; the run's token and the environment's id
// lead each path, so no page can take an invocation or answer one.
package runtimeapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/local/guard"
)

// MaxPayload is Lambda's limit on a synchronous invocation's response,
// and on what a runtime may post.
const MaxPayload = 6 << 20

// Errors of an invocation that ended without an answer. Each leaves the
// environment unable to serve again.
var (
	// ErrTimedOut: the function did not answer by its deadline.
	ErrTimedOut = errors.New("the function did not answer by its deadline")
	// ErrClosed: the environment ended (its process exited) first.
	ErrClosed = errors.New("the execution environment ended")
)

// InitError is what a runtime reported to /runtime/init/error: its
// initialisation failed, and it serves nothing.
type InitError struct {
	Type     string
	Document []byte // the error document it posted
}

func (e *InitError) Error() string { return "the runtime failed to initialise: " + e.Type }

// Outcome is an invocation the function answered.
type Outcome struct {
	// Payload is the response, or the error document the function posted.
	Payload []byte
	// ErrorType is set when the function reported an error.
	ErrorType string
}

// Server is the Runtime API of one local run.
type Server struct {
	srv    *guard.Server
	token  string
	region string

	mu   sync.Mutex
	envs map[string]*Environment
}

// Start serves the API on a free loopback port. region names the
// functions' ARNs; log hears of refused requests.
func Start(region string, log *slog.Logger) (*Server, error) {
	s := &Server{token: newID(), region: region, envs: map[string]*Environment{}}
	g := guard.Guard{Name: "lambda-runtime", Audience: guard.Programs, Token: s.token, TokenInPath: true,
		Timeouts: guard.Runtime, MaxBody: MaxPayload, Log: log}
	var err error
	if s.srv, err = g.Serve(0, s.handler()); err != nil {
		return nil, err
	}
	return s, nil
}

// Close stops serving; environments still open see ErrClosed.
func (s *Server) Close() {
	s.mu.Lock()
	envs := s.envs
	s.envs = map[string]*Environment{}
	s.mu.Unlock()
	for _, e := range envs {
		e.Close()
	}
	s.srv.Close()
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Environment is one execution environment's end of the API: one
// invocation at a time, handed to its runtime's next request.
type Environment struct {
	s        *Server
	id       string
	function string

	handoff chan *invocation // to the runtime's /next
	ready   chan struct{}    // closed at the runtime's first /next
	closed  chan struct{}
	once    sync.Once

	mu       sync.Mutex
	current  *invocation
	initErr  *InitError
	readyNow bool
}

type invocation struct {
	id       string
	event    []byte
	deadline time.Time
	done     chan Outcome // buffered: the runtime's answer
}

// NewEnvironment opens an environment for function.
func (s *Server) NewEnvironment(function string) *Environment {
	e := &Environment{s: s, id: newID(), function: function, handoff: make(chan *invocation),
		ready: make(chan struct{}), closed: make(chan struct{})}
	s.mu.Lock()
	s.envs[e.id] = e
	s.mu.Unlock()
	return e
}

// Address is the environment's AWS_LAMBDA_RUNTIME_API: host:port, then
// the path the runtime's client puts before /2018-06-01.
func (e *Environment) Address() string {
	return strings.TrimPrefix(e.s.srv.URL, "http://") + "/" + e.s.token + "/" + e.id
}

// Ready is closed once the runtime has initialised and asked for its
// first invocation.
func (e *Environment) Ready() <-chan struct{} { return e.ready }

// Failed is the runtime's initialisation error, if it reported one.
func (e *Environment) Failed() *InitError {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.initErr
}

// Close ends the environment: an invocation under way sees ErrClosed.
func (e *Environment) Close() {
	e.once.Do(func() {
		close(e.closed)
		e.s.mu.Lock()
		delete(e.s.envs, e.id)
		e.s.mu.Unlock()
	})
}

// Invoke hands event to the runtime and waits for its answer until
// deadline, which the runtime is told as well.
func (e *Environment) Invoke(ctx context.Context, event []byte, deadline time.Time) (Outcome, error) {
	if err := e.Failed(); err != nil {
		return Outcome{}, err
	}
	inv := &invocation{id: newRequestID(), event: event, deadline: deadline, done: make(chan Outcome, 1)}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case e.handoff <- inv:
	case <-timer.C:
		return Outcome{}, ErrTimedOut
	case <-e.closed:
		return Outcome{}, e.endedWith()
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	}
	select {
	case out := <-inv.done:
		return out, nil
	case <-timer.C:
		return Outcome{}, ErrTimedOut
	case <-e.closed:
		return Outcome{}, e.endedWith()
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	}
}

// endedWith is why a closed environment answered nothing.
func (e *Environment) endedWith() error {
	if err := e.Failed(); err != nil {
		return err
	}
	return ErrClosed
}

// newRequestID is a request id shaped as Lambda's (a UUID).
func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (s *Server) handler() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /{env}/2018-06-01/runtime/invocation/next", s.withEnv((*Environment).next))
	m.HandleFunc("POST /{env}/2018-06-01/runtime/invocation/{id}/response", s.withEnv((*Environment).respond))
	m.HandleFunc("POST /{env}/2018-06-01/runtime/invocation/{id}/error", s.withEnv((*Environment).fail))
	m.HandleFunc("POST /{env}/2018-06-01/runtime/init/error", s.withEnv((*Environment).initFailed))
	return m
}

// withEnv finds the environment a request is for.
func (s *Server) withEnv(h func(*Environment, http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		e := s.envs[r.PathValue("env")]
		s.mu.Unlock()
		if e == nil {
			apiError(w, http.StatusForbidden, "Runtime.UnknownEnvironment", "no such execution environment")
			return
		}
		h(e, w, r)
	}
}

// next hands the runtime its next invocation, waiting for one as long
// as it takes.
func (e *Environment) next(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	if !e.readyNow {
		e.readyNow = true
		close(e.ready)
	}
	e.current = nil
	e.mu.Unlock()
	var inv *invocation
	select {
	case inv = <-e.handoff:
	case <-e.closed:
		apiError(w, http.StatusGone, "Runtime.Closed", "the execution environment ended")
		return
	case <-r.Context().Done():
		return
	}
	e.mu.Lock()
	e.current = inv
	e.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", fmt.Sprintf("arn:aws:lambda:%s:000000000000:function:%s", e.s.region, e.function))
	h.Set("Lambda-Runtime-Trace-Id", "Root=1-"+strconv.FormatInt(time.Now().Unix(), 16)+"-"+inv.id[:8]+inv.id[9:13]+inv.id[14:18]+inv.id[19:23]+";Sampled=0")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.event)
}

// respond takes the answer to the current invocation.
func (e *Environment) respond(w http.ResponseWriter, r *http.Request) {
	e.answer(w, r, "")
}

// fail takes the function's error for the current invocation.
func (e *Environment) fail(w http.ResponseWriter, r *http.Request) {
	typ := r.Header.Get("Lambda-Runtime-Function-Error-Type")
	if typ == "" {
		typ = "Unhandled"
	}
	e.answer(w, r, typ)
}

func (e *Environment) answer(w http.ResponseWriter, r *http.Request, errorType string) {
	body, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		apiError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", fmt.Sprintf("the payload is over %d bytes", MaxPayload))
		return
	case err != nil:
		apiError(w, http.StatusBadRequest, "InvalidRequest", "the payload did not arrive whole")
		return
	}
	e.mu.Lock()
	inv := e.current
	if inv != nil && inv.id == r.PathValue("id") {
		e.current = nil
	} else {
		inv = nil
	}
	e.mu.Unlock()
	if inv == nil {
		apiError(w, http.StatusBadRequest, "InvalidRequestID", "no invocation under way has this id")
		return
	}
	inv.done <- Outcome{Payload: body, ErrorType: errorType}
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

// initFailed records the runtime's initialisation error.
func (e *Environment) initFailed(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	typ := r.Header.Get("Lambda-Runtime-Function-Error-Type")
	if typ == "" {
		typ = "Runtime.InitError"
	}
	e.mu.Lock()
	e.initErr = &InitError{Type: typ, Document: body}
	e.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

// apiError answers as the Runtime API does.
func apiError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errorType":%q,"errorMessage":%q}`, typ, msg)
}
