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
)

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
