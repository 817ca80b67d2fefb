package processes

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kandy-provisioner/kandy-provisioner/local/guard"
)

// StartKMS starts local-kms on a loopback port (0: a free one), keeping
// its keys in dataDir. `make tools` builds it from tools/cmd/local-kms,
// which serves on 127.0.0.1 only.
func StartKMS(dataDir string, port int) (*Process, error) {
	return startKMS(dataDir, port, "")
}

// StartKMSForFront starts local-kms as StartKMS does, on a free port,
// answering only requests with token (see guard.Backend).
func StartKMSForFront(dataDir, token string) (*Process, error) {
	return startKMS(dataDir, 0, token)
}

func startKMS(dataDir string, port int, token string) (*Process, error) {
	bin := filepath.Join(RepoRoot(), ".tools", "bin", "local-kms")
	if err := installed(bin); err != nil {
		return nil, err
	}
	port, err := portOrFree(port)
	if err != nil {
		return nil, err
	}
	env := []string{"PORT=" + strconv.Itoa(port), "KMS_DATA_PATH=" + dataDir, "KMS_REGION=us-east-1", "KMS_ACCOUNT_ID=111122223333"}
	if token != "" {
		env = append(env, guard.TokenEnv+"="+token)
	}
	return Start("local-kms", "127.0.0.1:"+strconv.Itoa(port), env, "", bin)
}

// KMS returns a client for a local KMS endpoint.
func KMS(endpoint string) *kms.Client {
	return kms.New(kms.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
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
