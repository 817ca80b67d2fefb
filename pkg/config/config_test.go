package config

import (
	"errors"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnv(t *testing.T) {
	c, err := FromEnv(env(map[string]string{EnvTableName: "t", EnvKandySecretID: "s"}))
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if want := (Config{TableName: "t", KandySecretID: "s", KandyAPIURL: DefaultKandyAPIURL, DefaultCountryCode: "US"}); c != want {
		t.Errorf("defaults\n got %+v\nwant %+v", c, want)
	}
	c, err = FromEnv(env(map[string]string{EnvTableName: "t", EnvKandySecretID: "s", EnvKandyAPIURL: "http://127.0.0.1:9/v1.2", EnvDefaultCountryCode: "+44"}))
	if err != nil {
		t.Fatalf("overrides: %v", err)
	}
	if want := "http://127.0.0.1:9/v1.2"; c.KandyAPIURL != want {
		t.Errorf("overrides: Kandy API URL %q, want %q", c.KandyAPIURL, want)
	}
	if c.DefaultCountryCode != "+44" {
		t.Errorf("overrides: default country code %q, want %q", c.DefaultCountryCode, "+44")
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

// Each function reads the variables its spec names, every one of them and
// no other: the template tests compare the deployed environment with them.
func TestEachFunctionReadsExactlyItsVariables(t *testing.T) {
	full := map[string]string{}
	for _, s := range Functions() {
		for _, v := range s.Vars {
			full[v] = "x"
		}
	}
	full[EnvKandyAPIURL], full[EnvDefaultCountryCode] = "https://kandy.example", "US"
	for _, s := range Functions() {
		read := map[string]int{}
		if _, err := s.Load(func(k string) string { read[k]++; return full[k] }); err != nil {
			t.Fatalf("%s: %v", s.Function, err)
		}
		if len(read) != len(s.Vars) {
			t.Errorf("%s read %v, its spec names %v", s.Function, read, s.Vars)
		}
		for _, v := range s.Vars {
			if read[v] != 1 {
				t.Errorf("%s read %s %d times, want once", s.Function, v, read[v])
			}
		}
	}
}

func TestEachFunctionRequiresWhatItCannotDoWithout(t *testing.T) {
	want := map[string][]string{
		"ApiFunction":              {EnvTableName, EnvKandySecretID},
		"PostConfirmationFunction": {EnvTableName, EnvKandySecretID},
		"RetryFunction":            {EnvTableName, EnvKandySecretID, EnvRetryQueueURL, EnvDeadLetterQueueURL},
		"DeprovisionFunction":      {EnvTableName, EnvKandySecretID},
		"ReconcileFunction":        {EnvTableName, EnvKandySecretID, EnvUserPoolID},
	}
	for _, s := range Functions() {
		if strings.Join(s.Required, ",") != strings.Join(want[s.Function], ",") {
			t.Errorf("%s requires %v, want %v", s.Function, s.Required, want[s.Function])
		}
		for _, r := range s.Required {
			env := map[string]string{}
			for _, v := range s.Vars {
				env[v] = "x"
			}
			delete(env, EnvKandyAPIURL)
			delete(env, EnvDefaultCountryCode)
			delete(env, r)
			_, err := s.Load(func(k string) string { return env[k] })
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%s without %s: err %v, want ErrInvalid", s.Function, r, err)
				continue
			}
			if want := "invalid configuration: missing required environment variable " + r; !strings.Contains(err.Error(), want) {
				t.Errorf("%s without %s: err %v, want it to say %q", s.Function, r, err, want)
			}
		}
	}
}

func TestRetryQueuesAreReadOnlyByTheirFunctions(t *testing.T) {
	env := map[string]string{EnvTableName: "t", EnvKandySecretID: "s", EnvRetryQueueURL: "q", EnvDeadLetterQueueURL: "d"}
	api, _ := API.Load(func(k string) string { return env[k] })
	trig, _ := PostConfirmation.Load(func(k string) string { return env[k] })
	retry, err := Retry.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	for _, q := range []struct{ name, got, want string }{
		{"API's retry queue", api.RetryQueueURL, ""},
		{"API's dead-letter queue", api.DeadLetterQueueURL, ""},
		{"trigger's retry queue", trig.RetryQueueURL, "q"},
		{"trigger's dead-letter queue", trig.DeadLetterQueueURL, ""},
		{"retry worker's dead-letter queue", retry.DeadLetterQueueURL, "d"},
		{"retry worker's retry queue", retry.RetryQueueURL, "q"},
	} {
		if q.got != q.want {
			t.Errorf("%s %q, want %q", q.name, q.got, q.want)
		}
	}
}

func TestUnknownVariableInASpec(t *testing.T) {
	_, err := Spec{Function: "X", Vars: []string{"NOT_A_SETTING"}}.Load(func(string) string { return "" })
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	if !strings.Contains(err.Error(), "NOT_A_SETTING") {
		t.Errorf("err = %v, want it to name NOT_A_SETTING", err)
	}
}
