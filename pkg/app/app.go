// Package app wires the service from its configuration: the shared part of
// every composition root in functions/ and cmd/.
package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/awsenv"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/config"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/fieldcrypt"
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

// NewService builds the provisioning service and its clients, once per
// container. AWS endpoints and credentials come from the SDK's standard
// environment variables. rec, if not nil, receives the service's metrics.
func NewService(awsCfg aws.Config, cfg config.Config, log *slog.Logger, rec *metrics.Recorder) (*provision.Service, error) {
	return newService(awsCfg, cfg, log, rec, true)
}

// newService is NewService for a function that stores credentials, or
// not: one that never does has no key to seal them with, and is not told.
func newService(awsCfg aws.Config, cfg config.Config, log *slog.Logger, rec *metrics.Recorder, stores bool) (*provision.Service, error) {
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
	case cfg.KMSKeyID != "":
		opts.Sealer = fieldcrypt.NewSealer(kms.NewFromConfig(awsCfg), cfg.KMSKeyID, cfg.TableName)
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
// builds the service. If anything is wrong it serves the error on every
// invocation and does not return.
func Setup(spec config.Spec) Deps { return mustSetup(spec, true) }

// Configure is Setup for a function that only reads: the configuration,
// the logger and the metrics, with no provisioning service.
func Configure(spec config.Spec) Deps { return mustSetup(spec, false) }

func mustSetup(spec config.Spec, service bool) Deps {
	log := logging.New(os.Stdout)
	d, err := setup(log, spec, service)
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

func setup(log *slog.Logger, spec config.Spec, service bool) (Deps, error) {
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
		if d.Service, err = newService(awsCfg, cfg, log, d.Metrics, spec.Reads(config.EnvKMSKeyID)); err != nil {
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
