package config

import (
	"errors"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnv(t *testing.T) {
	c, err := FromEnv(env(map[string]string{EnvTableName: "t", EnvKandySecretID: "s"}))
	if err != nil || c != (Config{TableName: "t", KandySecretID: "s", KandyAPIURL: DefaultKandyAPIURL, DefaultCountryCode: "US"}) {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	c, err = FromEnv(env(map[string]string{EnvTableName: "t", EnvKandySecretID: "s", EnvKandyAPIURL: "http://127.0.0.1:9/v1.2", EnvDefaultCountryCode: "+44"}))
	if err != nil || c.KandyAPIURL != "http://127.0.0.1:9/v1.2" || c.DefaultCountryCode != "+44" {
		t.Fatalf("overrides: %+v, %v", c, err)
	}
}

func TestFromEnvErrors(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{EnvKandySecretID: "s"}, []string{"missing required environment variable TABLE_NAME"}},
		{map[string]string{EnvTableName: "t"}, []string{"missing required environment variable KANDY_SECRET_ID"}},
		{map[string]string{}, []string{"TABLE_NAME", "KANDY_SECRET_ID"}},
		{map[string]string{EnvTableName: "t", EnvKandySecretID: "s", EnvKandyAPIURL: "api.kandy.io"}, []string{"KANDY_API_URL"}},
		{map[string]string{EnvTableName: "t", EnvKandySecretID: "s", EnvDefaultCountryCode: "usa"}, []string{"KANDY_DEFAULT_COUNTRY_CODE"}},
	}
	for _, tt := range tests {
		_, err := FromEnv(env(tt.env))
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("%v: err = %v", tt.env, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q lacks %q", tt.env, err, w)
			}
		}
	}
}
