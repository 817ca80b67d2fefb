package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
)

// stdout serialises everything make run prints: its own log, and the
// output of every emulator.
var stdout io.Writer = &processes.LockedWriter{W: os.Stdout}

// logCalls logs each call to the simulator with its Kandy status, never its
// query string (it holds keys and tokens).
func logCalls(log *slog.Logger, name string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		var env struct {
			Status *int `json:"status"`
		}
		_ = json.Unmarshal(rec.body.Bytes(), &env)
		status := "-"
		if env.Status != nil {
			status = strconv.Itoa(*env.Status)
		}
		log.Info(name, "method", r.Method, "path", r.URL.Path, "http", rec.code, "kandy_status", status,
			"user_id", r.URL.Query().Get("user_id"), "duration_ms", time.Since(start).Milliseconds())
	})
}

type recorder struct {
	http.ResponseWriter
	code int
	body bytes.Buffer
}

func (r *recorder) WriteHeader(code int) { r.code = code; r.ResponseWriter.WriteHeader(code) }
func (r *recorder) Write(b []byte) (int, error) {
	if r.body.Len() < 4096 {
		r.body.Write(b)
	}
	return r.ResponseWriter.Write(b)
}

// jsonLines passes the complete JSON lines written to it, the functions'
// logs, to out with a name in front; the emulator's own lines are left
// out. One emulator writes to it at a time.
type jsonLines struct {
	name    string
	out     io.Writer
	partial []byte
}

func (j *jsonLines) Write(p []byte) (int, error) {
	j.partial = append(j.partial, p...)
	for {
		line, rest, ok := bytes.Cut(j.partial, []byte("\n"))
		if !ok {
			return len(p), nil
		}
		if bytes.HasPrefix(line, []byte("{")) {
			fmt.Fprintf(j.out, "%s | %s\n", j.name, line)
		}
		j.partial = rest
	}
}
