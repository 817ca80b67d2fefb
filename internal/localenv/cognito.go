package localenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

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
	return StartCognitoLocalWith(dir, 0, nil)
}

// StartCognitoLocalWith runs cognito-local on a loopback port (0: a free
// one), its pools under dir/.cognito (it always uses ./.cognito), and
// config, if not nil, as its .cognito/config.json: Lambda client,
// trigger functions, token settings.
func StartCognitoLocalWith(dir string, port int, config any) (*Process, error) {
	if config != nil {
		raw, err := json.MarshalIndent(config, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Join(dir, ".cognito"), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, ".cognito", "config.json"), raw, 0o600); err != nil {
			return nil, fmt.Errorf("writing cognito-local's configuration: %w", err)
		}
	}
	return startNode("cognito-local", CognitoLocalScript(), dir, port, func(port string) ([]string, []string) {
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

var (
	ansiEscape  = regexp.MustCompile(`\x1b\[[0-9;]*m`)
	codeField   = regexp.MustCompile(`^[│|]?\s*(Destination|Code):\s+(\S+)`)
	codeDivider = regexp.MustCompile(`[│|]\s*$`)
)

// ConfirmationCodes reads cognito-local's output, where it "sends" each
// confirmation code in a box naming the destination, and calls Found with
// each destination and code. Use it with Process.Follow.
type ConfirmationCodes struct {
	Found       func(destination, code string)
	partial     []byte
	destination string
}

func (c *ConfirmationCodes) Write(p []byte) (int, error) {
	c.partial = append(c.partial, p...)
	for {
		line, rest, ok := bytes.Cut(c.partial, []byte("\n"))
		if !ok {
			return len(p), nil
		}
		c.partial = rest
		c.line(strings.TrimSpace(codeDivider.ReplaceAllString(ansiEscape.ReplaceAllString(string(line), ""), "")))
	}
}

func (c *ConfirmationCodes) line(s string) {
	m := codeField.FindStringSubmatch(s)
	switch {
	case m == nil:
	case m[1] == "Destination":
		c.destination = m[2]
	case m[1] == "Code" && c.destination != "":
		c.Found(c.destination, m[2])
		c.destination = ""
	}
}
