// Package config reads the functions' configuration from the environment.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// DefaultKandyAPIURL is Kandy's own API, used when KANDY_API_URL is unset.
const DefaultKandyAPIURL = "https://api.kandy.io/v1.2"

// The names of the environment variables the functions read.
const (
	EnvTableName          = "TABLE_NAME"
	EnvKandySecretID      = "KANDY_SECRET_ID"
	EnvKandyAPIURL        = "KANDY_API_URL"
	EnvDefaultCountryCode = "KANDY_DEFAULT_COUNTRY_CODE"
	EnvKMSKeyID           = "KMS_KEY_ID"
	EnvRetryQueueURL      = "RETRY_QUEUE_URL"
	EnvDeadLetterQueueURL = "DEAD_LETTER_QUEUE_URL"
	EnvMetricsNamespace   = "METRICS_NAMESPACE"
	EnvUserPoolID         = "USER_POOL_ID"
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
	// RetryQueueURL, if set, is where the trigger sends failed sign-ups,
	// and where the retry worker reschedules them.
	RetryQueueURL string
	// DeadLetterQueueURL is where the retry worker sends what it gives up on.
	DeadLetterQueueURL string
	// MetricsNamespace is the CloudWatch namespace of the EMF metrics;
	// template.yaml names one per stack.
	MetricsNamespace string
	// UserPoolID is the pool a scheduled reconcile compares.
	UserPoolID string
}

// ErrInvalid marks configuration that cannot work.
var ErrInvalid = errors.New("invalid configuration")

// Spec is what one function reads from its environment: the variables
// template.yaml gives it, beyond those Lambda sets itself (region,
// credentials, AWS_LAMBDA_*). The template tests hold each function's
// environment in the deployed stack to exactly these names.
type Spec struct {
	// Function is the function's logical id in template.yaml.
	Function string
	// Vars are every variable it reads; Required those it cannot do without.
	Vars, Required []string
}

// common is what every function reads to build the provisioning service.
var common = []string{EnvTableName, EnvKandySecretID, EnvKandyAPIURL, EnvDefaultCountryCode, EnvKMSKeyID, EnvMetricsNamespace}

var commonRequired = []string{EnvTableName, EnvKandySecretID}

// The functions of template.yaml.
var (
	API = Spec{Function: "ApiFunction", Vars: common, Required: commonRequired}
	// PostConfirmation sends to the retry queue when one is named.
	PostConfirmation = Spec{Function: "PostConfirmationFunction",
		Vars: append(slices.Clip(common), EnvRetryQueueURL), Required: commonRequired}
	// Retry cannot give up on a message without its dead-letter queue, nor
	// back off without the retry queue it reschedules messages in.
	Retry = Spec{Function: "RetryFunction",
		Vars:     append(slices.Clip(common), EnvRetryQueueURL, EnvDeadLetterQueueURL),
		Required: append(slices.Clip(commonRequired), EnvRetryQueueURL, EnvDeadLetterQueueURL)}
	// Deprovision only deletes accounts: it never stores credentials, so it
	// has no key to seal them with, and no default country. It skips the
	// events of any pool but USER_POOL_ID, when set.
	Deprovision = Spec{Function: "DeprovisionFunction",
		Vars:     []string{EnvTableName, EnvKandySecretID, EnvKandyAPIURL, EnvUserPoolID, EnvMetricsNamespace},
		Required: commonRequired}
	// Reconcile only reads: the table, Kandy's user list and the pool.
	Reconcile = Spec{Function: "ReconcileFunction",
		Vars:     []string{EnvTableName, EnvKandySecretID, EnvKandyAPIURL, EnvUserPoolID, EnvMetricsNamespace},
		Required: append(slices.Clip(commonRequired), EnvUserPoolID)}
)

// Functions returns the spec of every function.
func Functions() []Spec { return []Spec{API, PostConfirmation, Retry, Deprovision, Reconcile} }

// Reads reports whether the spec reads the variable name.
func (s Spec) Reads(name string) bool { return slices.Contains(s.Vars, name) }

// FromEnv reads every variable, requiring only the common ones: for tools
// that share the functions' configuration.
func FromEnv(getenv func(string) string) (Config, error) {
	return Spec{Vars: append(slices.Clip(common), EnvRetryQueueURL, EnvDeadLetterQueueURL), Required: commonRequired}.Load(getenv)
}

// Load reads the spec's variables, and no other. Its error names every
// variable at fault and never quotes a value that could be secret.
func (s Spec) Load(getenv func(string) string) (Config, error) {
	var c Config
	fields := map[string]*string{
		EnvTableName: &c.TableName, EnvKandySecretID: &c.KandySecretID, EnvKandyAPIURL: &c.KandyAPIURL,
		EnvDefaultCountryCode: &c.DefaultCountryCode, EnvKMSKeyID: &c.KMSKeyID, EnvRetryQueueURL: &c.RetryQueueURL,
		EnvDeadLetterQueueURL: &c.DeadLetterQueueURL, EnvMetricsNamespace: &c.MetricsNamespace, EnvUserPoolID: &c.UserPoolID,
	}
	for _, name := range s.Vars {
		f, ok := fields[name]
		if !ok {
			return Config{}, fmt.Errorf("%w: %s is not a configuration variable", ErrInvalid, name)
		}
		*f = strings.TrimSpace(getenv(name))
	}
	if c.KandyAPIURL == "" {
		c.KandyAPIURL = DefaultKandyAPIURL
	}
	if c.DefaultCountryCode == "" {
		c.DefaultCountryCode = provision.DefaultCountryCode
	}
	var problems []string
	for _, name := range s.Required {
		if *fields[name] == "" {
			problems = append(problems, "missing required environment variable "+name)
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
