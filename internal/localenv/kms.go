package localenv

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// StartKMS starts local-kms on a loopback port (0: a free one), keeping
// its keys in dataDir.
func StartKMS(dataDir string, port int) (*Process, error) {
	bin := filepath.Join(RepoRoot(), ".tools", "bin", "local-kms")
	if err := installed(bin); err != nil {
		return nil, err
	}
	port, err := portOrFree(port)
	if err != nil {
		return nil, err
	}
	env := []string{"PORT=" + strconv.Itoa(port), "KMS_DATA_PATH=" + dataDir, "KMS_REGION=us-east-1",
		"KMS_ACCOUNT_ID=111122223333", "KMS_SEED_PATH=" + filepath.Join(dataDir, "no-seed.yaml")}
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
