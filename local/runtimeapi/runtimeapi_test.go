package runtimeapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func start(t *testing.T) *Server {
	t.Helper()
	s, err := Start("us-east-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// call is a runtime's request to its environment's API.
func call(t *testing.T, e *Environment, method, path string, body []byte, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+e.Address()+path, bytes.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// A runtime gets the event with Lambda's headers and answers it; the
// invoker gets the answer.
func TestAnInvocationRoundTrip(t *testing.T) {
	e := start(t).NewEnvironment("Fn")
	deadline := time.Now().Add(5 * time.Second).Truncate(time.Millisecond)
	got := make(chan Outcome, 1)
	go func() {
		out, err := e.Invoke(context.Background(), []byte(`{"n":1}`), deadline)
		if err != nil {
			t.Error(err)
		}
		got <- out
	}()
	resp, event := call(t, e, "GET", "/2018-06-01/runtime/invocation/next", nil)
	id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
	if string(event) != `{"n":1}` || id == "" {
		t.Fatalf("next: %q with id %q", event, id)
	}
	if ms := resp.Header.Get("Lambda-Runtime-Deadline-Ms"); ms != strconv.FormatInt(deadline.UnixMilli(), 10) {
		t.Errorf("deadline %s, want %d", ms, deadline.UnixMilli())
	}
	if arn := resp.Header.Get("Lambda-Runtime-Invoked-Function-Arn"); !strings.HasSuffix(arn, ":function:Fn") {
		t.Errorf("function ARN %q", arn)
	}
	if r, _ := call(t, e, "POST", "/2018-06-01/runtime/invocation/another-id/response", []byte(`{}`)); r.StatusCode != http.StatusBadRequest {
		t.Errorf("an answer to another invocation: %d, want 400", r.StatusCode)
	}
	if r, _ := call(t, e, "POST", "/2018-06-01/runtime/invocation/"+id+"/response", []byte(`{"ok":true}`)); r.StatusCode != http.StatusAccepted {
		t.Errorf("the answer: %d, want 202", r.StatusCode)
	}
	if out := <-got; string(out.Payload) != `{"ok":true}` || out.ErrorType != "" {
		t.Errorf("the invoker got %+v", out)
	}
}

// The function's error reaches the invoker with its type.
func TestAFunctionError(t *testing.T) {
	e := start(t).NewEnvironment("Fn")
	got := make(chan Outcome, 1)
	go func() {
		out, _ := e.Invoke(context.Background(), []byte(`{}`), time.Now().Add(5*time.Second))
		got <- out
	}()
	resp, _ := call(t, e, "GET", "/2018-06-01/runtime/invocation/next", nil)
	id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
	call(t, e, "POST", "/2018-06-01/runtime/invocation/"+id+"/error", []byte(`{"errorMessage":"no","errorType":"Boom"}`),
		"Lambda-Runtime-Function-Error-Type", "Boom")
	if out := <-got; out.ErrorType != "Boom" || !strings.Contains(string(out.Payload), `"no"`) {
		t.Errorf("the invoker got %+v", out)
	}
}

// No answer by the deadline, an environment that ends, and a runtime that
// failed to start each end the invocation with their own error.
func TestInvocationsThatGetNoAnswer(t *testing.T) {
	s := start(t)
	e := s.NewEnvironment("Fn")
	go func() { // a runtime that takes the invocation and never answers
		if resp, err := http.Get("http://" + e.Address() + "/2018-06-01/runtime/invocation/next"); err == nil {
			resp.Body.Close()
		}
	}()
	if _, err := e.Invoke(context.Background(), []byte(`{}`), time.Now().Add(200*time.Millisecond)); !errors.Is(err, ErrTimedOut) {
		t.Errorf("no answer by the deadline: %v, want ErrTimedOut", err)
	}
	closed := s.NewEnvironment("Fn")
	time.AfterFunc(100*time.Millisecond, closed.Close)
	if _, err := closed.Invoke(context.Background(), []byte(`{}`), time.Now().Add(5*time.Second)); !errors.Is(err, ErrClosed) {
		t.Errorf("an environment that ended: %v, want ErrClosed", err)
	}
	failed := s.NewEnvironment("Fn")
	call(t, failed, "POST", "/2018-06-01/runtime/init/error", []byte(`{"errorMessage":"bad config","errorType":"Config"}`),
		"Lambda-Runtime-Function-Error-Type", "Config")
	var initErr *InitError
	if _, err := failed.Invoke(context.Background(), []byte(`{}`), time.Now().Add(5*time.Second)); !errors.As(err, &initErr) || initErr.Type != "Config" {
		t.Errorf("a runtime that failed to start: %v, want its InitError", err)
	}
}

// Only the run's processes reach an environment: not without the run's
// token, not for an environment that is not open, and never from a page;
// and an answer over Lambda's limit is refused.
func TestTheAPIRefusesStrangers(t *testing.T) {
	s := start(t)
	e := s.NewEnvironment("Fn")
	host, _, _ := strings.Cut(e.Address(), "/")
	for name, c := range map[string]struct {
		url    string
		header []string
		status int
	}{
		"no token":          {"http://" + host + "/2018-06-01/runtime/invocation/next", nil, http.StatusForbidden},
		"another token":     {"http://" + host + "/0123/" + e.id + "/2018-06-01/runtime/invocation/next", nil, http.StatusForbidden},
		"no such env":       {"http://" + host + "/" + s.token + "/nope/2018-06-01/runtime/invocation/next", nil, http.StatusForbidden},
		"a page's no-cors":  {"http://" + e.Address() + "/2018-06-01/runtime/invocation/next", []string{"Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "no-cors"}, http.StatusForbidden},
		"a page's origin":   {"http://" + e.Address() + "/2018-06-01/runtime/invocation/next", []string{"Origin", "http://127.0.0.1:3000"}, http.StatusForbidden},
		"a rebound address": {"http://" + e.Address() + "/2018-06-01/runtime/invocation/next", []string{"Host", "rebound.example"}, http.StatusForbidden},
	} {
		req, _ := http.NewRequest("GET", c.url, nil)
		for i := 0; i+1 < len(c.header); i += 2 {
			if c.header[i] == "Host" {
				req.Host = c.header[i+1]
			}
			req.Header.Set(c.header[i], c.header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s: %d, want %d", name, resp.StatusCode, c.status)
		}
	}
	go func() { _, _ = e.Invoke(context.Background(), []byte(`{}`), time.Now().Add(5*time.Second)) }()
	resp, _ := call(t, e, "GET", "/2018-06-01/runtime/invocation/next", nil)
	id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
	if r, _ := call(t, e, "POST", "/2018-06-01/runtime/invocation/"+id+"/response", make([]byte, MaxPayload+1)); r.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("an answer over 6 MB: %d, want 413", r.StatusCode)
	}
}
