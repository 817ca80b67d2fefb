// Package secrets reads the project's Kandy key and secret from AWS Secrets
// Manager and caches them in process.
package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/awsdep"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/kandy"
)

// DefaultTTL is how long a fetched secret is trusted before it is read again,
// so that a rotation reaches running containers.
const DefaultTTL = 15 * time.Minute

// ErrMalformed marks a secret whose value is not the expected JSON.
var ErrMalformed = errors.New("malformed Kandy secret")

// GetSecretValueAPI is the one Secrets Manager operation this package uses.
type GetSecretValueAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Parse reads the secret's JSON. Its errors name the missing field, never a value.
func Parse(s string) (kandy.ProjectKey, error) {
	var v struct {
		Key    *string `json:"project_api_key"`
		Secret *string `json:"project_api_secret"`
	}
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(&v); err != nil {
		return kandy.ProjectKey{}, fmt.Errorf("%w: SecretString is not a JSON object with project_api_key and project_api_secret", ErrMalformed)
	}
	if dec.More() {
		return kandy.ProjectKey{}, fmt.Errorf("%w: SecretString has data after the JSON object", ErrMalformed)
	}
	var missing []string
	if v.Key == nil || strings.TrimSpace(*v.Key) == "" {
		missing = append(missing, "project_api_key")
	}
	if v.Secret == nil || strings.TrimSpace(*v.Secret) == "" {
		missing = append(missing, "project_api_secret")
	}
	if len(missing) > 0 {
		return kandy.ProjectKey{}, fmt.Errorf("%w: field %s is missing or empty", ErrMalformed, strings.Join(missing, " and "))
	}
	return kandy.ProjectKey{APIKey: strings.TrimSpace(*v.Key), APISecret: strings.TrimSpace(*v.Secret)}, nil
}

// Cache serves the project key from memory, reading Secrets Manager at most
// once per TTL. Concurrent callers share one read.
type Cache struct {
	api      GetSecretValueAPI
	secretID string
	ttl      time.Duration
	now      func() time.Time

	mu      sync.Mutex
	key     kandy.ProjectKey
	fetched time.Time
}

// NewCache builds a Cache for one secret; ttl <= 0 means DefaultTTL.
func NewCache(api GetSecretValueAPI, secretID string, ttl time.Duration) *Cache {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Cache{api: api, secretID: secretID, ttl: ttl, now: time.Now}
}

var _ kandy.KeyRefresher = (*Cache)(nil)

// ProjectKey returns the cached key, reading the secret when the cache is
// empty or older than the TTL.
func (c *Cache) ProjectKey(ctx context.Context) (kandy.ProjectKey, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fetched.IsZero() && c.now().Sub(c.fetched) < c.ttl {
		return c.key, nil
	}
	return c.read(ctx)
}

// RefreshProjectKey reads the secret again, bypassing the cache, because
// Kandy refused stale: the secret was rotated. Callers that meet the
// refusal together share one read: whoever comes after it finds the key
// changed and takes it as it is.
func (c *Cache) RefreshProjectKey(ctx context.Context, stale kandy.ProjectKey) (kandy.ProjectKey, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fetched.IsZero() && c.key != stale {
		return c.key, nil
	}
	return c.read(ctx)
}

// read reads the secret into the cache; c.mu is held.
func (c *Cache) read(ctx context.Context) (kandy.ProjectKey, error) {
	out, err := c.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(c.secretID)})
	if err != nil {
		return kandy.ProjectKey{}, fmt.Errorf("reading Kandy secret %q: %w", c.secretID, awsdep.Failure(awsdep.SecretsManager, err))
	}
	if out.SecretString == nil {
		return kandy.ProjectKey{}, fmt.Errorf("the Kandy secret %q: %w: it has no SecretString", c.secretID, ErrMalformed)
	}
	key, err := Parse(*out.SecretString)
	if err != nil {
		return kandy.ProjectKey{}, fmt.Errorf("the Kandy secret %q: %w", c.secretID, err)
	}
	c.key, c.fetched = key, c.now()
	return key, nil
}
