package localenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
)

// RIEPath is where `make tools` builds the Lambda Runtime Interface Emulator.
func RIEPath() string { return filepath.Join(RepoRoot(), ".tools", "bin", "aws-lambda-rie") }

// BootstrapPath is where `make build` writes a function's binary.
func BootstrapPath(logicalID string) string {
	return filepath.Join(RepoRoot(), "bin", logicalID, "bootstrap")
}

// Function is one built bootstrap running under aws-lambda-rie, as Lambda
// and `sam local invoke` run it.
type Function struct {
	*Process
	client *http.Client
}

// StartFunction runs bin/<logicalID>/bootstrap under the emulator with env
// added to this process's environment.
func StartFunction(logicalID string, env []string) (*Function, error) {
	if err := installed(RIEPath()); err != nil {
		return nil, err
	}
	if _, err := os.Stat(BootstrapPath(logicalID)); err != nil {
		return nil, fmt.Errorf("%s is missing: run `make build` (make test does)", BootstrapPath(logicalID))
	}
	invokePort, err := FreePort()
	if err != nil {
		return nil, err
	}
	runtimePort, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(invokePort)
	env = append([]string{"AWS_LAMBDA_FUNCTION_NAME=" + logicalID, "LOG_LEVEL=error"}, env...)
	p, err := Start(logicalID, addr, env, filepath.Dir(BootstrapPath(logicalID)), RIEPath(),
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(runtimePort),
		BootstrapPath(logicalID))
	if err != nil {
		return nil, err
	}
	return &Function{Process: p, client: &http.Client{}}, nil
}

// Invoke sends one event and returns the function's answer.
func (f *Function) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		"http://"+f.Addr+"/2015-03-31/functions/function/invocations", bytes.NewReader(event))
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoking %s: %w", f.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("invoking %s: HTTP %d: %s", f.Name, resp.StatusCode, body)
	}
	return body, nil
}
