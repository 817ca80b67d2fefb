package processes

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/local/runtimeapi"
)

// initLimit is how long Lambda lets a runtime initialise.
const initLimit = 10 * time.Second

// Sandbox is one execution environment of a function as Lambda runs it:
// the built bootstrap, a process of its own, served the Runtime API by
// the run (package runtimeapi) instead of by an emulator listening on a
// port of its own. It serves one invocation at a time.
type Sandbox struct {
	*Process
	env     *runtimeapi.Environment
	timeout time.Duration
}

// StartSandbox runs bootstrap as logicalID with ReservedEnv and env, and
// nothing else, against rt, and waits until it has initialised; keep > 0
// bounds the output kept.
func StartSandbox(rt *runtimeapi.Server, logicalID, bootstrap string, env []string, keep int) (*Sandbox, error) {
	if err := installed(bootstrap); err != nil {
		return nil, fmt.Errorf("%s is missing: run `make build` (make run does)", bootstrap)
	}
	e := rt.NewEnvironment(logicalID)
	vars := MergeEnv(ReservedEnv(logicalID), env...)
	vars = MergeEnv(vars, "AWS_LAMBDA_RUNTIME_API="+e.Address(), "LAMBDA_TASK_ROOT="+filepath.Dir(bootstrap))
	p, err := spawn(logicalID, vars, filepath.Dir(bootstrap), keep, bootstrap)
	if err != nil {
		e.Close()
		return nil, err
	}
	go func() { <-p.Done(); e.Close() }()
	t := time.NewTimer(initLimit)
	defer t.Stop()
	select {
	case <-e.Ready():
		return &Sandbox{Process: p, env: e, timeout: functionTimeout(env)}, nil
	case <-p.Done():
		err = fmt.Errorf("%s exited while it initialised; output:\n%s", logicalID, p.Output())
	case <-t.C:
		p.Stop()
		err = fmt.Errorf("%s did not initialise within %v; output:\n%s", logicalID, initLimit, p.Output())
	}
	return nil, err
}

// functionTimeout is the function's time-out, Lambda's default (3 s)
// when unset.
func functionTimeout(env []string) time.Duration {
	return invocationLimit(env, 3)
}

// Stop ends the process and its environment.
func (s *Sandbox) Stop() {
	s.Process.Stop()
	s.env.Close()
}

// Call invokes the function as Lambda's Invoke does: it returns the
// payload, or a *FunctionError for an error the function returned, a
// time-out or a runtime that exited or failed to initialise.
func (s *Sandbox) Call(ctx context.Context, event []byte) ([]byte, error) {
	out, err := s.env.Invoke(ctx, event, time.Now().Add(s.timeout))
	var initErr *runtimeapi.InitError
	switch {
	case errors.Is(err, runtimeapi.ErrTimedOut):
		return nil, &FunctionError{Type: "Sandbox.Timedout", Message: fmt.Sprintf("Task timed out after %.2f seconds", s.timeout.Seconds()), Fatal: true}
	case errors.Is(err, runtimeapi.ErrClosed):
		return nil, &FunctionError{Type: "Runtime.ExitError", Message: "Error: Runtime exited", Fatal: true}
	case errors.As(err, &initErr):
		fe := asFunctionError(initErr.Document)
		if fe == nil {
			fe = &FunctionError{Type: initErr.Type, Message: "the runtime failed to initialise"}
		}
		fe.Fatal = true
		return nil, fe
	case err != nil:
		return nil, fmt.Errorf("invoking %s: %w", s.Name, err)
	case out.ErrorType != "":
		if fe := asFunctionError(out.Payload); fe != nil {
			return nil, fe
		}
		return nil, &FunctionError{Type: out.ErrorType, Message: string(out.Payload)}
	}
	return out.Payload, nil
}
