package localenv

import (
	"path/filepath"
	"strconv"

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
	script := CognitoLocalScript()
	if err := installed(script); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	return Start("cognito-local", addr, []string{"HOST=127.0.0.1", "PORT=" + strconv.Itoa(port)}, dir, "node", script)
}

// Cognito returns a Cognito user pools client for a local endpoint.
func Cognito(endpoint string) *cip.Client {
	return cip.New(cip.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
}
