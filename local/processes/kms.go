package processes

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kandy-provisioner/kandy-provisioner/local/guard"
)

// StartKMS starts local-kms as backend b, keeping its keys in dataDir.
// `make tools` builds it from tools/cmd/local-kms.
func StartKMS(b guard.Backend, dataDir string) (*Process, error) {
	bin := filepath.Join(RepoRoot(), ".tools", "bin", "local-kms")
	if err := installed(bin); err != nil {
		return nil, err
	}
	env := append([]string{"KMS_DATA_PATH=" + dataDir, "KMS_REGION=us-east-1", "KMS_ACCOUNT_ID=111122223333"}, b.Env()...)
	return Start("local-kms", b.Socket, env, "", bin)
}

// KMS returns a client for a local KMS endpoint.
func KMS(endpoint string) *kms.Client { return KMSVia(endpoint, nil) }

// KMSVia returns a client for a local KMS endpoint that sends its
// requests with hc (nil: the SDK's own): a backend's client reaches it
// over its socket.
func KMSVia(endpoint string, hc *http.Client) *kms.Client {
	o := kms.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	}
	if hc != nil {
		o.HTTPClient = hc
	}
	return kms.New(o)
}

// CreateKey creates a symmetric key and returns its ARN.
func CreateKey(ctx context.Context, c *kms.Client) (string, error) {
	out, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("kandy-provisioner credentials")})
	if err != nil {
		return "", fmt.Errorf("creating a KMS key: %w", err)
	}
	return aws.ToString(out.KeyMetadata.Arn), nil
}

// KeyByAlias returns the ARN of the key alias (alias/…) names, creating
// the key and the alias if there is none yet: a key kept across restarts.
func KeyByAlias(ctx context.Context, c *kms.Client, alias string) (string, error) {
	out, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(alias)})
	if err == nil {
		return aws.ToString(out.KeyMetadata.Arn), nil
	}
	var missing *types.NotFoundException
	if !errors.As(err, &missing) {
		return "", fmt.Errorf("looking up %s: %w", alias, err)
	}
	arn, err := CreateKey(ctx, c)
	if err != nil {
		return "", err
	}
	if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(arn)}); err != nil {
		return "", fmt.Errorf("creating %s: %w", alias, err)
	}
	return arn, nil
}
