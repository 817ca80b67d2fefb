package app

import (
	"io"
	"log/slog"
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
	if _, err := setup(log, config.Retry); err == nil || err.Error() != "invalid configuration: missing required environment variable DEAD_LETTER_QUEUE_URL" {
		t.Fatalf("retry worker without its dead-letter queue: %v", err)
	}
	api, err := setup(log, config.API)
	if err != nil || api.Service == nil || api.Config.RetryQueueURL != "" {
		t.Fatalf("API: %+v, %v", api.Config, err)
	}
	trig, err := setup(log, config.PostConfirmation)
	if err != nil || trig.Config.RetryQueueURL != "http://127.0.0.1:1/q" {
		t.Fatalf("trigger: %+v, %v", trig.Config, err)
	}
}
