// Command kandy-local runs the whole service on one machine, with no AWS
// account and no Docker, every TCP listener on 127.0.0.1 behind one guard:
// dynalite, local-kms, goaws with the retry queues and cognito-local with
// the template's user pool (each on a Unix socket behind a front), the
// Kandy simulator, a GetSecretValue endpoint, and the built functions as
// pools of execution environments served by the run's own Lambda Runtime
// API, behind an emulated HTTP API and a Lambda Invoke endpoint. `make
// run` starts it.
//
// `kandy-local signup NAME`, `kandy-local token NAME` and `kandy-local
// leave NAME` sign a user up, print an access token and delete the user
// from the pool, over the local Cognito API (make signup, make token,
// make leave).
package main

import (
	"context"
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

	"github.com/kandy-provisioner/kandy-provisioner/local/authorizer"
	"github.com/kandy-provisioner/kandy-provisioner/local/guard"
	"github.com/kandy-provisioner/kandy-provisioner/local/localrun"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
)

type settings struct {
	apiPort, authPort, kandyPort, secretsPort, dynamoPort, kmsPort, lambdaPort, sqsPort int
	concurrency, quota                                                                  int
	dataDir, kandyURL, secretFile, corsOrigins                                          string
	// origins are the browser origins every server lets in (see
	// browserOrigins); wildcards those of CORS_ALLOWED_ORIGINS left out.
	origins, wildcards []string
}

func main() {
	var err error
	switch {
	case len(os.Args) == 3 && os.Args[1] == "signup":
		err = signUp(os.Args[2])
	case len(os.Args) == 3 && os.Args[1] == "token":
		err = token(os.Args[2])
	case len(os.Args) == 3 && os.Args[1] == "leave":
		err = leave(os.Args[2])
	case len(os.Args) == 1:
		err = run(slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: slog.LevelInfo})))
	default:
		err = errors.New("usage: kandy-local [signup NAME | token NAME | leave NAME]")
	}
	if err != nil {
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
	s := settings{kandyURL: os.Getenv("KANDY_API_URL"),
		secretFile: os.Getenv("KANDY_SECRET_FILE"), corsOrigins: os.Getenv("CORS_ALLOWED_ORIGINS")}
	var err error
	if s.dataDir, err = dataDir(os.Getenv("DATA_DIR"), os.Getenv("FRESH")); err != nil {
		return s, err
	}
	for _, v := range []struct {
		name string
		def  int
		dst  *int
	}{
		{"API_PORT", 3000, &s.apiPort}, {"AUTH_PORT", 9229, &s.authPort}, {"KANDY_PORT", 8090, &s.kandyPort},
		{"SECRETS_PORT", 8091, &s.secretsPort}, {"DYNAMODB_PORT", 8000, &s.dynamoPort}, {"KMS_PORT", 8092, &s.kmsPort},
		{"LAMBDA_PORT", 3001, &s.lambdaPort}, {"SQS_PORT", 9324, &s.sqsPort},
		{"FUNCTION_CONCURRENCY", 4, &s.concurrency}, {"KANDY_QUOTA", 5, &s.quota},
	} {
		if *v.dst, err = envInt(v.name, v.def); err != nil {
			return s, err
		}
	}
	if s.concurrency == 0 {
		return s, errors.New("FUNCTION_CONCURRENCY must be at least 1")
	}
	if (s.kandyURL == "") != (s.secretFile == "") {
		return s, errors.New("to use a real Kandy, set both KANDY_API_URL and KANDY_SECRET_FILE")
	}
	return s, nil
}

// defaultDataDir keeps the run's state, git-ignored: a frontend built
// against yesterday's pool and client ids still finds them.
func defaultDataDir() string { return filepath.Join(processes.RepoRoot(), ".local-data") }

// dataDir is where the run keeps its state: DATA_DIR, else
// defaultDataDir; with FRESH=1, nowhere (empty: in memory, gone at exit).
func dataDir(dir, fresh string) (string, error) {
	switch {
	case fresh != "" && fresh != "1":
		return "", errors.New("FRESH must be 1 or unset")
	case fresh == "1" && dir != "":
		return "", errors.New("FRESH=1 keeps nothing, DATA_DIR keeps the state: set one of them")
	case fresh == "1":
		return "", nil
	case dir != "":
		return dir, nil
	}
	return defaultDataDir(), nil
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
	// The API's port first: its origin, the console's, is one the servers
	// pages call let in.
	apiSrv, err := guard.Listen(s.apiPort)
	if err != nil {
		return fmt.Errorf("API_PORT: %w", err)
	}
	s.apiPort = apiSrv.Port()
	s.origins, s.wildcards = browserOrigins(s.apiPort, s.corsOrigins)
	st, err := startStack(ctx, s, log)
	if err != nil {
		return err
	}
	defer st.Stop()
	fns, err := st.StartFunctions(localrun.FunctionsOptions{
		Port: s.lambdaPort, Concurrency: s.concurrency, Log: log,
		Output:   func(id string) io.Writer { return &jsonLines{name: id, out: stdout} },
		Replaced: func(p *processes.Process, why string) { replaced(log, p, why) },
	})
	if err != nil {
		return err
	}
	pool, err := st.StartUserPool(ctx, localrun.UserPoolOptions{Port: s.authPort, LambdaURL: fns.URL,
		Codes: func(to, code string) { log.Info("cognito: confirmation code sent", "to", to, "code", code) },
		// CloudTrail's record of the call, as EventBridge delivers it.
		OnUserDeleted: func(_ context.Context, d localrun.UserDeleted) {
			rules := fns.Events.Publish(localrun.CloudTrailEvent(d))
			log.Info("cognito: user deleted; CloudTrail's event delivered", "event_name", d.EventName, "sub", d.Sub, "rules", rules)
		}})
	if err != nil {
		return err
	}
	verifier, err := authorizer.FetchVerifier(ctx, &http.Client{Timeout: 5 * time.Second}, pool.Issuer, []string{pool.ClientID})
	if err != nil {
		return err
	}
	api, err := serveAPI(st, apiSrv, s, fns, pool, verifier, log)
	if err != nil {
		return err
	}
	banner(s, st, fns, pool, api)
	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout, "\nstopping…")
		return nil
	case p := <-st.Exited():
		// Every call that needs it would fail from now on: stop loudly.
		for _, line := range p.Tail(20) {
			fmt.Fprintf(stdout, "%s ! %s\n", p.Name, strings.TrimRight(line, "\r"))
		}
		return fmt.Errorf("%s exited (its last lines are above); stopping the local run", p.Name)
	}
}

// startStack starts what the functions talk to, the simulator logging
// each call and answering its local control endpoints.
func startStack(ctx context.Context, s settings, log *slog.Logger) (*localrun.Stack, error) {
	o := localrun.Options{
		DynamoPort: s.dynamoPort, KMSPort: s.kmsPort, KandyPort: s.kandyPort, SecretsPort: s.secretsPort,
		SQS: true, SQSPort: s.sqsPort, Origins: s.origins, Log: log,
		DataDir: s.dataDir, KandyQuota: s.quota, KandyURL: s.kandyURL,
		WrapKandy: func(h http.Handler) http.Handler { return simControl(h, s.quota, logCalls(log, "kandy-sim", h)) },
	}
	if s.secretFile != "" {
		raw, err := os.ReadFile(s.secretFile)
		if err != nil {
			return nil, fmt.Errorf("reading KANDY_SECRET_FILE: %w", err)
		}
		o.KandySecret = string(raw)
	}
	return localrun.Start(ctx, o)
}

// replaced reports an execution environment that left its pool, with its
// last lines when it exited unasked.
func replaced(log *slog.Logger, fn *processes.Process, why string) {
	if why != "exited" {
		log.Warn("lambda: execution environment replaced", "function", fn.Name, "reason", why)
		return
	}
	log.Error("lambda: execution environment exited; the next invocation starts another. Its last lines:", "function", fn.Name)
	for _, line := range fn.Tail(15) {
		fmt.Fprintf(stdout, "%s ! %s\n", fn.Name, strings.TrimRight(line, "\r"))
	}
}
