// Package localrun brings up, on loopback, everything the functions talk
// to: dynalite with the accounts table, local-kms with a key, the Kandy
// simulator (or a real Kandy), a GetSecretValue endpoint and, if asked,
// goaws with the template's queues and cognito-local (bare, or with the
// template's user pool and client). It runs the built functions under
// aws-lambda-rie against them, one emulator each or as pools behind a
// Lambda Invoke endpoint with the template's event source mappings. make
// run, the end-to-end suite, the CLI tests and make bench all start the
// service this one way.
package localrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kandy-provisioner/kandy-provisioner/local/fakesecrets"
	"github.com/kandy-provisioner/kandy-provisioner/local/guard"
	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/kandysim"
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
	// Origins are the browser origins every server lets in (the console's,
	// CORS_ALLOWED_ORIGINS); a request with any other Origin, or whose
	// Host is not a loopback name, is refused (see package guard).
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
	policy  guard.Policy
	stops   []func()
	servers []*processes.Process // the backing servers, for Exited

	mu        sync.Mutex
	userPools map[string]string // pool id by the template's logical id, once started
}

// Start brings the stack up. On error, what was started is stopped.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	o = o.withDefaults()
	s := &Stack{Table: o.Table, SecretID: o.SecretID, opts: o,
		policy: guard.Policy{Origins: o.Origins, Log: o.Log}, userPools: map[string]string{}}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
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
	if s.SecretsURL, err = s.serve("secrets-manager", o.SecretsPort, s.Secrets, guard.Service); err != nil {
		return nil, err
	}
	if o.Cognito {
		p, err := processes.StartCognitoLocal(s.dataDir(o, "cognito"))
		if err != nil {
			return nil, err
		}
		s.started(p)
		s.CognitoURL = "http://" + p.Addr
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
	token := guard.NewToken()
	p, err := processes.StartDynaliteForFront(dir, token)
	if err != nil {
		return err
	}
	s.started(p)
	if s.DynamoURL, err = s.front("dynalite", o.DynamoPort, p, token, nil); err != nil {
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
	token := guard.NewToken()
	p, err := processes.StartKMSForFront(s.dataDir(o, "kms"), token)
	if err != nil {
		return err
	}
	s.started(p)
	if s.KMSURL, err = s.front("local-kms", o.KMSPort, p, token, nil); err != nil {
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
	url, err := s.serve("kandy-simulator", port, h, guard.Service)
	if err != nil {
		return nil, err
	}
	key, secret := sim.ProjectKey()
	v, _ := json.Marshal(map[string]string{"project_api_key": key, "project_api_secret": secret})
	return &Kandy{Sim: sim, URL: url + "/v1.2", Secret: string(v)}, nil
}

// serve serves h, a server of ours, behind the stack's checks on a
// loopback port (0: a free one), listening now so that a busy port fails
// the start. It returns the base URL.
func (s *Stack) serve(name string, port int, h http.Handler, t guard.Timeouts) (string, error) {
	l, err := guard.Listen(port)
	if err != nil {
		return "", err
	}
	return s.serveOn(l, s.policy.Guard(name, h), t), nil
}

// front serves, on a loopback port (0: a free one), the front of p, a
// server the stack started on a port of its own to answer only token.
func (s *Stack) front(name string, port int, p *processes.Process, token string, wrap func(http.Handler) http.Handler) (string, error) {
	l, err := guard.Listen(port)
	if err != nil {
		return "", err
	}
	f := &guard.Front{Name: name, Policy: s.policy, Backend: guard.Backend{URL: "http://" + p.Addr, Token: token}, Wrap: wrap}
	return s.serveOn(l, f.Handler(), guard.Service), nil
}

// serveOn serves h on l with t until Stop, and returns l's base URL.
func (s *Stack) serveOn(l net.Listener, h http.Handler, t guard.Timeouts) string {
	srv := t.Server(h)
	go func() { _ = srv.Serve(l) }()
	s.stops = append(s.stops, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return "http://" + l.Addr().String()
}

// Serve serves h on a loopback port of the stack (0: a free one), behind
// its checks, with an AWS service's timeouts; it stops with the stack.
func (s *Stack) Serve(port int, h http.Handler) (string, error) {
	return s.serve("local server", port, h, guard.Service)
}

// ServeHTTPAPI serves h as the stack's HTTP API on a loopback port (0: a
// free one), behind its checks, with API Gateway's timeouts.
func (s *Stack) ServeHTTPAPI(port int, h http.Handler) (string, error) {
	return s.serve("http-api", port, h, guard.HTTPAPI)
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
