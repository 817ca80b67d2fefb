// Package config reads the functions' configuration from the environment.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// Defaults of the optional variables.
const (
	DefaultKandyAPIURL    = "https://api.kandy.io/v1.2"
	DefaultCountryCode    = "US"
	EnvTableName          = "TABLE_NAME"
	EnvKandySecretID      = "KANDY_SECRET_ID"
	EnvKandyAPIURL        = "KANDY_API_URL"
	EnvDefaultCountryCode = "KANDY_DEFAULT_COUNTRY_CODE"
	EnvKMSKeyID           = "KMS_KEY_ID"
	EnvRetryQueueURL      = "RETRY_QUEUE_URL"
	EnvDeadLetterQueueURL = "DEAD_LETTER_QUEUE_URL"
	EnvMetricsNamespace   = "METRICS_NAMESPACE"
)

// Config is what every function needs. AWS endpoints are not here: the SDK
// reads its own AWS_ENDPOINT_URL* variables.
type Config struct {
	TableName          string
	KandySecretID      string
	KandyAPIURL        string
	DefaultCountryCode string
	// KMSKeyID, if set, turns on field encryption of stored credentials.
	// template.yaml always sets it.
	KMSKeyID string
	// RetryQueueURL, if set, is where the trigger sends failed sign-ups.
	RetryQueueURL string
	// DeadLetterQueueURL is where the retry worker sends what it gives up on.
	DeadLetterQueueURL string
	// MetricsNamespace is the CloudWatch namespace of the EMF metrics;
	// template.yaml names one per stack.
	MetricsNamespace string
}

// ErrInvalid marks configuration that cannot work.
var ErrInvalid = errors.New("invalid configuration")

// FromEnv reads the configuration. Its error names every variable at fault
// and never quotes a value that could be secret.
func FromEnv(getenv func(string) string) (Config, error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	c := Config{
		TableName:          get(EnvTableName),
		KandySecretID:      get(EnvKandySecretID),
		KandyAPIURL:        get(EnvKandyAPIURL),
		DefaultCountryCode: get(EnvDefaultCountryCode),
		KMSKeyID:           get(EnvKMSKeyID),
		RetryQueueURL:      get(EnvRetryQueueURL),
		DeadLetterQueueURL: get(EnvDeadLetterQueueURL),
		MetricsNamespace:   get(EnvMetricsNamespace),
	}
	if c.KandyAPIURL == "" {
		c.KandyAPIURL = DefaultKandyAPIURL
	}
	if c.DefaultCountryCode == "" {
		c.DefaultCountryCode = DefaultCountryCode
	}
	var problems []string
	for _, req := range []struct{ name, val string }{{EnvTableName, c.TableName}, {EnvKandySecretID, c.KandySecretID}} {
		if req.val == "" {
			problems = append(problems, "missing required environment variable "+req.name)
		}
	}
	if u, err := url.Parse(c.KandyAPIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		problems = append(problems, EnvKandyAPIURL+" is not an absolute http(s) URL")
	}
	if !provision.ValidCountryCode(c.DefaultCountryCode) {
		problems = append(problems, EnvDefaultCountryCode+" must be an ISO 3166 alpha-2 code or + and 1 to 3 digits")
	}
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return c, nil
}
