// Command kandy-local runs the whole service on one machine, with no AWS
// account and no Docker: dynalite, the Kandy simulator, a GetSecretValue
// endpoint, a local user pool, and the built functions under aws-lambda-rie
// behind an emulated HTTP API. `make run` starts it.
package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/internal/apigw"
	"github.com/kandy-provisioner/kandy-provisioner/internal/localauth"
	"github.com/kandy-provisioner/kandy-provisioner/internal/localenv"
	"github.com/kandy-provisioner/kandy-provisioner/internal/localstack"
	"github.com/kandy-provisioner/kandy-provisioner/internal/samtemplate"
)

// consolePage is the local console served at /.
//
//go:embed console/index.html
var consolePage []byte

const (
	table    = "kandy-accounts"
	secretID = "kandy-project"
	poolID   = "local_pool"
	clientID = "local-client"
)

type settings struct {
	apiPort, authPort, kandyPort, secretsPort, dynamoPort, kmsPort int
	dataDir, kandyURL, secretFile                                  string
	quota                                                          int
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := run(log); err != nil {
		fmt.Fprintln(os.Stderr, "kandy-local:", err)
		os.Exit(1)
	}
}

func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s must be a non-negative integer", name)
	}
	return n, nil
}

func load() (settings, error) {
	s := settings{dataDir: os.Getenv("DATA_DIR"), kandyURL: os.Getenv("KANDY_API_URL"), secretFile: os.Getenv("KANDY_SECRET_FILE")}
	var err error
	for _, v := range []struct {
		name string
		def  int
		dst  *int
	}{
		{"API_PORT", 3000, &s.apiPort}, {"AUTH_PORT", 9229, &s.authPort}, {"KANDY_PORT", 8090, &s.kandyPort},
		{"SECRETS_PORT", 8091, &s.secretsPort}, {"DYNAMODB_PORT", 8000, &s.dynamoPort}, {"KMS_PORT", 8092, &s.kmsPort},
		{"KANDY_QUOTA", 5, &s.quota},
	} {
		if *v.dst, err = envInt(v.name, v.def); err != nil {
			return s, err
		}
	}
	if (s.kandyURL == "") != (s.secretFile == "") {
		return s, errors.New("to use a real Kandy, set both KANDY_API_URL and KANDY_SECRET_FILE")
	}
	return s, nil
}

func run(log *slog.Logger) error {
	// Stop with our parent (make), even when only it was signalled.
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0)
	s, err := load()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := localstack.Options{
		DynamoPort: s.dynamoPort, KMSPort: s.kmsPort, KandyPort: s.kandyPort, SecretsPort: s.secretsPort,
		DataDir: s.dataDir, Table: table, SecretID: secretID, KandyQuota: s.quota, KandyURL: s.kandyURL,
		WrapKandy: func(h http.Handler) http.Handler { return logCalls(log, "kandy-sim", h) },
	}
	if s.secretFile != "" {
		raw, err := os.ReadFile(s.secretFile)
		if err != nil {
			return fmt.Errorf("reading KANDY_SECRET_FILE: %w", err)
		}
		o.KandySecret = string(raw)
	}
	st, err := localstack.Start(ctx, o)
	if err != nil {
		return err
	}
	defer st.Stop()
	api, trig, err := startFunctions(st)
	if err != nil {
		return err
	}
	pool, verifier, err := startAuth(ctx, st, s, trig, log)
	if err != nil {
		return err
	}
	if err := serveAPI(st, s, api, pool, verifier, log); err != nil {
		return err
	}
	banner(s, st)
	<-ctx.Done()
	fmt.Println("\nstopping…")
	return nil
}

// startFunctions runs the API and the trigger, their JSON logs copied to
// this terminal.
func startFunctions(st *localstack.Stack) (api, trig *localenv.Function, err error) {
	if api, err = st.StartFunction("ApiFunction", st.Env()); err != nil {
		return nil, nil, err
	}
	if trig, err = st.StartFunction("PostConfirmationFunction", st.Env()); err != nil {
		return nil, nil, err
	}
	for _, fn := range []*localenv.Function{api, trig} {
		fn.Follow(&jsonLines{name: fn.Name, out: os.Stdout})
	}
	return api, trig, nil
}

// startAuth serves a local pool whose sign-up fires the real trigger, and
// reads its JWKS over HTTP, as API Gateway does.
func startAuth(ctx context.Context, st *localstack.Stack, s settings, trig *localenv.Function, log *slog.Logger) (*localauth.Pool, *localauth.Verifier, error) {
	key, err := localauth.NewKey()
	if err != nil {
		return nil, nil, err
	}
	issuer := "http://" + addr(s.authPort) + "/" + poolID
	pool := &localauth.Pool{ID: poolID, ClientID: clientID, Issuer: issuer, Key: key, Confirm: trig.Invoke, Log: log}
	if s.dataDir != "" {
		pool.File = filepath.Join(s.dataDir, "users.json")
	}
	if err := pool.Load(); err != nil {
		return nil, nil, err
	}
	base, err := st.Serve(s.authPort, pool.Handler())
	if err != nil {
		return nil, nil, err
	}
	verifier, err := fetchVerifier(ctx, base+"/.well-known/jwks.json", issuer)
	return pool, verifier, err
}

// serveAPI serves the emulated HTTP API and the console page.
func serveAPI(st *localstack.Stack, s settings, api *localenv.Function, pool *localauth.Pool, verifier *localauth.Verifier, log *slog.Logger) error {
	tpl, err := samtemplate.Load(samtemplate.Path())
	if err != nil {
		return err
	}
	routes := map[string]bool{}
	for _, r := range tpl.HTTPRoutes("ApiFunction") {
		routes[r] = true
	}
	mux := http.NewServeMux()
	mux.Handle("/", &apigw.Gateway{Routes: routes, Verifier: verifier, Function: api, Log: log})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(consolePage)
	})
	// The console reaches the pool through the API's origin, so it needs no CORS.
	mux.Handle("/console/auth/", http.StripPrefix("/console/auth", pool.Handler()))
	_, err = st.Serve(s.apiPort, mux)
	return err
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// fetchVerifier reads the pool's JWKS over HTTP, as API Gateway does.
func fetchVerifier(ctx context.Context, url, issuer string) (*localauth.Verifier, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching JWKS: %w", err)
	}
	defer resp.Body.Close()
	var set localauth.JWKS
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, fmt.Errorf("decoding JWKS: %w", err)
	}
	return localauth.NewVerifier(issuer, []string{clientID}, set)
}

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
// logs, to out with a name in front; the emulator's own lines are left out.
// Its writer serialises calls.
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

func banner(s settings, st *localstack.Stack) {
	tpl, _ := samtemplate.Load(samtemplate.Path())
	w := io.Writer(os.Stdout)
	fmt.Fprintf(w, "\nkandy-provisioner is running locally. Ctrl-C stops everything.\n\n")
	fmt.Fprintf(w, "  HTTP API        http://%s   (%s)\n", addr(s.apiPort), strings.Join(tpl.HTTPRoutes("ApiFunction"), ", "))
	fmt.Fprintf(w, "  console         http://%s/\n", addr(s.apiPort))
	fmt.Fprintf(w, "  user pool       http://%s   (POST /signup, POST /token, GET /.well-known/jwks.json)\n", addr(s.authPort))
	if st.Kandy != nil {
		fmt.Fprintf(w, "  Kandy simulator %s   (quota %d users)\n", st.KandyURL, s.quota)
	} else {
		fmt.Fprintf(w, "  Kandy           %s   (real)\n", st.KandyURL)
	}
	fmt.Fprintf(w, "  Secrets Manager %s   (GetSecretValue: %s)\n", st.SecretsURL, secretID)
	store := "in memory"
	if s.dataDir != "" {
		store = s.dataDir
	}
	fmt.Fprintf(w, "  DynamoDB        %s   (dynalite, table %s, %s)\n", st.DynamoURL, table, store)
	fmt.Fprintf(w, "  KMS             %s   (local-kms; credentials are stored encrypted)\n", st.KMSURL)
	fmt.Fprintf(w, "  functions       ApiFunction, PostConfirmationFunction (bin/*/bootstrap under aws-lambda-rie)\n\n")
	fmt.Fprintf(w, "Try it:\n  make signup USER=ada\n  TOKEN=$(make token USER=ada)\n  curl -s http://%s/users/me -H \"Authorization: Bearer $TOKEN\"\n\n", addr(s.apiPort))
}
