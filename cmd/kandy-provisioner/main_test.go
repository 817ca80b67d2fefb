package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kandy-provisioner/kandy-provisioner/internal/fakesecrets"
	"github.com/kandy-provisioner/kandy-provisioner/internal/localenv"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/fieldcrypt"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/kandy/kandysim"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/store"
)

// The commands run against real local servers: dynalite, local-kms and
// cognito-local, with the Kandy simulator and a GetSecretValue fake.
var stack struct {
	env     map[string]string
	db      *dynamodb.Client
	kms     *kms.Client
	keyARN  string
	sim     *kandysim.Sim
	secrets *fakesecrets.Server
	cognito string
}

const table = "accounts"

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	ctx := context.Background()
	dyn, err := localenv.StartDynalite()
	if err != nil {
		return 1, err
	}
	defer dyn.Stop()
	dir, err := os.MkdirTemp("", "kandy-provisioner-cli")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)
	k, err := localenv.StartKMS(dir)
	if err != nil {
		return 1, err
	}
	defer k.Stop()
	cog, err := localenv.StartCognitoLocal(dir)
	if err != nil {
		return 1, err
	}
	defer cog.Stop()
	stack.cognito = "http://" + cog.Addr
	stack.db = localenv.DynamoDB("http://" + dyn.Addr)
	if err := localenv.CreateTable(ctx, stack.db, table); err != nil {
		return 1, err
	}
	stack.kms = localenv.KMS("http://" + k.Addr)
	if stack.keyARN, err = localenv.CreateKey(ctx, stack.kms); err != nil {
		return 1, err
	}
	stack.sim = kandysim.New(kandysim.Options{Quota: 100_000})
	simSrv := httptest.NewServer(stack.sim)
	defer simSrv.Close()
	key, secret := stack.sim.ProjectKey()
	good, _ := json.Marshal(map[string]string{"project_api_key": key, "project_api_secret": secret})
	wrong, _ := json.Marshal(map[string]string{"project_api_key": "DAK0000000000000000", "project_api_secret": "DAS0000000000000000"})
	stack.secrets = fakesecrets.New(map[string]string{
		"kandy": string(good), "kandy-wrong-key": string(wrong), "kandy-malformed": `{"project_api_key":`,
	})
	smSrv := httptest.NewServer(stack.secrets)
	defer smSrv.Close()
	stack.env = map[string]string{
		"TABLE_NAME": table, "KANDY_SECRET_ID": "kandy", "KANDY_API_URL": simSrv.URL + "/v1.2", "KMS_KEY_ID": stack.keyARN,
		"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_ENDPOINT_URL_DYNAMODB": "http://" + dyn.Addr, "AWS_ENDPOINT_URL_KMS": "http://" + k.Addr,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": smSrv.URL, "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER": stack.cognito,
	}
	return m.Run(), nil
}

// cmd runs the tool as an operator would, in the stack's environment; the
// AWS SDK reads its variables from the process.
func cmd(t *testing.T, extra map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	env := map[string]string{}
	for k, v := range stack.env {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestDecrypt(t *testing.T) {
	ctx := context.Background()
	acc := store.NewAccounts(stack.db, table)
	now := time.Now()
	sub := fmt.Sprintf("sub-%d", now.UnixNano())
	c := provision.Claim{Sub: sub, UserID: "xsub1", Token: "t", Now: now, ExpiresAt: now.Add(time.Minute)}
	if _, ok, err := acc.Claim(ctx, c); err != nil || !ok {
		t.Fatal(ok, err)
	}
	sealed, err := fieldcrypt.NewSealer(stack.kms, stack.keyARN, table).Seal(ctx, sub, provision.Credentials{
		FullUserID: "xsub1@d", UserAPIKey: "UAKk", UserPassword: "pw12abc", UserAPISecret: "UASsecret"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acc.Finalize(ctx, c, sealed); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := cmd(t, nil, "decrypt", "--sub", sub)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(out), &got); err != nil || got["user_password"] != "pw12abc" || got["user_api_secret"] != "UASsecret" || got["user_id"] != "xsub1" {
		t.Fatalf("output %s, %v", out, err)
	}
	for _, args := range [][]string{{"decrypt", "--sub", "nobody"}, {"decrypt"}, {"nonsense"}, {}} {
		if code, _, errOut := cmd(t, nil, args...); code == 0 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	if code, _, errOut := cmd(t, nil, "nonsense"); code != 2 || !strings.Contains(errOut, "usage") {
		t.Errorf("unknown command: exit %d, %s", code, errOut)
	}
}
