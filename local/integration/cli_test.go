package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/local/internal/fakecloudtrail"
	"github.com/kandy-provisioner/kandy-provisioner/local/localrun"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/fieldcrypt"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/store"
)

// The commands run against real local servers: dynalite, local-kms and
// cognito-local, with the Kandy simulator and a GetSecretValue fake.
var stack struct {
	*localrun.Stack
	env    map[string]string
	sim    *localrun.Kandy
	trails *fakecloudtrail.Server
}

const table = "accounts"

// The exit statuses of kandy-provisioner reconcile.
const (
	inAgreement  = 0
	driftRemains = 1
	failed       = 2
)

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// tool is the operators' tool, built once for the package.
var tool string

func buildTool() error {
	dir, err := os.MkdirTemp("", "kandy-provisioner-cli")
	if err != nil {
		return err
	}
	tool = filepath.Join(dir, "kandy-provisioner")
	build := exec.Command("go", "build", "-o", tool, "./cmd/kandy-provisioner")
	build.Dir = processes.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building the operators' tool: %v\n%s", err, out)
	}
	return nil
}

func setup(m *testing.M) (int, error) {
	s, err := localrun.Start(context.Background(), localrun.Options{Table: table, SecretID: "kandy", KandyQuota: 100_000, Cognito: true})
	if err != nil {
		return 1, err
	}
	defer s.Stop()
	if err := buildTool(); err != nil {
		return 1, err
	}
	defer os.RemoveAll(filepath.Dir(tool))
	stack.Stack, stack.sim, db = s, s.Kandy, s.DB
	wrong, _ := json.Marshal(map[string]string{"project_api_key": "DAK0000000000000000", "project_api_secret": "DAS0000000000000000"})
	s.Secrets.Put("kandy-wrong-key", string(wrong))
	s.Secrets.Put("kandy-malformed", `{"project_api_key":`)
	stack.trails = &fakecloudtrail.Server{}
	stack.trails.Set(loggingTrail)
	trailsURL, err := s.Serve(0, stack.trails)
	if err != nil {
		return 1, err
	}
	stack.env = map[string]string{"AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER": s.CognitoURL,
		"AWS_ENDPOINT_URL_CLOUDTRAIL": trailsURL}
	for _, e := range s.Env() {
		k, v, _ := strings.Cut(e, "=")
		stack.env[k] = v
	}
	return m.Run(), nil
}

// cmd runs the tool as an operator would, in the stack's environment and
// nothing of this process's but PATH and HOME.
func cmd(t *testing.T, extra map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	env := map[string]string{"PATH": os.Getenv("PATH"), "HOME": t.TempDir()}
	maps.Copy(env, stack.env)
	maps.Copy(env, extra)
	c := exec.Command(tool, args...)
	for k, v := range env {
		c.Env = append(c.Env, k+"="+v)
	}
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err := c.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running %v: %v", args, err)
	}
	return code, out.String(), errOut.String()
}

// expectContains reports each of subs that s, named by what, lacks.
func expectContains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s lacks %q:\n%s", what, sub, s)
		}
	}
}

func TestDecrypt(t *testing.T) {
	ctx := context.Background()
	acc := store.NewAccounts(stack.DB, table)
	now := time.Now()
	sub := fmt.Sprintf("sub-%d", now.UnixNano())
	c := provision.Claim{Sub: sub, UserID: "xsub1", Token: "t", Now: now, ExpiresAt: now.Add(time.Minute)}
	if _, ok, err := acc.Claim(ctx, c); err != nil || !ok {
		t.Fatal(ok, err)
	}
	sealed, err := fieldcrypt.NewSealer(stack.KMS, stack.KeyARN, table).Seal(ctx, sub, provision.Credentials{
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
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output %s, %v", out, err)
	}
	for k, want := range map[string]string{"user_id": "xsub1", "user_password": "pw12abc", "user_api_secret": "UASsecret"} {
		if got[k] != want {
			t.Errorf("%s %q, want %q", k, got[k], want)
		}
	}
	for _, args := range [][]string{{"decrypt", "--sub", "nobody"}, {"decrypt"}, {"nonsense"}, {}} {
		code, _, errOut := cmd(t, nil, args...)
		if code == 0 {
			t.Errorf("%v: exit 0, want a failure", args)
		}
		if errOut == "" {
			t.Errorf("%v: nothing on stderr", args)
		}
	}
	code, _, errOut = cmd(t, nil, "nonsense")
	if code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	expectContains(t, "unknown command's stderr", errOut, "usage")
}
