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

// NewService builds the provisioning service and its clients, once per
// container. AWS endpoints and credentials come from the SDK's standard
// environment variables. rec, if not nil, receives the service's metrics.
func NewService(awsCfg aws.Config, cfg config.Config, log *slog.Logger, rec *metrics.Recorder) (*provision.Service, error) {
	keys := secrets.NewCache(secretsmanager.NewFromConfig(awsCfg), cfg.KandySecretID, secrets.DefaultTTL)
	ko := kandy.Options{BaseURL: cfg.KandyAPIURL, Keys: keys}
	opts := provision.Options{DefaultCountry: cfg.DefaultCountryCode, Logger: log}
	if rec != nil {
		ko.Observer, opts.Metrics = rec, rec
	}
	k, err := kandy.New(ko)
	if err != nil {
		return nil, err
	}
	accounts := store.NewAccounts(dynamodb.NewFromConfig(awsCfg), cfg.TableName)
	if cfg.KMSKeyID != "" {
		opts.Sealer = fieldcrypt.NewSealer(kms.NewFromConfig(awsCfg), cfg.KMSKeyID, cfg.TableName)
	} else {
		log.Warn("KMS_KEY_ID is not set: credentials are stored without field encryption")
	}
	return provision.New(accounts, k, opts)
}

// Deps is what every function is built from, once per container.
type Deps struct {
	Log     *slog.Logger
	Config  config.Config
	AWS     aws.Config
	Service *provision.Service
}

// Setup reads the variables of the function's spec, and no other, and
// builds the service. If anything is wrong it serves the error on every
// invocation and does not return.
func Setup(spec config.Spec) Deps {
	log := logging.New(os.Stdout)
	d, err := setup(log, spec)
	if err != nil {
		startFailed(log, err)
		os.Exit(1) // startFailed serves until the runtime stops the process
	}
	return d
}

func setup(log *slog.Logger, spec config.Spec) (Deps, error) {
	cfg, err := spec.Load(os.Getenv)
	if err != nil {
		return Deps{}, err
	}
	awsCfg, err := awsenv.Load(os.Getenv)
	if err != nil {
		return Deps{}, fmt.Errorf("loading AWS configuration: %w", err)
	}
	svc, err := NewService(awsCfg, cfg, log, metrics.New(os.Stdout, cfg.MetricsNamespace))
	if err != nil {
		return Deps{}, err
	}
	return Deps{Log: log, Config: cfg, AWS: awsCfg, Service: svc}, nil
}

// startFailed reports a start-up error on every invocation instead of
// crashing: the error is logged once as JSON and returned to each caller, so
// it is plain in the logs and in the invoke result, with no stack trace.
func startFailed(log *slog.Logger, err error) {
	log.Error("function cannot start", "err", err.Error())
	lambda.Start(func(context.Context, json.RawMessage) (json.RawMessage, error) { return nil, err })
}
