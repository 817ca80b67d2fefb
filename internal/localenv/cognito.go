package localenv

import (
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
)

// CognitoLocalScript is cognito-local's entry point, installed by `make tools`.
func CognitoLocalScript() string {
	return filepath.Join(RepoRoot(), "tools", "node_modules", "cognito-local", "lib", "bin", "start.js")
}

// StartCognitoLocal runs cognito-local on a free loopback port. It keeps
// its pools under dir.
func StartCognitoLocal(dir string) (*Process, error) {
	return startNode("cognito-local", CognitoLocalScript(), dir, 0, func(port string) ([]string, []string) {
		return []string{"HOST=127.0.0.1", "PORT=" + port}, nil
	})
}

// Cognito returns a Cognito user pools client for a local endpoint.
func Cognito(endpoint string) *cip.Client {
	return cip.New(cip.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
}
