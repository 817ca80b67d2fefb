package app

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/config"
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
	if _, err := setup(log, config.Retry, true); err == nil || err.Error() != "invalid configuration: missing required environment variable DEAD_LETTER_QUEUE_URL" {
		t.Fatalf("retry worker without its dead-letter queue: %v", err)
	}
	api, err := setup(log, config.API, true)
	if err != nil || api.Service == nil || api.Config.RetryQueueURL != "" {
		t.Fatalf("API: %+v, %v", api.Config, err)
	}
	trig, err := setup(log, config.PostConfirmation, true)
	if err != nil || trig.Config.RetryQueueURL != "http://127.0.0.1:1/q" {
		t.Fatalf("trigger: %+v, %v", trig.Config, err)
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
	d, err := setup(slog.New(slog.NewTextHandler(io.Discard, nil)), config.Reconcile, false)
	if err != nil || d.Service != nil || d.Metrics == nil || d.Config.UserPoolID != "us-east-1_x" {
		t.Fatalf("%+v, %v", d, err)
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
		d, err := setup(slog.New(slog.NewTextHandler(&logs, nil)), *spec, true)
		if err != nil || d.Service == nil {
			t.Fatalf("%s: %v", spec.Function, err)
		}
		if got := strings.Contains(logs.String(), "KMS_KEY_ID is not set"); got != warned {
			t.Errorf("%s warned %v, want %v:\n%s", spec.Function, got, warned, logs.String())
		}
	}
}
