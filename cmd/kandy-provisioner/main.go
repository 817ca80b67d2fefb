// Command kandy-provisioner is the operators' tool.
//
//	kandy-provisioner decrypt --sub SUB [--table NAME]
//
// prints a user's Kandy password and user API secret. It needs kms:Decrypt
// on the credentials key, which the functions never have.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/fieldcrypt"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/store"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

const usage = `usage: kandy-provisioner decrypt --sub SUB [--table NAME]

decrypt  print a user's Kandy credentials (needs kms:Decrypt on the key)
         --table defaults to $TABLE_NAME
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "decrypt" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("decrypt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sub := fs.String("sub", "", "the user's Cognito sub")
	table := fs.String("table", getenv("TABLE_NAME"), "the accounts table")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *sub == "" || *table == "" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "decrypt: loading AWS configuration:", err)
		return 1
	}
	rec, err := store.NewAccounts(dynamodb.NewFromConfig(cfg), *table).Get(ctx, *sub)
	switch {
	case errors.Is(err, provision.ErrNotProvisioned):
		fmt.Fprintln(stderr, "decrypt: no account for that sub")
		return 1
	case err != nil:
		fmt.Fprintln(stderr, "decrypt:", err)
		return 1
	case rec.Status != provision.StatusActive:
		fmt.Fprintln(stderr, "decrypt: the account is still being provisioned")
		return 1
	}
	secrets, err := fieldcrypt.Open(ctx, kms.NewFromConfig(cfg), *table, *sub, rec.UserPassword)
	if err != nil {
		fmt.Fprintln(stderr, "decrypt:", err)
		return 1
	}
	out, _ := json.Marshal(struct {
		UserID     string `json:"user_id"`
		FullUserID string `json:"full_user_id"`
		UserAPIKey string `json:"user_api_key"`
		fieldcrypt.Secrets
	}{rec.UserID, rec.FullUserID, rec.UserAPIKey, secrets})
	fmt.Fprintln(stdout, string(out))
	return 0
}
