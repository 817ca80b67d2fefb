// Package processes starts the real local servers that the tests and the
// local run need: dynalite, local-kms, goaws and cognito-local, each as a
// backend on a Unix socket for a front of package guard to serve; and
// built functions, each execution environment a process, under AWS's
// aws-lambda-rie or against the run's own Lambda Runtime API (package
// runtimeapi), one at a time or as a pool. It fails loudly, never skips,
// when one cannot start.
package processes

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kandy-provisioner/kandy-provisioner/local/guard"
	"github.com/kandy-provisioner/kandy-provisioner/local/internal/reporoot"
	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
)

// RepoRoot is the repository's top directory.
func RepoRoot() string { return reporoot.Dir() }

// Process is a child server.
type Process struct {
	Name string
	// Addr is where it listens: host:port, or a Unix socket's path; empty
	// for a process that listens nowhere.
	Addr   string
	cmd    *exec.Cmd
	output *syncBuffer
	done   chan struct{}
}

// Output is what the process wrote so far (its last 1 MB for a pool's
// emulators).
func (p *Process) Output() string { return p.output.String() }

// Tail is the last n lines the process wrote.
func (p *Process) Tail(n int) []string {
	lines := strings.Split(strings.TrimRight(p.Output(), "\n"), "\n")
	return lines[max(0, len(lines)-n):]
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Follow copies everything the process writes from now on to w as well.
// Writes to w are serialised.
func (p *Process) Follow(w io.Writer) {
	p.output.mu.Lock()
	p.output.follow = w
	p.output.mu.Unlock()
}

// installed checks that `make tools` put path in place.
func installed(path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%s is not installed: run `make tools` (make test does)", path)
	}
	return nil
}

// Stop ends the process and its children and waits for it.
func (p *Process) Stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Start runs a command in its own process group, with env added to this
// process's environment, and waits until addr (host:port, or a Unix
// socket's path) accepts connections.
func Start(name, addr string, env []string, dir string, argv ...string) (*Process, error) {
	return start(name, addr, append(os.Environ(), env...), dir, 0, argv...)
}

// spawn runs argv with exactly env, in its own process group, killed
// with this process; keep > 0 bounds the output kept.
func spawn(name string, env []string, dir string, keep int, argv ...string) (*Process, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	out := &syncBuffer{keep: keep}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, cmd: cmd, output: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// start is spawn, then waits until addr accepts connections.
func start(name, addr string, env []string, dir string, keep int, argv ...string) (*Process, error) {
	p, err := spawn(name, env, dir, keep, argv...)
	if err != nil {
		return nil, err
	}
	p.Addr = addr
	network := "tcp"
	if filepath.IsAbs(addr) {
		network = "unix"
	}
	out := p.output
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited before listening on %s; output:\n%s", name, addr, out.String())
		default:
		}
		if c, err := net.DialTimeout(network, addr, 200*time.Millisecond); err == nil {
			c.Close()
			return p, nil
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("%s did not listen on %s within 20s; output:\n%s", name, addr, out.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// DynaliteScript is where `make tools` installs dynalite.
func DynaliteScript() string {
	return filepath.Join(RepoRoot(), "tools", "node_modules", "dynalite", "cli.js")
}

// StartDynalite starts dynalite as backend b, in memory, or keeping its
// data under dir when dir is not empty.
func StartDynalite(b guard.Backend, dir string) (*Process, error) {
	args := []string{"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"}
	if dir != "" {
		args = append(args, "--path", dir)
	}
	return startNode("dynalite", DynaliteScript(), "", b, nil, args...)
}

// startNode runs a Node.js server that `make tools` installed as backend
// b: tools/front-only.js, preloaded, moves its listener to b's socket and
// refuses requests without b's token. preload are more modules to preload.
func startNode(name, script, dir string, b guard.Backend, preload []string, args ...string) (*Process, error) {
	if err := installed(script); err != nil {
		return nil, err
	}
	opts := []string{fmt.Sprintf("--require %q", filepath.Join(RepoRoot(), "tools", "front-only.js"))}
	for _, p := range preload {
		opts = append(opts, fmt.Sprintf("--require %q", p))
	}
	env := append([]string{"NODE_OPTIONS=" + strings.Join(opts, " ")}, b.Env()...)
	return Start(name, b.Socket, env, dir, append([]string{"node", script}, args...)...)
}

// DynamoDB returns a client for a local endpoint such as dynalite's front,
// with the SDK's standard retries, as the functions have: a transient
// transport error, such as a kept-alive connection closed as it is
// reused, is retried rather than failing a test.
func DynamoDB(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
}

// CreateTable creates the accounts table from template.yaml's definition
// and waits until it is ACTIVE: even with --createTableMs 0, dynalite
// flips the status on its next tick, and writes before that fail.
func CreateTable(ctx context.Context, db *dynamodb.Client, name string) error {
	if err := createTable(ctx, db, name); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err == nil && out.Table.TableStatus == types.TableStatusActive {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("table %s did not become ACTIVE within 10s (last error: %v)", name, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func createTable(ctx context.Context, db *dynamodb.Client, name string) error {
	t, err := samtemplate.Load(samtemplate.Path())
	if err != nil {
		return err
	}
	in, err := t.CreateTableInput(name)
	if err != nil {
		return err
	}
	_, err = db.CreateTable(ctx, in)
	return err
}

type syncBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	keep   int // > 0: keep about this many of the last bytes
	follow io.Writer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.follow != nil {
		_, _ = s.follow.Write(p)
	}
	if s.keep > 0 && s.b.Len()+len(p) > 2*s.keep {
		s.b.Next(s.b.Len() - s.keep)
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// PID is the process id of the started command.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// LockedWriter lets the output of many processes share one writer, a
// write at a time.
type LockedWriter struct {
	mu sync.Mutex
	W  io.Writer
}

func (l *LockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.W.Write(p)
}
