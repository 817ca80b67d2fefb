package processes

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/local/guard"
)

// RIEPath is where `make tools` builds the Lambda Runtime Interface Emulator.
func RIEPath() string { return filepath.Join(RepoRoot(), ".tools", "bin", "aws-lambda-rie") }

// BootstrapPath is where `make build` writes a function's binary.
func BootstrapPath(logicalID string) string {
	return filepath.Join(RepoRoot(), "bin", logicalID, "bootstrap")
}

// Function is one built bootstrap running under aws-lambda-rie, AWS's own
// emulator, as `sam local invoke` runs it; the end-to-end suite and the
// benchmarks run functions so. Its ports take no guard, so make run runs
// Sandboxes instead. The emulator serves one invocation at a
// time: a second, overlapping one makes it panic. Pool keeps to that.
type Function struct {
	*Process
	client *http.Client
	// limit bounds an invocation, past the emulator's own time-out, so a
	// wedged emulator cannot hold a caller for ever.
	limit time.Duration
}

// ReservedEnv is what Lambda itself sets in a function's environment, short
// of what depends on the configuration (region, credentials, timeout,
// memory, log format) and what the emulator adds (AWS_LAMBDA_RUNTIME_API).
func ReservedEnv(logicalID string) []string {
	stream := make([]byte, 16)
	_, _ = rand.Read(stream)
	return []string{
		"PATH=/usr/local/bin:/usr/bin/:/bin:/opt/bin",
		"LANG=en_US.UTF-8",
		"TZ=:UTC",
		"LD_LIBRARY_PATH=/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
		"LAMBDA_TASK_ROOT=" + filepath.Dir(BootstrapPath(logicalID)),
		"LAMBDA_RUNTIME_DIR=/var/runtime",
		"_HANDLER=bootstrap",
		"AWS_LAMBDA_FUNCTION_NAME=" + logicalID,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + logicalID,
		"AWS_LAMBDA_LOG_STREAM_NAME=" + time.Now().UTC().Format("2006/01/02") + "/[$LATEST]" + hex.EncodeToString(stream),
	}
}

// StartFunction runs bin/<logicalID>/bootstrap under the emulator with
// ReservedEnv and env, and nothing else: the emulator passes its whole
// environment to the function, so this process's never reaches it.
func StartFunction(logicalID string, env []string) (*Function, error) {
	return startFunction(logicalID, BootstrapPath(logicalID), env, 0)
}

// StartBootstrap is StartFunction for a binary built elsewhere, named
// name: the bench's reference functions.
func StartBootstrap(name, bootstrap string, env []string) (*Function, error) {
	return startFunction(name, bootstrap, env, 0)
}

// startFunction runs bootstrap as logicalID; keep > 0 bounds the output kept.
func startFunction(logicalID, bootstrap string, env []string, keep int) (*Function, error) {
	if err := installed(RIEPath()); err != nil {
		return nil, err
	}
	if _, err := os.Stat(bootstrap); err != nil {
		return nil, fmt.Errorf("%s is missing: run `make build` (make test does)", bootstrap)
	}
	invokePort, err := guard.FreePort()
	if err != nil {
		return nil, err
	}
	runtimePort, err := guard.FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(invokePort)
	p, err := start(logicalID, addr, MergeEnv(ReservedEnv(logicalID), env...), filepath.Dir(bootstrap), keep,
		RIEPath(), "--log-level", "error",
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(runtimePort),
		bootstrap)
	if err != nil {
		return nil, err
	}
	return &Function{Process: p, client: &http.Client{}, limit: emulatorLimit(env)}, nil
}

// invocationLimit is the function's time-out (seconds when unset).
func invocationLimit(env []string, seconds int) time.Duration {
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "AWS_LAMBDA_FUNCTION_TIMEOUT="); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				seconds = n
			}
		}
	}
	return time.Duration(seconds) * time.Second
}

// emulatorLimit is the function's time-out (the emulator's default when
// unset) and a margin for the emulator to answer.
func emulatorLimit(env []string) time.Duration { return invocationLimit(env, 300) + 5*time.Second }

// MergeEnv returns base with each NAME=value of extra set, replacing an
// entry of the same name.
func MergeEnv(base []string, extra ...string) []string {
	out := append([]string(nil), base...)
	for _, e := range extra {
		name, _, _ := strings.Cut(e, "=")
		replaced := false
		for i, b := range out {
			if n, _, _ := strings.Cut(b, "="); n == name {
				out[i], replaced = e, true
			}
		}
		if !replaced {
			out = append(out, e)
		}
	}
	return out
}

// Invoke sends one event and returns the emulator's answer: the payload,
// or a function error's JSON, with a nil error for both.
func (f *Function) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	status, body, err := f.post(ctx, event)
	if err != nil {
		return nil, fmt.Errorf("invoking %s: %w", f.Name, err)
	}
	if status != http.StatusOK {
		return body, fmt.Errorf("invoking %s: HTTP %d: %s", f.Name, status, body)
	}
	return body, nil
}

// FunctionError is an invocation that failed in the function: Lambda
// answers it with the payload and X-Amz-Function-Error: Unhandled.
type FunctionError struct {
	Type, Message string
	// Fatal: the execution environment cannot serve again (a time-out, a
	// runtime that exited) and is replaced.
	Fatal bool
}

func (e *FunctionError) Error() string { return "function error " + e.Type + ": " + e.Message }

// Payload is the error's JSON, as Lambda returns it.
func (e *FunctionError) Payload() []byte {
	b, _ := json.Marshal(map[string]string{"errorType": e.Type, "errorMessage": e.Message})
	return b
}

var timedOut = regexp.MustCompile(`^Task timed out after [0-9.]+ seconds$`)

// Call invokes the function as Lambda's Invoke does: it returns the
// payload, or a *FunctionError for an error the function returned, a
// time-out or a runtime that exited; any other error is the emulator's.
func (f *Function) Call(ctx context.Context, event []byte) ([]byte, error) {
	limited, cancel := context.WithTimeout(ctx, f.limit)
	defer cancel()
	status, body, err := f.post(limited, event)
	switch {
	case err != nil && ctx.Err() == nil && limited.Err() != nil:
		return nil, &FunctionError{Type: "Sandbox.Timedout", Message: "Error: the emulator did not answer within " + f.limit.String(), Fatal: true}
	case err != nil:
		return nil, fmt.Errorf("invoking %s: %w", f.Name, err)
	case status == http.StatusOK && timedOut.Match(bytes.TrimSpace(body)):
		return nil, &FunctionError{Type: "Sandbox.Timedout", Message: "Error: " + string(bytes.TrimSpace(body)), Fatal: true}
	case status == http.StatusOK:
		if fe := asFunctionError(body); fe != nil {
			return nil, fe
		}
		return body, nil
	case status == http.StatusBadGateway:
		return nil, &FunctionError{Type: "Runtime.ExitError", Message: "Error: Runtime exited", Fatal: true}
	default:
		return nil, fmt.Errorf("invoking %s: the emulator answered HTTP %d", f.Name, status)
	}
}

// asFunctionError recognises the runtime's error document, as `sam local`
// does: an object of errorMessage, errorType and perhaps stackTrace.
func asFunctionError(body []byte) *FunctionError {
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) != nil || doc["errorMessage"] == nil {
		return nil
	}
	for k := range doc {
		if k != "errorMessage" && k != "errorType" && k != "stackTrace" && k != "cause" {
			return nil
		}
	}
	fe := &FunctionError{}
	_ = json.Unmarshal(doc["errorType"], &fe.Type)
	_ = json.Unmarshal(doc["errorMessage"], &fe.Message)
	if fe.Type == "" {
		fe.Type = "Unhandled"
	}
	return fe
}

func (f *Function) post(ctx context.Context, event []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		"http://"+f.Addr+"/2015-03-31/functions/function/invocations", bytes.NewReader(event))
	if err != nil {
		return 0, nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}
