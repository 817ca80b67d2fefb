package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// kandyWire is the network between the functions and a Kandy simulator.
// It counts the creates and deletes Kandy carried out, as Kandy answered
// them on the wire, independently of the simulator's own counters. It can
// delay requests, and lose answers: a request it delays reaches Kandy and
// is carried out even when its caller has given up, as on a real network.
type kandyWire struct {
	target http.Handler
	delay  func(*http.Request) time.Duration
	// late, if set, holds the answer to a request Kandy has carried out
	// for as long as it says: past the caller's deadline, the answer
	// arrives after the caller gave up.
	late func(*http.Request) time.Duration

	mu               sync.Mutex
	creates, deletes int
	lose             map[string]int // operation -> answers still to lose
	lost             int            // answers lost so far
	lateAnswers      []lateAnswer
	inFlight         sync.WaitGroup
}

// lateAnswer is a request of a user's whose answer was held.
type lateAnswer struct {
	userID     string
	start, end time.Time
}

func newKandyWire(target http.Handler) *kandyWire {
	return &kandyWire{target: target, lose: map[string]int{}}
}

// operation names a request: "create", "delete", or "" for the others.
func operation(r *http.Request) string {
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/domains/users/user_id"):
		return "create"
	case r.Method == http.MethodDelete && strings.HasSuffix(r.URL.Path, "/domains/users"):
		return "delete"
	}
	return ""
}

// loseAnswers makes Kandy carry out the next n requests of op, and their
// answers never arrive: the caller sees a 502.
func (w *kandyWire) loseAnswers(op string, n int) {
	w.mu.Lock()
	w.lose[op] += n
	w.mu.Unlock()
}

// answersLost is how many answers the wire lost.
func (w *kandyWire) answersLost() int { w.mu.Lock(); defer w.mu.Unlock(); return w.lost }

// counts is how many creates and deletes Kandy carried out.
func (w *kandyWire) counts() (creates, deletes int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.creates, w.deletes
}

func (w *kandyWire) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := r.Clone(context.WithoutCancel(r.Context()))
	req.Body = io.NopCloser(bytes.NewReader(body))
	op := operation(r)
	done := make(chan *httptest.ResponseRecorder, 1)
	w.inFlight.Add(1)
	go func() {
		defer w.inFlight.Done()
		if w.delay != nil {
			time.Sleep(w.delay(r))
		}
		rec := httptest.NewRecorder()
		w.target.ServeHTTP(rec, req)
		// Counted here, before settled can return, even when the caller
		// has given up.
		w.count(op, rec)
		if w.late != nil {
			if d := w.late(r); d > 0 {
				w.noteLate(userOf(r, body), d)
				time.Sleep(d)
			}
		}
		done <- rec
	}()
	var rec *httptest.ResponseRecorder
	select {
	case rec = <-done:
	case <-r.Context().Done():
		go func() { w.loses(op, <-done) }()
		return
	}
	if w.loses(op, rec) {
		http.Error(rw, "bad gateway", http.StatusBadGateway)
		return
	}
	for k, vs := range rec.Header() {
		rw.Header()[k] = vs
	}
	rw.WriteHeader(rec.Code)
	_, _ = rw.Write(rec.Body.Bytes())
}

// noteLate records that the answer to a request for userID is held for d.
func (w *kandyWire) noteLate(userID string, d time.Duration) {
	now := time.Now()
	w.mu.Lock()
	w.lateAnswers = append(w.lateAnswers, lateAnswer{userID: userID, start: now, end: now.Add(d)})
	w.mu.Unlock()
}

// lateFor reports whether an answer to a request for userID was held
// while [from, to] lasted.
func (w *kandyWire) lateFor(userID string, from, to time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lateAnswers {
		if l.userID == userID && l.start.Before(to) && l.end.After(from.Add(-time.Second)) {
			return true
		}
	}
	return false
}

// held is how many answers the wire held late.
func (w *kandyWire) held() int { w.mu.Lock(); defer w.mu.Unlock(); return len(w.lateAnswers) }

// settled waits until every request the wire carried has been answered,
// late ones included.
func (w *kandyWire) settled() { w.inFlight.Wait() }

// userOf is the user a create or delete names.
func userOf(r *http.Request, body []byte) string {
	if id := r.URL.Query().Get("user_id"); id != "" {
		return id
	}
	var in struct {
		UserID string `json:"user_id"`
	}
	_ = json.Unmarshal(body, &in)
	return in.UserID
}

// carriedOut reports whether Kandy's answer says it carried the request out.
func carriedOut(rec *httptest.ResponseRecorder) bool {
	var env struct {
		Status *int `json:"status"`
	}
	return rec.Code == http.StatusOK && json.Unmarshal(rec.Body.Bytes(), &env) == nil && env.Status != nil && *env.Status == 0
}

// count counts a create or delete Kandy carried out.
func (w *kandyWire) count(op string, rec *httptest.ResponseRecorder) {
	if !carriedOut(rec) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch op {
	case "create":
		w.creates++
	case "delete":
		w.deletes++
	}
}

// loses reports whether to lose the answer to a request Kandy carried out.
func (w *kandyWire) loses(op string, rec *httptest.ResponseRecorder) (lost bool) {
	ok := carriedOut(rec)
	w.mu.Lock()
	defer w.mu.Unlock()
	if ok && w.lose[op] > 0 {
		w.lose[op]--
		w.lost++
		return true
	}
	return false
}

// serveWire serves w on loopback for the test and returns its base URL.
func serveWire(t *testing.T, w *kandyWire) string {
	t.Helper()
	srv := httptest.NewServer(w)
	t.Cleanup(srv.Close)
	return srv.URL
}
