// Package app wires the service from its configuration: the shared part of
// every composition root in functions/ and cmd/.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/awsenv"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/config"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/kandy"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/logging"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/metrics"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/secrets"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/store"
)

// NewKandy builds the Kandy client, reading the project key from Secrets
// Manager (cached). obs, if not nil, is told of every call.
func NewKandy(awsCfg aws.Config, cfg config.Config, obs kandy.Observer) (*kandy.Client, error) {
	keys := secrets.NewCache(secretsmanager.NewFromConfig(awsCfg), cfg.KandySecretID, secrets.DefaultTTL)
	return kandy.New(kandy.Options{BaseURL: cfg.KandyAPIURL, Keys: keys, Observer: obs})
}

// Seal builds the sealer of the credentials a function stores, for the key
// and the table: fieldcrypt.KMS. The composition root passes it in, so that
// this package imports no KMS client and a function that never stores
// credentials links none: the client and its generated schemas cost
// 0.46 MB of binary and their set-up at every start (docs/performance.md).
type Seal func(awsCfg aws.Config, keyID, table string) provision.Sealer

// ErrNoSealer refuses to start a function that stores credentials and is
// given a key to seal them with (KMS_KEY_ID) but was built without a
// sealer: storing them in the clear is never the fallback.
var ErrNoSealer = errors.New("KMS_KEY_ID is set, but the function has no sealer")

// NewService builds the provisioning service and its clients, once per
// container. AWS endpoints and credentials come from the SDK's standard
// environment variables. rec, if not nil, receives the service's metrics.
// seal seals the credentials it stores when cfg names a KMS key.
func NewService(awsCfg aws.Config, cfg config.Config, log *slog.Logger, rec *metrics.Recorder, seal Seal) (*provision.Service, error) {
	return newService(awsCfg, cfg, log, rec, seal, true)
}

// newService is NewService for a function that stores credentials, or
// not: one that never does has no key to seal them with, and is not told.
func newService(awsCfg aws.Config, cfg config.Config, log *slog.Logger, rec *metrics.Recorder, seal Seal, stores bool) (*provision.Service, error) {
	opts := provision.Options{DefaultCountry: cfg.DefaultCountryCode, Logger: log}
	var obs kandy.Observer
	if rec != nil {
		obs, opts.Metrics = rec, rec
	}
	k, err := NewKandy(awsCfg, cfg, obs)
	if err != nil {
		return nil, err
	}
	accounts := store.NewAccounts(dynamodb.NewFromConfig(awsCfg), cfg.TableName)
	switch {
	case cfg.KMSKeyID != "" && seal == nil:
		return nil, ErrNoSealer
	case cfg.KMSKeyID != "":
		opts.Sealer = seal(awsCfg, cfg.KMSKeyID, cfg.TableName)
	case stores:
		log.Warn("KMS_KEY_ID is not set: credentials are stored without field encryption")
	}
	return provision.New(accounts, k, opts)
}

// Deps is what every function is built from, once per container.
type Deps struct {
	Log     *slog.Logger
	Config  config.Config
	AWS     aws.Config
	Metrics *metrics.Recorder
	Service *provision.Service // nil for a function that only reads
}

// Setup reads the variables of the function's spec, and no other, and
// builds the service, with seal for the credentials it stores (nil for a
// function that stores none). If anything is wrong it serves the error on
// every invocation and does not return.
func Setup(spec config.Spec, seal Seal) Deps { return mustSetup(spec, true, seal) }

// Configure is Setup for a function that only reads: the configuration,
// the logger and the metrics, with no provisioning service.
func Configure(spec config.Spec) Deps { return mustSetup(spec, false, nil) }

func mustSetup(spec config.Spec, service bool, seal Seal) Deps {
	log := logging.New(os.Stdout)
	d, err := setup(log, spec, service, seal)
	if err != nil {
		Fail(log, err)
	}
	return d
}

// Fail serves a start-up error on every invocation and does not return.
func Fail(log *slog.Logger, err error) {
	startFailed(log, err)
	os.Exit(1) // startFailed serves until the runtime stops the process
}

func setup(log *slog.Logger, spec config.Spec, service bool, seal Seal) (Deps, error) {
	cfg, err := spec.Load(os.Getenv)
	if err != nil {
		return Deps{}, err
	}
	awsCfg, err := awsenv.Load(os.Getenv)
	if err != nil {
		return Deps{}, fmt.Errorf("loading AWS configuration: %w", err)
	}
	d := Deps{Log: log, Config: cfg, AWS: awsCfg, Metrics: metrics.New(os.Stdout, cfg.MetricsNamespace)}
	if service {
		if d.Service, err = newService(awsCfg, cfg, log, d.Metrics, seal, spec.Reads(config.EnvKMSKeyID)); err != nil {
			return Deps{}, err
		}
	}
	return d, nil
}

// startFailed reports a start-up error on every invocation instead of
// crashing: the error is logged once as JSON and returned to each caller, so
// it is plain in the logs and in the invoke result, with no stack trace.
func startFailed(log *slog.Logger, err error) {
	log.Error("function cannot start", "err", err.Error())
	lambda.Start(func(context.Context, json.RawMessage) (json.RawMessage, error) { return nil, err })
}
