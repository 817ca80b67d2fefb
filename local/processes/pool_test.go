package processes

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/local/runtimeapi"
)

// testBootstrap builds testdata/fn, a function that sleeps, fails, exits
// or reads its environment as its event says.
func testBootstrap(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bootstrap")
	build := exec.Command("go", "build", "-o", out, "./testdata/fn")
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if msg, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the test function: %v\n%s", err, msg)
	}
	return out
}

// testPool starts a pool of the test function; replaced collects what it
// reports.
type testPool struct {
	*Pool
	mu       sync.Mutex
	replaced []string
}

func startTestPool(t *testing.T, o PoolOptions, env ...string) *testPool {
	t.Helper()
	tp := &testPool{}
	o.Replaced = func(fn *Process, why string) {
		tp.mu.Lock()
		tp.replaced = append(tp.replaced, why+": "+strings.Join(fn.Tail(3), " / "))
		tp.mu.Unlock()
	}
	p, err := StartPool("TestFunction", env, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	tp.Pool = p
	return tp
}

func (tp *testPool) reports() []string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]string(nil), tp.replaced...)
}

// TestPool runs each check on both kinds of execution environment: the
// bootstrap under aws-lambda-rie, and the bootstrap alone against the
// run's own Runtime API, which must behave as AWS's emulator does.
func TestPool(t *testing.T) {
	bootstrap := testBootstrap(t)
	rt, err := runtimeapi.Start("us-east-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	for kind, runtime := range map[string]*runtimeapi.Server{"aws-lambda-rie": nil, "runtime API": rt} {
		o := PoolOptions{Bootstrap: bootstrap, Runtime: runtime}
		t.Run(kind, func(t *testing.T) {
			t.Run("one invocation per environment, up to the limit", func(t *testing.T) { poolLimit(t, o) })
			t.Run("throttles after the wait", func(t *testing.T) { poolThrottle(t, o) })
			t.Run("replaces what dies or times out", func(t *testing.T) { poolReplace(t, o) })
			t.Run("clean environment", func(t *testing.T) { poolEnv(t, o) })
		})
	}
}

// poolLimit: twelve overlapping invocations on two emulators all succeed;
// a second invocation on a busy emulator would make it panic.
func poolLimit(t *testing.T, o PoolOptions) {
	o.Concurrency, o.Wait = 2, 30*time.Second
	tp := startTestPool(t, o)
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	peak := 0
	var mu sync.Mutex
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := tp.Invoke(ctx, []byte(`{"sleep_ms":150}`))
			errs <- err
			mu.Lock()
			peak = max(peak, tp.Size())
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if peak > 2 {
		t.Errorf("peak %d emulators, over the limit of 2", peak)
	}
	if r := tp.reports(); len(r) > 0 {
		t.Errorf("emulators replaced: %v", r)
	}
}

func poolThrottle(t *testing.T, o PoolOptions) {
	o.Concurrency, o.Wait = 1, 200*time.Millisecond
	tp := startTestPool(t, o)
	done := make(chan error)
	go func() {
		_, err := tp.Invoke(context.Background(), []byte(`{"sleep_ms":1500}`))
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	if _, err := tp.Invoke(context.Background(), []byte(`{}`)); !errors.Is(err, ErrThrottled) {
		t.Fatalf("an invocation at the limit: %v, want ErrThrottled", err)
	}
	if waited := time.Since(start); waited < 150*time.Millisecond || waited > time.Second {
		t.Errorf("throttled after %v, want about the 200 ms wait", waited)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Invoke(context.Background(), []byte(`{}`)); err != nil {
		t.Fatalf("after the limit freed up: %v", err)
	}
}

func poolReplace(t *testing.T, o PoolOptions) {
	o.Concurrency = 1
	tp := startTestPool(t, o, "AWS_LAMBDA_FUNCTION_TIMEOUT=1")
	var fe *FunctionError
	if _, err := tp.Invoke(context.Background(), []byte(`{"fail":true}`)); !errors.As(err, &fe) {
		t.Fatalf("a function error: %v, want a FunctionError", err)
	}
	if fe.Fatal {
		t.Fatalf("a function error is fatal: %v", fe)
	}
	if fe.Message != "failed as asked" {
		t.Fatalf("a function error: message %q, want %q", fe.Message, "failed as asked")
	}
	for _, c := range []struct{ what, payload, typ string }{
		{"a time-out", `{"sleep_ms":2500}`, "Sandbox.Timedout"},
		{"a runtime that exits", `{"exit":true}`, "Runtime.ExitError"},
	} {
		if _, err := tp.Invoke(context.Background(), []byte(c.payload)); !errors.As(err, &fe) {
			t.Fatalf("%s: %v, want a FunctionError", c.what, err)
		}
		if fe.Type != c.typ {
			t.Fatalf("%s: error type %q, want %q", c.what, fe.Type, c.typ)
		}
	}
	// An emulator that dies while idle is reported with its last lines.
	if _, err := tp.Invoke(context.Background(), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	tp.Pool.mu.Lock()
	var victim environment
	for fn := range tp.all {
		victim = fn
	}
	tp.Pool.mu.Unlock()
	_ = syscall.Kill(victim.process().PID(), syscall.SIGKILL)
	<-victim.Done()
	time.Sleep(100 * time.Millisecond)
	if _, err := tp.Invoke(context.Background(), []byte(`{}`)); err != nil {
		t.Fatalf("after the emulator died: %v", err)
	}
	got := strings.Join(tp.reports(), "\n")
	for _, want := range []string{"Sandbox.Timedout", "Runtime.ExitError", "exited"} {
		if !strings.Contains(got, want) {
			t.Errorf("reports %q lack %s", got, want)
		}
	}
}

// poolEnv: the function sees the pool's variables and Lambda's, and
// nothing of this process's environment.
func poolEnv(t *testing.T, o PoolOptions) {
	t.Setenv("SHELL_ONLY_SECRET", "leaked")
	tp := startTestPool(t, o, "GIVEN=yes")
	out, err := tp.Invoke(context.Background(), []byte(`{"env":["SHELL_ONLY_SECRET","GIVEN","AWS_LAMBDA_FUNCTION_NAME","LOG_LEVEL","HOME"]}`))
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Env map[string]string }
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"SHELL_ONLY_SECRET": "", "GIVEN": "yes", "AWS_LAMBDA_FUNCTION_NAME": "TestFunction", "LOG_LEVEL": "", "HOME": ""}
	for k, v := range want {
		if got.Env[k] != v {
			t.Errorf("%s = %q, want %q", k, got.Env[k], v)
		}
	}
}
