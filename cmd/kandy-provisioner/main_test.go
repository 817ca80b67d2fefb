package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/internal/localenv"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/fieldcrypt"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/store"
)

func TestDecrypt(t *testing.T) {
	ctx := context.Background()
	dyn, err := localenv.StartDynalite()
	if err != nil {
		t.Fatal(err)
	}
	defer dyn.Stop()
	k, err := localenv.StartKMS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop()
	db := localenv.DynamoDB("http://" + dyn.Addr)
	if err := localenv.CreateTable(ctx, db, "accounts"); err != nil {
		t.Fatal(err)
	}
	kc := localenv.KMS("http://" + k.Addr)
	key, err := localenv.CreateKey(ctx, kc)
	if err != nil {
		t.Fatal(err)
	}
	// Store a sealed record as the functions do.
	acc := store.NewAccounts(db, "accounts")
	now := time.Now()
	c := provision.Claim{Sub: "sub-1", UserID: "xsub1", Token: "t", Now: now, ExpiresAt: now.Add(time.Minute)}
	if _, ok, err := acc.Claim(ctx, c); err != nil || !ok {
		t.Fatal(ok, err)
	}
	sealed, err := fieldcrypt.NewSealer(kc, key, "accounts").Seal(ctx, "sub-1", provision.Credentials{
		FullUserID: "xsub1@d", UserAPIKey: "UAKk", UserPassword: "pw12abc", UserAPISecret: "UASsecret"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acc.Finalize(ctx, c, sealed); err != nil {
		t.Fatal(err)
	}

	env := map[string]string{
		"TABLE_NAME": "accounts", "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
		"AWS_ENDPOINT_URL_DYNAMODB": "http://" + dyn.Addr, "AWS_ENDPOINT_URL_KMS": "http://" + k.Addr,
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"decrypt", "--sub", "sub-1"}, func(k string) string { return env[k] }, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var got map[string]string
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got["user_password"] != "pw12abc" || got["user_api_secret"] != "UASsecret" || got["user_id"] != "xsub1" {
		t.Fatalf("output %s, %v", out.String(), err)
	}
	for _, args := range [][]string{{"decrypt", "--sub", "nobody"}, {"decrypt"}, {"nonsense"}} {
		errOut.Reset()
		if code := run(ctx, args, func(k string) string { return env[k] }, &out, &errOut); code == 0 || errOut.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut.String())
		}
	}
	if !strings.Contains(errOut.String(), "usage") {
		t.Errorf("no usage: %s", errOut.String())
	}
}
