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
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kandy-provisioner/kandy-provisioner/internal/apigw"
	"github.com/kandy-provisioner/kandy-provisioner/internal/fakesecrets"
	"github.com/kandy-provisioner/kandy-provisioner/internal/localauth"
	"github.com/kandy-provisioner/kandy-provisioner/internal/localenv"
	"github.com/kandy-provisioner/kandy-provisioner/internal/samtemplate"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/kandy/kandysim"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/secrets"
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

	var procs []*localenv.Process
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].Stop()
		}
	}()

	// DynamoDB: dynalite, in memory unless DATA_DIR is set.
	dynArgs := []string{"node", localenv.DynaliteScript(), "--host", "127.0.0.1", "--port", strconv.Itoa(s.dynamoPort),
		"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"}
	if s.dataDir != "" {
		if err := os.MkdirAll(filepath.Join(s.dataDir, "dynalite"), 0o700); err != nil {
			return err
		}
		dynArgs = append(dynArgs, "--path", filepath.Join(s.dataDir, "dynalite"))
	}
	dynAddr := addr(s.dynamoPort)
	dyn, err := localenv.Start("dynalite", dynAddr, nil, "", dynArgs...)
	if err != nil {
		return err
	}
	procs = append(procs, dyn)
	var inUse *types.ResourceInUseException
	if err := localenv.CreateTable(ctx, localenv.DynamoDB("http://"+dynAddr), table); err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("creating the table: %w", err)
	}

	// KMS: local-kms, with a fresh key for the credentials. Old ciphertexts
	// name their own key, so a restart with DATA_DIR still decrypts them.
	kmsDir := filepath.Join(s.dataDir, "kms")
	if s.dataDir == "" {
		if kmsDir, err = os.MkdirTemp("", "kandy-local-kms"); err != nil {
			return err
		}
		defer os.RemoveAll(kmsDir)
	}
	if err := os.MkdirAll(kmsDir, 0o700); err != nil {
		return err
	}
	kmsProc, err := localenv.StartKMSOn(kmsDir, s.kmsPort)
	if err != nil {
		return err
	}
	procs = append(procs, kmsProc)
	keyARN, err := localenv.CreateKey(ctx, localenv.KMS("http://"+kmsProc.Addr))
	if err != nil {
		return err
	}

	// Kandy: the simulator, unless a real one is configured.
	kandyURL, secretValue := s.kandyURL, ""
	if kandyURL == "" {
		sim := kandysim.New(kandysim.Options{Quota: s.quota})
		key, secret := sim.ProjectKey()
		v, _ := json.Marshal(map[string]string{"project_api_key": key, "project_api_secret": secret})
		secretValue = string(v)
		if err := serve(ctx, s.kandyPort, logCalls(log, "kandy-sim", sim)); err != nil {
			return err
		}
		kandyURL = "http://" + addr(s.kandyPort) + "/v1.2"
	} else {
		raw, err := os.ReadFile(s.secretFile)
		if err != nil {
			return fmt.Errorf("reading KANDY_SECRET_FILE: %w", err)
		}
		if _, err := secrets.Parse(string(raw)); err != nil {
			return fmt.Errorf("KANDY_SECRET_FILE: %w", err)
		}
		secretValue = string(raw)
	}
	if err := serve(ctx, s.secretsPort, fakesecrets.New(map[string]string{secretID: secretValue})); err != nil {
		return err
	}

	// The functions: the built bootstraps under the Lambda emulator.
	env := []string{
		"TABLE_NAME=" + table, "KANDY_SECRET_ID=" + secretID, "KANDY_API_URL=" + kandyURL,
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_DYNAMODB=http://" + dynAddr,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=http://" + addr(s.secretsPort),
		"AWS_ENDPOINT_URL_KMS=http://" + kmsProc.Addr, "KMS_KEY_ID=" + keyARN,
	}
	api, err := localenv.StartFunction("ApiFunction", append(env, "AWS_LAMBDA_FUNCTION_TIMEOUT=10"))
	if err != nil {
		return err
	}
	procs = append(procs, api.Process)
	trig, err := localenv.StartFunction("PostConfirmationFunction", append(env, "AWS_LAMBDA_FUNCTION_TIMEOUT=5"))
	if err != nil {
		return err
	}
	procs = append(procs, trig.Process)
	for _, fn := range []*localenv.Function{api, trig} {
		fn.Follow(&jsonLines{name: fn.Name, out: os.Stdout})
	}

	// Identity: a local pool whose sign-up fires the real trigger.
	key, err := localauth.NewKey()
	if err != nil {
		return err
	}
	issuer := "http://" + addr(s.authPort) + "/" + poolID
	pool := &localauth.Pool{ID: poolID, ClientID: clientID, Issuer: issuer, Key: key, Confirm: trig.Invoke, Log: log}
	if s.dataDir != "" {
		pool.File = filepath.Join(s.dataDir, "users.json")
	}
	if err := pool.Load(); err != nil {
		return err
	}
	if err := serve(ctx, s.authPort, pool.Handler()); err != nil {
		return err
	}
	verifier, err := fetchVerifier(ctx, "http://"+addr(s.authPort)+"/.well-known/jwks.json", issuer)
	if err != nil {
		return err
	}

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
	if err := serve(ctx, s.apiPort, mux); err != nil {
		return err
	}

	banner(s, kandyURL, dynAddr, tpl.HTTPRoutes("ApiFunction"))
	<-ctx.Done()
	fmt.Println("\nstopping…")
	return nil
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// serve listens now, so a busy port fails start-up, and serves until ctx ends.
func serve(ctx context.Context, port int, h http.Handler) error {
	l, err := net.Listen("tcp", addr(port))
	if err != nil {
		return fmt.Errorf("port %d: %w", port, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return nil
}

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

func banner(s settings, kandyURL, dynAddr string, routes []string) {
	w := io.Writer(os.Stdout)
	fmt.Fprintf(w, "\nkandy-provisioner is running locally. Ctrl-C stops everything.\n\n")
	fmt.Fprintf(w, "  HTTP API        http://%s   (%s)\n", addr(s.apiPort), strings.Join(routes, ", "))
	fmt.Fprintf(w, "  console         http://%s/\n", addr(s.apiPort))
	fmt.Fprintf(w, "  user pool       http://%s   (POST /signup, POST /token, GET /.well-known/jwks.json)\n", addr(s.authPort))
	if s.kandyURL == "" {
		fmt.Fprintf(w, "  Kandy simulator %s   (quota %d users)\n", kandyURL, s.quota)
	} else {
		fmt.Fprintf(w, "  Kandy           %s   (real)\n", kandyURL)
	}
	fmt.Fprintf(w, "  Secrets Manager http://%s   (GetSecretValue: %s)\n", addr(s.secretsPort), secretID)
	store := "in memory"
	if s.dataDir != "" {
		store = s.dataDir
	}
	fmt.Fprintf(w, "  DynamoDB        http://%s   (dynalite, table %s, %s)\n", dynAddr, table, store)
	fmt.Fprintf(w, "  KMS             http://%s   (local-kms; credentials are stored encrypted)\n", addr(s.kmsPort))
	fmt.Fprintf(w, "  functions       ApiFunction, PostConfirmationFunction (bin/*/bootstrap under aws-lambda-rie)\n\n")
	fmt.Fprintf(w, "Try it:\n  make signup USER=ada\n  TOKEN=$(make token USER=ada)\n  curl -s http://%s/users/me -H \"Authorization: Bearer $TOKEN\"\n\n", addr(s.apiPort))
}
