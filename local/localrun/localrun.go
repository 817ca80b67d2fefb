// Package localrun brings up, on loopback, everything the functions talk
// to: dynalite with the accounts table, local-kms with a key, the Kandy
// simulator (or a real Kandy), a GetSecretValue endpoint and, if asked,
// goaws with the template's queues and cognito-local (bare, or with the
// template's user pool and client). It runs the built functions against
// them: one under aws-lambda-rie, or all as pools of execution
// environments served by the run's own Lambda Runtime API, behind a
// Lambda Invoke endpoint with the template's event source mappings. make
// run, the end-to-end suite, the CLI tests and make bench all start the
// service this one way. Every TCP port it opens is a guard's (package
// guard); the servers that are not ours listen on Unix sockets.
package localrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/kandysim"
	"github.com/kandy-provisioner/kandy-provisioner/local/fakesecrets"
	"github.com/kandy-provisioner/kandy-provisioner/local/guard"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/app"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/awsenv"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/config"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/fieldcrypt"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/secrets"
)

// Defaults of Options.
const (
	DefaultTable    = "kandy-accounts"
	DefaultSecretID = "kandy-project"
)

// Options says what to start and where. Zero values give an in-memory
// stack on free loopback ports with the simulator as Kandy.
type Options struct {
	// Ports of the servers; 0 picks a free one.
	DynamoPort, KMSPort, KandyPort, SecretsPort int
	// DataDir keeps the table, the KMS key, the simulator's users and the
	// user pool across restarts; empty keeps them only while the stack
	// runs.
	DataDir  string
	Table    string // default DefaultTable
	SecretID string // default DefaultSecretID
	// KandyQuota is the simulator's user limit; default 1000.
	KandyQuota int
	// KandyURL and KandySecret, when set, replace the simulator by a real
	// Kandy: its base URL and the secret's JSON value.
	KandyURL, KandySecret string
	// WrapKandy, if set, wraps the simulator's handler, to log its calls.
	WrapKandy func(http.Handler) http.Handler
	// Cognito starts a bare cognito-local too (see StartUserPool for one
	// with the template's pool).
	Cognito bool
	// SQS starts goaws with the template's queues, its JSON endpoint on
	// SQSPort (0: a free one).
	SQS     bool
	SQSPort int
	// Origins are the browser origins whose pages the servers pages call
	// (the HTTP API, Cognito) answer: the console's, CORS_ALLOWED_ORIGINS.
	// Every other server refuses every page (see package guard).
	Origins []string
	// Log, if set, hears of each request refused so.
	Log *slog.Logger
}

// Stack is a running local stack.
type Stack struct {
	Table      string
	DynamoURL  string
	DB         *dynamodb.Client
	KMSURL     string
	KMS        *kms.Client
	KeyARN     string
	Kandy      *Kandy // the simulator; nil with a real Kandy
	KandyURL   string
	SecretID   string
	Secrets    *fakesecrets.Server
	SecretsURL string
	CognitoURL string // empty unless Options.Cognito
	SQSURL     string // empty unless Options.SQS
	SQS        *sqs.Client
	// Queues are the template's queues by logical id, with Options.SQS.
	Queues map[string]Queue

	opts    Options
	sockets string // the backends' socket folder
	stops   []func()
	servers []*processes.Process // the backing servers, for Exited

	mu        sync.Mutex
	userPools map[string]string // pool id by the template's logical id, once started
}

// Start brings the stack up. On error, what was started is stopped.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	o = o.withDefaults()
	s := &Stack{Table: o.Table, SecretID: o.SecretID, opts: o, userPools: map[string]string{}}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if s.sockets, err = guard.SocketDir(); err != nil {
		return nil, err
	}
	s.stops = append(s.stops, func() { os.RemoveAll(s.sockets) })
	if err := s.startDynamo(ctx, o); err != nil {
		return nil, err
	}
	s.sweepTTL()
	if err := s.startKMS(ctx, o); err != nil {
		return nil, err
	}
	secret, err := s.startKandy(o)
	if err != nil {
		return nil, err
	}
	s.Secrets = fakesecrets.New(map[string]string{o.SecretID: secret})
	if s.SecretsURL, err = s.serve(s.programs("secrets-manager"), o.SecretsPort, s.Secrets); err != nil {
		return nil, err
	}
	if o.Cognito {
		b := guard.NewBackend(s.sockets, "cognito-local")
		p, err := processes.StartCognitoLocal(b, s.dataDir(o, "cognito"), nil)
		if err != nil {
			return nil, err
		}
		s.started(p)
		if s.CognitoURL, err = s.front(s.pages("cognito-local"), 0, b, nil); err != nil {
			return nil, err
		}
	}
	if o.SQS {
		if err := s.startSQS(ctx, o); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (o Options) withDefaults() Options {
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if o.SecretID == "" {
		o.SecretID = DefaultSecretID
	}
	if o.KandyQuota <= 0 {
		o.KandyQuota = 1000
	}
	return o
}

// dataDir is a folder for one server's data: under DataDir, or a
// temporary one removed at Stop.
func (s *Stack) dataDir(o Options, name string) string {
	if o.DataDir != "" {
		dir := filepath.Join(o.DataDir, name)
		_ = os.MkdirAll(dir, 0o700)
		return dir
	}
	dir, err := os.MkdirTemp("", "kandy-local-"+name)
	if err != nil {
		return os.TempDir()
	}
	s.stops = append(s.stops, func() { os.RemoveAll(dir) })
	return dir
}

func (s *Stack) startDynamo(ctx context.Context, o Options) error {
	dir := ""
	if o.DataDir != "" {
		dir = s.dataDir(o, "dynalite")
	}
	b := guard.NewBackend(s.sockets, "dynalite")
	p, err := processes.StartDynalite(b, dir)
	if err != nil {
		return err
	}
	s.started(p)
	if s.DynamoURL, err = s.front(s.programs("dynalite"), o.DynamoPort, b, nil); err != nil {
		return err
	}
	s.DB = processes.DynamoDB(s.DynamoURL)
	return s.CreateTable(ctx, o.Table)
}

// CreateTable creates a table of the template's definition; one that is
// already there (a restart with DataDir) is kept.
func (s *Stack) CreateTable(ctx context.Context, name string) error {
	var inUse *types.ResourceInUseException
	if err := processes.CreateTable(ctx, s.DB, name); err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("creating table %s: %w", name, err)
	}
	return nil
}

func (s *Stack) startKMS(ctx context.Context, o Options) error {
	b := guard.NewBackend(s.sockets, "local-kms")
	p, err := processes.StartKMS(b, s.dataDir(o, "kms"))
	if err != nil {
		return err
	}
	s.started(p)
	if s.KMSURL, err = s.front(s.programs("local-kms"), o.KMSPort, b, nil); err != nil {
		return err
	}
	s.KMS = processes.KMS(s.KMSURL)
	// One key under an alias, kept with DataDir as the deployed key is
	// kept across deploys.
	s.KeyARN, err = processes.KeyByAlias(ctx, s.KMS, keyAlias)
	return err
}

// keyAlias names the credentials key.
const keyAlias = "alias/kandy-provisioner-credentials"

// startKandy serves the simulator, or checks the real Kandy's secret, and
// returns the secret's value.
func (s *Stack) startKandy(o Options) (string, error) {
	if o.KandyURL != "" {
		if _, err := secrets.Parse(o.KandySecret); err != nil {
			return "", fmt.Errorf("the Kandy secret: %w", err)
		}
		s.KandyURL = o.KandyURL
		return o.KandySecret, nil
	}
	file := ""
	if o.DataDir != "" {
		file = filepath.Join(s.dataDir(o, "kandy"), "simulator.json")
	}
	k, err := s.newKandy(o.KandyPort, o.KandyQuota, o.WrapKandy, file)
	if err != nil {
		return "", err
	}
	s.Kandy, s.KandyURL = k, k.URL
	return k.Secret, nil
}

// Kandy is a simulator served on loopback.
type Kandy struct {
	*kandysim.Sim
	URL    string // base URL, with /v1.2
	Secret string // the secret's JSON value for its project key
}

// NewKandy serves another simulator, for tests that want one of their own;
// wrap, if not nil, wraps its handler.
func (s *Stack) NewKandy(port, quota int, wrap func(http.Handler) http.Handler) (*Kandy, error) {
	return s.newKandy(port, quota, wrap, "")
}

// newKandy serves a simulator; with file, one that keeps its users there.
func (s *Stack) newKandy(port, quota int, wrap func(http.Handler) http.Handler, file string) (*Kandy, error) {
	sim := kandysim.New(kandysim.Options{Quota: quota})
	if file != "" {
		var err error
		if sim, err = kandysim.Open(kandysim.Options{Quota: quota}, file); err != nil {
			return nil, err
		}
	}
	var h http.Handler = sim
	if wrap != nil {
		h = wrap(sim)
	}
	url, err := s.serve(s.programs("kandy-simulator"), port, h)
	if err != nil {
		return nil, err
	}
	key, secret := sim.ProjectKey()
	v, _ := json.Marshal(map[string]string{"project_api_key": key, "project_api_secret": secret})
	return &Kandy{Sim: sim, URL: url + "/v1.2", Secret: string(v)}, nil
}

// programs is the guard of a server only programs call, by name.
func (s *Stack) programs(name string) guard.Guard {
	return guard.Guard{Name: name, Audience: guard.Programs, Timeouts: guard.Service, Log: s.opts.Log}
}

// pages is the guard of a server the allowed origins' pages call.
func (s *Stack) pages(name string) guard.Guard {
	return guard.Guard{Name: name, Audience: guard.Pages, Origins: s.opts.Origins, Timeouts: guard.Service, Log: s.opts.Log}
}

// serve serves h behind g on a loopback port (0: a free one), listening
// now so that a busy port fails the start, until Stop. It returns the
// base URL.
func (s *Stack) serve(g guard.Guard, port int, h http.Handler) (string, error) {
	srv, err := g.Serve(port, h)
	if err != nil {
		return "", err
	}
	s.stops = append(s.stops, srv.Close)
	return srv.URL, nil
}

// front serves backend b behind g on a loopback port (0: a free one);
// wrap, if set, sees each request before b does.
func (s *Stack) front(g guard.Guard, port int, b guard.Backend, wrap func(http.Handler) http.Handler) (string, error) {
	f := &guard.Front{Guard: g, Backend: b, Wrap: wrap}
	return s.serve(g, port, f.Handler())
}

// Serve serves h, a stand-in for a service only programs call, on a
// loopback port of the stack (0: a free one) behind its guard; it stops
// with the stack.
func (s *Stack) Serve(port int, h http.Handler) (string, error) {
	return s.serve(s.programs("local server"), port, h)
}

// ServeHTTPAPI serves h as the stack's HTTP API on srv, a port the caller
// bound first (its origin is the console's), behind the guard of a server
// pages call, with API Gateway's timeouts and payload limit. It stops
// with the stack.
func (s *Stack) ServeHTTPAPI(srv *guard.Server, h http.Handler) error {
	g := s.pages("http-api")
	g.Timeouts, g.MaxBody = guard.HTTPAPI, 10<<20
	s.stops = append(s.stops, srv.Close)
	return srv.Serve(g, h)
}

// started keeps a backing server, to stop and to watch.
func (s *Stack) started(p *processes.Process) {
	s.stops = append(s.stops, p.Stop)
	s.servers = append(s.servers, p)
}

// Exited tells of each backing server (dynalite, local-kms, goaws,
// cognito-local) as it exits, Stop's doing or not.
func (s *Stack) Exited() <-chan *processes.Process {
	ch := make(chan *processes.Process, len(s.servers))
	for _, p := range s.servers {
		go func() {
			<-p.Done()
			ch <- p
		}()
	}
	return ch
}

// Stop stops everything, last started first.
func (s *Stack) Stop() {
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
	s.stops = nil
}

// Env is what a function gets here: Lambda's own variables, the
// template's, and the endpoints of this stack. Later entries of extra
// replace earlier ones of the same name.
func (s *Stack) Env(extra ...string) []string {
	base := []string{
		"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1", "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local",
		"AWS_ENDPOINT_URL_DYNAMODB=" + s.DynamoURL,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + s.SecretsURL,
		"AWS_ENDPOINT_URL_KMS=" + s.KMSURL,
		"TABLE_NAME=" + s.Table, "KANDY_SECRET_ID=" + s.SecretID, "KANDY_API_URL=" + s.KandyURL,
		"KMS_KEY_ID=" + s.KeyARN,
	}
	if s.CognitoURL != "" {
		base = append(base, "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER="+s.CognitoURL)
	}
	if s.SQSURL != "" {
		base = append(base, "AWS_ENDPOINT_URL_SQS="+s.SQSURL)
	}
	return MergeEnv(base, extra...)
}

// MergeEnv returns base with each NAME=value of extra set, replacing an
// entry of the same name.
func MergeEnv(base []string, extra ...string) []string { return processes.MergeEnv(base, extra...) }

// LambdaEnv is env with the function's timeout, memory and log format
// from template.yaml, as Lambda sets them for it.
func LambdaEnv(id string, env []string) ([]string, error) {
	tpl, err := samtemplate.Load(samtemplate.Path())
	if err != nil {
		return nil, err
	}
	timeout, memory := tpl.FunctionSettings(id)
	base := []string{
		"AWS_LAMBDA_FUNCTION_TIMEOUT=" + strconv.Itoa(timeout),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + strconv.Itoa(memory),
	}
	if format, level := logging(tpl, id); format == "JSON" {
		base = append(base, "AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_LOG_LEVEL="+level)
	}
	return MergeEnv(base, env...), nil
}

// logging is a function's LoggingConfig: its own, or the Globals'.
func logging(tpl *samtemplate.Template, id string) (format, level string) {
	globals, _ := tpl.Globals["Function"].(map[string]any)
	for _, props := range []map[string]any{globals, tpl.Resources[id].Properties} {
		lc, _ := props["LoggingConfig"].(map[string]any)
		if f, ok := lc["LogFormat"].(string); ok {
			format = f
		}
		if l, ok := lc["ApplicationLogLevel"].(string); ok {
			level = l
		}
	}
	if level == "" {
		level = "INFO"
	}
	return format, level
}

// StartFunction runs bin/<id>/bootstrap under the emulator with env (see
// Env and LambdaEnv), as Lambda would. It stops with the stack.
func (s *Stack) StartFunction(id string, env []string) (*processes.Function, error) {
	env, err := LambdaEnv(id, env)
	if err != nil {
		return nil, err
	}
	fn, err := processes.StartFunction(id, env)
	if err != nil {
		return nil, err
	}
	s.stops = append(s.stops, fn.Stop)
	return fn, nil
}

// Service builds the provisioning service as a function's container does,
// from the variables getenv gives: Env's, or a variation of them.
func Service(getenv func(string) string) (*provision.Service, error) {
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	awsCfg, err := awsenv.Load(getenv)
	if err != nil {
		return nil, err
	}
	return app.NewService(awsCfg, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, fieldcrypt.KMS)
}
