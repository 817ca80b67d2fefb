package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/config"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/fieldcrypt"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/store"
)

// decrypt prints a user's Kandy password and user API secret. It needs
// kms:Decrypt on the credentials key, which the functions never have.
func (c cli) decrypt(ctx context.Context, args []string) int {
	fs := c.flags("decrypt")
	sub := fs.String("sub", "", "the user's Cognito sub")
	table := fs.String("table", c.getenv(config.EnvTableName), "the accounts table (default $TABLE_NAME)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *sub == "" || *table == "" {
		fmt.Fprintln(c.stderr, "decrypt: --sub and --table (or TABLE_NAME) are required")
		return 2
	}
	cfg, ok := c.awsConfig(ctx, "decrypt")
	if !ok {
		return 1
	}
	rec, err := store.NewAccounts(dynamodb.NewFromConfig(cfg), *table).Get(ctx, *sub)
	switch {
	case errors.Is(err, provision.ErrNotProvisioned):
		fmt.Fprintln(c.stderr, "decrypt: no account for that sub")
		return 1
	case err != nil:
		fmt.Fprintln(c.stderr, "decrypt:", err)
		return 1
	case !rec.Decryptable():
		fmt.Fprintln(c.stderr, "decrypt: the account is still being provisioned")
		return 1
	}
	secrets, err := fieldcrypt.Open(ctx, kms.NewFromConfig(cfg), *table, *sub, rec.UserPassword)
	if err != nil {
		fmt.Fprintln(c.stderr, "decrypt:", err)
		return 1
	}
	out, _ := json.Marshal(struct {
		UserID     string `json:"user_id"`
		FullUserID string `json:"full_user_id"`
		UserAPIKey string `json:"user_api_key"`
		fieldcrypt.Secrets
	}{rec.UserID, rec.FullUserID, rec.UserAPIKey, secrets})
	fmt.Fprintln(c.stdout, string(out))
	return 0
}
