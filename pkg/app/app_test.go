package app

import (
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/config"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// setup reads the function's spec: what one function requires, another
// does not even read.
func TestSetupReadsTheFunctionsSpec(t *testing.T) {
	for k, v := range map[string]string{
		"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b",
		config.EnvTableName: "t", config.EnvKandySecretID: "s", config.EnvRetryQueueURL: "http://127.0.0.1:1/q",
		config.EnvDeadLetterQueueURL: "",
	} {
		t.Setenv(k, v)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := setup(log, config.Retry, true, nil); err == nil || err.Error() != "invalid configuration: missing required environment variable DEAD_LETTER_QUEUE_URL" {
		t.Fatalf("retry worker without its dead-letter queue: %v", err)
	}
	api, err := setup(log, config.API, true, nil)
	if err != nil {
		t.Fatalf("API: %v", err)
	}
	if api.Service == nil {
		t.Error("API: no provisioning service")
	}
	if api.Config.RetryQueueURL != "" {
		t.Errorf("API: retry queue %q, want none", api.Config.RetryQueueURL)
	}
	trig, err := setup(log, config.PostConfirmation, true, nil)
	if err != nil {
		t.Fatalf("trigger: %v", err)
	}
	if want := "http://127.0.0.1:1/q"; trig.Config.RetryQueueURL != want {
		t.Errorf("trigger: retry queue %q, want %q", trig.Config.RetryQueueURL, want)
	}
}

// A function that only reads gets no provisioning service, and needs no
// variable of it.
func TestConfigureBuildsNoService(t *testing.T) {
	for k, v := range map[string]string{
		"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b",
		config.EnvTableName: "t", config.EnvKandySecretID: "s", config.EnvUserPoolID: "us-east-1_x",
	} {
		t.Setenv(k, v)
	}
	d, err := setup(slog.New(slog.NewTextHandler(io.Discard, nil)), config.Reconcile, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Service != nil {
		t.Error("a provisioning service was built for a function that only reads")
	}
	if d.Metrics == nil {
		t.Error("no metrics")
	}
	if d.Config.UserPoolID != "us-east-1_x" {
		t.Errorf("user pool %q, want %q", d.Config.UserPoolID, "us-east-1_x")
	}
}

// A function that stores credentials without a key to seal them says so;
// one that never stores any, as the deprovision function, is not told.
func TestOnlyAFunctionThatStoresIsWarnedOfNoKey(t *testing.T) {
	for k, v := range map[string]string{
		"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b",
		config.EnvTableName: "t", config.EnvKandySecretID: "s",
	} {
		t.Setenv(k, v)
	}
	for spec, warned := range map[*config.Spec]bool{&config.API: true, &config.Deprovision: false} {
		var logs strings.Builder
		d, err := setup(slog.New(slog.NewTextHandler(&logs, nil)), *spec, true, nil)
		if err != nil {
			t.Fatalf("%s: %v", spec.Function, err)
		}
		if d.Service == nil {
			t.Fatalf("%s: no provisioning service", spec.Function)
		}
		if got := strings.Contains(logs.String(), "KMS_KEY_ID is not set"); got != warned {
			t.Errorf("%s warned %v, want %v:\n%s", spec.Function, got, warned, logs.String())
		}
	}
}

// With a key, the service seals with the composition root's sealer, for
// that key and table; without a sealer it refuses to start rather than
// store credentials in the clear.
func TestAKeyNeedsASealer(t *testing.T) {
	for k, v := range map[string]string{
		"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b",
		config.EnvTableName: "t", config.EnvKandySecretID: "s", config.EnvKMSKeyID: "arn:aws:kms:us-east-1:1:key/k",
	} {
		t.Setenv(k, v)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var sealedFor []string
	seal := func(_ aws.Config, keyID, table string) provision.Sealer {
		sealedFor = append(sealedFor, keyID, table)
		return nil
	}
	if _, err := setup(log, config.API, true, seal); err != nil {
		t.Fatal(err)
	}
	if want := []string{"arn:aws:kms:us-east-1:1:key/k", "t"}; !slices.Equal(sealedFor, want) {
		t.Errorf("sealer built for %q, want %q", sealedFor, want)
	}
	if _, err := setup(log, config.API, true, nil); !errors.Is(err, ErrNoSealer) {
		t.Errorf("a key and no sealer: %v, want ErrNoSealer", err)
	}
}
