package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/kandy"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/secrets"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/store"
)

// checkTimeout bounds each check, so one unreachable endpoint does not hide
// the others.
const checkTimeout = 15 * time.Second

// doctor checks what the functions need, one line per check, and exits
// non-zero if any check fails.
func (c cli) doctor(ctx context.Context, args []string) int {
	fs := c.flags("doctor")
	readConfig := c.serviceFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := readConfig()
	if err != nil {
		c.report("config", "", err)
		return 1
	}
	c.report("config", fmt.Sprintf("table %s, secret %s, Kandy %s", cfg.TableName, cfg.KandySecretID, cfg.KandyAPIURL), nil)
	awsCfg, ok := c.awsConfig(ctx, "doctor")
	if !ok {
		return 1
	}
	failed := 0
	check := func(name string, fn func(context.Context) (string, error)) {
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		defer cancel()
		detail, err := fn(cctx)
		if err != nil {
			failed++
		}
		c.report(name, detail, err)
	}

	keys := secrets.NewCache(secretsmanager.NewFromConfig(awsCfg), cfg.KandySecretID, 0)
	secretOK := false
	check("secret", func(ctx context.Context) (string, error) {
		if _, err := keys.ProjectKey(ctx); err != nil {
			return "", err
		}
		secretOK = true
		return cfg.KandySecretID + " is readable and holds a project key and secret", nil
	})
	check("kandy", func(ctx context.Context) (string, error) {
		if !secretOK {
			return "", errors.New("not tried: the secret check failed")
		}
		k, err := kandy.New(kandy.Options{BaseURL: cfg.KandyAPIURL, Keys: keys})
		if err != nil {
			return "", err
		}
		if err := k.Ping(ctx); err != nil {
			return "", err
		}
		return cfg.KandyAPIURL + " gave a domain access token for the project key", nil
	})
	check("table", func(ctx context.Context) (string, error) {
		return checkTable(ctx, dynamodb.NewFromConfig(awsCfg), cfg.TableName)
	})
	if cfg.KMSKeyID == "" {
		c.report("kms", "no key configured: credentials are stored without field encryption", nil)
	} else {
		check("kms", func(ctx context.Context) (string, error) {
			return checkKey(ctx, kms.NewFromConfig(awsCfg), cfg.KMSKeyID)
		})
	}
	check("trail", func(ctx context.Context) (string, error) {
		return checkTrail(ctx, cloudtrail.NewFromConfig(awsCfg), awsCfg.Region)
	})
	if failed > 0 {
		fmt.Fprintf(c.stdout, "%d check(s) failed\n", failed)
		return 1
	}
	return 0
}

// report prints one check's line.
func (c cli) report(name, detail string, err error) {
	if err != nil {
		fmt.Fprintf(c.stdout, "FAIL  %-7s %v\n", name, err)
		return
	}
	fmt.Fprintf(c.stdout, "ok    %-7s %s\n", name, detail)
}

// DescribeTableAPI is what the table check needs.
type DescribeTableAPI interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

// checkTable wants the table the template defines: ACTIVE, keyed by a
// string attribute KeyAttribute and nothing else.
func checkTable(ctx context.Context, api DescribeTableAPI, name string) (string, error) {
	out, err := api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("describing %s: %w", name, err)
	}
	t := out.Table
	if t.TableStatus != dbtypes.TableStatusActive && t.TableStatus != dbtypes.TableStatusUpdating {
		return "", fmt.Errorf("%s is %s", name, t.TableStatus)
	}
	types := map[string]dbtypes.ScalarAttributeType{}
	for _, a := range t.AttributeDefinitions {
		types[aws.ToString(a.AttributeName)] = a.AttributeType
	}
	if len(t.KeySchema) != 1 || aws.ToString(t.KeySchema[0].AttributeName) != store.KeyAttribute ||
		t.KeySchema[0].KeyType != dbtypes.KeyTypeHash || types[store.KeyAttribute] != dbtypes.ScalarAttributeTypeS {
		var got []string
		for _, k := range t.KeySchema {
			got = append(got, fmt.Sprintf("%s %s %s", aws.ToString(k.AttributeName), types[aws.ToString(k.AttributeName)], k.KeyType))
		}
		return "", fmt.Errorf("%s has key schema %v, want [%s S HASH]", name, got, store.KeyAttribute)
	}
	return fmt.Sprintf("%s is %s, keyed by %s (S, HASH)", name, t.TableStatus, store.KeyAttribute), nil
}

// DescribeKeyAPI is what the key check needs.
type DescribeKeyAPI interface {
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, opts ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
}

func checkKey(ctx context.Context, api DescribeKeyAPI, id string) (string, error) {
	out, err := api.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
	if err != nil {
		return "", fmt.Errorf("describing %s: %w", id, err)
	}
	m := out.KeyMetadata
	if !m.Enabled || m.KeyState != kmstypes.KeyStateEnabled {
		return "", fmt.Errorf("key %s is %s", id, m.KeyState)
	}
	if m.KeyUsage != kmstypes.KeyUsageTypeEncryptDecrypt {
		return "", fmt.Errorf("key %s is for %s, not ENCRYPT_DECRYPT", id, m.KeyUsage)
	}
	return fmt.Sprintf("%s is enabled for encryption", id), nil
}
