package awsenv

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadRefusesAnIncompleteEnvironment(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want error
	}{
		{map[string]string{"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}, ErrNoRegion},
		{map[string]string{"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "a"}, ErrNoCredentials},
		{map[string]string{"AWS_REGION": "eu-west-1", "AWS_SECRET_ACCESS_KEY": "b"}, ErrNoCredentials},
	} {
		if _, err := Load(env(tc.env)); !errors.Is(err, tc.want) {
			t.Errorf("Load(%v) = %v, want %v", tc.env, err, tc.want)
		}
	}
}

func TestLoadReadsRegionAndCredentials(t *testing.T) {
	cfg, err := Load(env(map[string]string{
		"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "session",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "eu-west-1" {
		t.Errorf("region %q", cfg.Region)
	}
	c, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Errorf("credentials: %v", err)
	} else {
		for _, f := range []struct{ name, got, want string }{
			{"access key id", c.AccessKeyID, "AKID"},
			{"secret access key", c.SecretAccessKey, "secret"},
			{"session token", c.SessionToken, "session"},
		} {
			if f.got != f.want {
				t.Errorf("%s %q, want %q", f.name, f.got, f.want)
			}
		}
	}
	cfg, _ = Load(env(map[string]string{"AWS_REGION": "us-east-2", "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}))
	if cfg.Region != "us-east-2" {
		t.Errorf("AWS_REGION should win, got %q", cfg.Region)
	}
}

// recorder answers every request with an empty JSON object and counts hits.
func recorder(hits *atomic.Int32) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = w.Write([]byte(`{}`))
	}))
}

// The real clients, built from Load, must call the endpoint the standard
// variables name: per service first, then the global one.
func TestServiceClientsUseTheConfiguredEndpoints(t *testing.T) {
	var dynHits, smHits, globalHits atomic.Int32
	dyn, sm, global := recorder(&dynHits), recorder(&smHits), recorder(&globalHits)
	defer dyn.Close()
	defer sm.Close()
	defer global.Close()
	base := map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
	with := func(extra map[string]string) aws.Config {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		cfg, err := Load(env(m))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	ctx := context.Background()
	call := func(cfg aws.Config) {
		_, _ = dynamodb.NewFromConfig(cfg).ListTables(ctx, &dynamodb.ListTablesInput{})
		_, _ = secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("s")})
	}

	call(with(map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": dyn.URL, "AWS_ENDPOINT_URL_SECRETS_MANAGER": sm.URL}))
	if n := dynHits.Load(); n != 1 {
		t.Fatalf("per-service endpoints: dynamodb %d calls, want 1", n)
	}
	if n := smHits.Load(); n != 1 {
		t.Fatalf("per-service endpoints: secrets manager %d calls, want 1", n)
	}
	call(with(map[string]string{"AWS_ENDPOINT_URL": global.URL, "AWS_ENDPOINT_URL_DYNAMODB": dyn.URL}))
	if n := dynHits.Load(); n != 2 {
		t.Fatalf("global endpoint: dynamodb %d calls, want 2 in all", n)
	}
	if n := globalHits.Load(); n != 1 {
		t.Fatalf("global endpoint: %d calls, want 1", n)
	}
	cfg := with(map[string]string{"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true", "AWS_ENDPOINT_URL_DYNAMODB": dyn.URL})
	if cfg.BaseEndpoint != nil {
		t.Fatalf("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS ignored: base endpoint %q", *cfg.BaseEndpoint)
	}
	if len(cfg.ConfigSources) != 0 {
		t.Fatalf("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS ignored: config sources %+v", cfg.ConfigSources)
	}
}

func TestEndpointNames(t *testing.T) {
	seen := ""
	e := endpoints(func(k string) string { seen = k; return "" })
	_, found, _ := e.GetServiceBaseEndpoint(context.Background(), "Secrets Manager")
	if found {
		t.Error("found an endpoint for Secrets Manager, want none")
	}
	if want := "AWS_ENDPOINT_URL_SECRETS_MANAGER"; seen != want {
		t.Errorf("asked for %q, want %q", seen, want)
	}
	if !strings.HasPrefix(seen, "AWS_ENDPOINT_URL_") {
		t.Fatal(seen)
	}
}
