package secrets

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/kandy"
)

func kandyKey(key, secret string) kandy.ProjectKey {
	return kandy.ProjectKey{APIKey: key, APISecret: secret}
}

type fakeSM struct {
	value *string
	err   error
	calls atomic.Int32
}

func (f *fakeSM) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.calls.Add(1)
	if f.err != nil {
		return nil, f.err
	}
	return &secretsmanager.GetSecretValueOutput{Name: in.SecretId, SecretString: f.value}, nil
}

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string // "" for success
	}{
		{`{"project_api_key":"DAKabc","project_api_secret":"DASxyz"}`, ""},
		{` {"project_api_key":" DAKabc ","project_api_secret":"DASxyz","extra":1} `, ""},
		{``, "not a JSON object"},
		{`DAKabc:DASxyz`, "not a JSON object"},
		{`[]`, "not a JSON object"},
		{`{}`, "field project_api_key and project_api_secret is missing"},
		{`{"project_api_key":"DAKabc"}`, "field project_api_secret is missing"},
		{`{"project_api_secret":"DASxyz"}`, "field project_api_key is missing"},
		{`{"project_api_key":"","project_api_secret":"DASxyz"}`, "field project_api_key is missing"},
		{`{"project_api_key":42,"project_api_secret":"DASxyz"}`, "not a JSON object"},
		{`{"project_api_key":"DAKabc","project_api_secret":"DASxyz"} trailing`, "data after"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			k, err := Parse(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if k.APIKey != "DAKabc" {
					t.Errorf("key %q, want %q", k.APIKey, "DAKabc")
				}
				if k.APISecret != "DASxyz" {
					t.Errorf("secret %q, want %q", k.APISecret, "DASxyz")
				}
				return
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want it to say %q", err, tt.wantErr)
			}
			for _, v := range []string{"DAKabc", "DASxyz", "42"} {
				if strings.Contains(err.Error(), v) {
					t.Fatalf("error %q leaks %q", err, v)
				}
			}
		})
	}
}

func TestCacheReadsOncePerTTL(t *testing.T) {
	f := &fakeSM{value: aws.String(`{"project_api_key":"DAKabc","project_api_secret":"DASxyz"}`)}
	c := NewCache(f, "kandy", time.Minute)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.ProjectKey(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("reads = %d, want 1", n)
	}
	now = now.Add(59 * time.Second)
	_, _ = c.ProjectKey(context.Background())
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("reads before TTL = %d, want 1", n)
	}
	now = now.Add(2 * time.Second)
	_, _ = c.ProjectKey(context.Background())
	if n := f.calls.Load(); n != 2 {
		t.Fatalf("reads after TTL = %d, want 2", n)
	}
}

// A rotated secret is read again at once, past the TTL, by one of the
// callers that met the refusal; the others take what it read. A refresh
// of a key that is no longer the cached one reads nothing.
func TestRefreshReadsOnceForAllWhoMetTheRefusal(t *testing.T) {
	f := &fakeSM{value: aws.String(`{"project_api_key":"DAKold","project_api_secret":"DASold"}`)}
	c := NewCache(f, "kandy", time.Hour)
	ctx := context.Background()
	stale, err := c.ProjectKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.value = aws.String(`{"project_api_key":"DAKnew","project_api_secret":"DASnew"}`)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if k, err := c.RefreshProjectKey(ctx, stale); err != nil || k.APIKey != "DAKnew" {
				t.Errorf("refresh = %+v, %v; want the new key", k, err)
			}
		}()
	}
	wg.Wait()
	if n := f.calls.Load(); n != 2 {
		t.Fatalf("reads = %d, want 2: the first, and one refresh for all", n)
	}
	if k, _ := c.ProjectKey(ctx); k.APIKey != "DAKnew" {
		t.Errorf("cached %s after the refresh, want DAKnew", k.APIKey)
	}
	f.err = errors.New("throttled")
	if k, err := c.RefreshProjectKey(ctx, stale); err != nil || k.APIKey != "DAKnew" || f.calls.Load() != 2 {
		t.Errorf("a refresh of a key already replaced = %+v, %v after %d reads; want the cached key, no read", k, err, f.calls.Load())
	}
	if _, err := c.RefreshProjectKey(ctx, kandyKey("DAKnew", "DASnew")); err == nil {
		t.Error("a failed refresh answered no error")
	}
}

func TestCacheErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := NewCache(&fakeSM{err: errors.New("AccessDenied")}, "kandy", 0).ProjectKey(ctx); err == nil {
		t.Fatal("a refused read gave a key")
	} else if !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("err = %v, want it to name AccessDenied", err)
	}
	if _, err := NewCache(&fakeSM{}, "kandy", 0).ProjectKey(ctx); !errors.Is(err, ErrMalformed) {
		t.Fatalf("binary-only secret: err = %v", err)
	}
	bad := &fakeSM{value: aws.String(`{"project_api_key":"DAKabc"}`)}
	c := NewCache(bad, "kandy", 0)
	if _, err := c.ProjectKey(ctx); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	} else if strings.Contains(err.Error(), "DAKabc") {
		t.Fatalf("err = %v shows the key", err)
	}
	if _, err := c.ProjectKey(ctx); err == nil {
		t.Fatal("a malformed secret was accepted the second time")
	}
	if n := bad.calls.Load(); n != 2 {
		t.Fatalf("a malformed secret must not be cached: calls = %d, want 2", n)
	}
}
