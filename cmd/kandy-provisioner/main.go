// Command kandy-provisioner is the operators' tool.
//
//	kandy-provisioner backfill --user-pool-id ID [flags]
//	kandy-provisioner reconcile --user-pool-id ID [--fix CLASSES] [flags]
//	kandy-provisioner doctor [flags]
//	kandy-provisioner decrypt --sub SUB [--table NAME]
//
// It reads the functions' configuration (TABLE_NAME, KANDY_SECRET_ID,
// KANDY_API_URL, KMS_KEY_ID, ...) from the environment, or from flags, and
// AWS credentials from the SDK's default chain: profiles, SSO, roles.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/config"
)

func main() {
	// The first Ctrl-C asks the command to stop, and work under way is
	// finished; the second one ends the process at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }()
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: kandy-provisioner COMMAND [flags]

backfill  give every confirmed user of a Cognito user pool a Kandy account
          --user-pool-id ID (required), --concurrency, --rate, --dry-run,
          --restart, --progress; kandy-provisioner backfill -h for all
reconcile compare the user pool, the table and Kandy, report every
          difference by class, and repair the classes --fix names
          (missing, gone, orphan, stale, broken); kandy-provisioner
          reconcile -h for all
doctor    check a deployment's configuration: the secret, Kandy, the table,
          the KMS key; one line per check
decrypt   print a user's Kandy credentials (needs kms:Decrypt on the key)
          --sub SUB (required), --table NAME

The configuration comes from the functions' variables (TABLE_NAME,
KANDY_SECRET_ID, KANDY_API_URL, KANDY_DEFAULT_COUNTRY_CODE, KMS_KEY_ID) or
from the flags of the same meaning. AWS credentials come from the SDK's
default chain (AWS_PROFILE, SSO, environment, instance roles).
`

// cli is what every command writes to.
type cli struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	c := cli{getenv: getenv, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "backfill":
		return c.backfill(ctx, args[1:])
	case "reconcile":
		return c.reconcile(ctx, args[1:])
	case "doctor":
		return c.doctor(ctx, args[1:])
	case "decrypt":
		return c.decrypt(ctx, args[1:])
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "kandy-provisioner: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

// flags returns a FlagSet that reports its errors to stderr.
func (c cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	return fs
}

// serviceFlags adds the functions' configuration as flags, each defaulting
// to its environment variable, and returns a reader that validates it the
// way the functions do.
func (c cli) serviceFlags(fs *flag.FlagSet) func() (config.Config, error) {
	vals := map[string]*string{}
	for _, f := range []struct{ flag, env, help string }{
		{"table", config.EnvTableName, "the accounts table"},
		{"secret-id", config.EnvKandySecretID, "the Secrets Manager secret with the Kandy project key"},
		{"kandy-url", config.EnvKandyAPIURL, "Kandy's base URL"},
		{"country", config.EnvDefaultCountryCode, "the country code of new Kandy users"},
		{"kms-key-id", config.EnvKMSKeyID, "the key that seals stored credentials (the stack's CredentialsKeyArn)"},
	} {
		vals[f.env] = fs.String(f.flag, c.getenv(f.env), fmt.Sprintf("%s (default $%s)", f.help, f.env))
	}
	return func() (config.Config, error) {
		return config.FromEnv(func(k string) string {
			if v, ok := vals[k]; ok {
				return *v
			}
			return ""
		})
	}
}

// awsConfig loads the operator's AWS configuration.
func (c cli) awsConfig(ctx context.Context, cmd string) (aws.Config, bool) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintf(c.stderr, "%s: loading AWS configuration: %v\n", cmd, err)
		return aws.Config{}, false
	}
	return cfg, true
}
