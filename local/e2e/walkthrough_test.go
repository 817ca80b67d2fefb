package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
)

// step is one shell block of the README's walkthrough and the output the
// README promises for it.
type step struct {
	script, want string
}

func walkthrough(t *testing.T) []step {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(processes.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(raw), "<!-- walkthrough:begin -->")
	section, _, ok2 := strings.Cut(rest, "<!-- walkthrough:end -->")
	if !ok || !ok2 {
		t.Fatal("README has no walkthrough section")
	}
	blocks := regexp.MustCompile("(?s)```(sh|text)\n(.*?)```").FindAllStringSubmatch(section, -1)
	var steps []step
	for i := 0; i+1 < len(blocks); i += 2 {
		if blocks[i][1] != "sh" || blocks[i+1][1] != "text" {
			t.Fatalf("walkthrough block %d: want a sh block followed by a text block", i)
		}
		steps = append(steps, step{script: blocks[i][2], want: blocks[i+1][2]})
	}
	if len(steps) < 5 {
		t.Fatalf("walkthrough has %d steps", len(steps))
	}
	return steps
}

// matches reports whether got is want, where "…" in want stands for any text
// within a line.
func matches(want, got string) bool {
	parts := strings.Split(strings.TrimSpace(want), "…")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`^` + strings.Join(parts, `[^\n]*?`) + `$`).MatchString(strings.TrimSpace(got))
}

// makeRun is `make run` started as a user starts it, with its output.
type makeRun struct {
	cmd     *exec.Cmd
	out     bytes.Buffer
	done    chan struct{}
	stopped bool
}

// startMakeRun starts `make run` with extra environment and waits for its
// banner. It is stopped, as Ctrl-C stops it, when the test ends.
func startMakeRun(t *testing.T, extra ...string) *makeRun {
	t.Helper()
	m := &makeRun{cmd: exec.Command("make", "run"), done: make(chan struct{})}
	m.cmd.Dir = processes.RepoRoot()
	m.cmd.Env = append(userEnv(), extra...)
	// make run keeps its state in the repository's .local-data by default;
	// a test's run keeps its own, or none, never a developer's.
	if !slices.ContainsFunc(extra, func(e string) bool { return strings.HasPrefix(e, "DATA_DIR=") }) {
		m.cmd.Env = append(m.cmd.Env, "FRESH=1")
	}
	m.cmd.Stdout, m.cmd.Stderr = &syncWriter{b: &m.out}, &syncWriter{b: &m.out}
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = m.cmd.Wait(); close(m.done) }()
	t.Cleanup(func() { m.stop(t) })
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(m.output(), "is running locally") {
		select {
		case <-m.done:
			t.Fatalf("make run exited:\n%s", m.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("make run did not come up:\n%s", m.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return m
}

func (m *makeRun) output() string { return outString(&m.out) }

// stop sends what Ctrl-C sends and waits for everything to end.
func (m *makeRun) stop(t *testing.T) {
	if m.stopped {
		return
	}
	m.stopped = true
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-m.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		t.Error("make run did not stop within 15s of Ctrl-C")
	}
}

var makeRunPorts = []string{"3000", "3001", "8000", "8090", "8091", "8092", "9229", "9324"}

func TestReadmeWalkthroughAgainstMakeRun(t *testing.T) {
	steps := walkthrough(t)
	for _, port := range makeRunPorts {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 200*time.Millisecond); err == nil {
			c.Close()
			t.Fatalf("port %s is taken; make run needs it", port)
		}
	}
	run := startMakeRun(t)
	clickThroughConsole(t, "http://127.0.0.1:3000", "http://127.0.0.1:8090/_sim", run)
	runSteps(t, steps, run)
	if m := tokenLike.FindString(run.output()); m != "" {
		t.Errorf("make run's console shows a key or token (%.3s…)", m)
	}
	run.stop(t)
	for _, port := range makeRunPorts {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 200*time.Millisecond); err == nil {
			c.Close()
			t.Errorf("port %s still answers after Ctrl-C: a process was left running", port)
		}
	}
	if !strings.Contains(run.output(), "stopping") {
		t.Errorf("make run did not shut down cleanly:\n%s", run.output())
	}
	// The console's calls and the walkthrough's, checked by the gateway.
	if strings.Contains(run.output(), "api: contract violation") {
		t.Errorf("make run found answers that break api/openapi.yaml:\n%s", run.output())
	}
}

// clickThroughConsole drives the console page in headless Chromium. It
// answers the page's requests for a confirmation code with the code make
// run printed, as a user would type it. It deletes its user's account at
// the end, so the walkthrough starts with an empty quota.
func clickThroughConsole(t *testing.T, base, sim string, run *makeRun) {
	t.Helper()
	shot := filepath.Join(t.TempDir(), "console.png")
	if dir := os.Getenv("CONSOLE_SCREENSHOT_DIR"); dir != "" {
		shot = filepath.Join(dir, "console.png")
	}
	browser := exec.Command("node", filepath.Join(processes.RepoRoot(), "local", "e2e", "console.spec.mjs"), base, shot, sim)
	stdin, err := browser.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	lines := &lineWriter{line: func(line string) {
		if email, ok := strings.CutPrefix(line, "CODE? "); ok {
			fmt.Fprintln(stdin, run.confirmationCode(t, email))
		}
	}, copyTo: &syncWriter{b: &out}}
	browser.Stdout, browser.Stderr = lines, &syncWriter{b: &out}
	if err := browser.Run(); err != nil {
		t.Fatalf("console click-through: %v\n%s", err, out.String())
	}
	for _, f := range []string{shot, strings.TrimSuffix(shot, ".png") + "-signup.png"} {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Fatalf("no screenshot %s: %v", f, err)
		}
	}
	t.Log(strings.TrimSpace(out.String()))
}

// confirmationCode is the last code make run says the pool sent to email.
func (m *makeRun) confirmationCode(t *testing.T, email string) string {
	t.Helper()
	pattern := regexp.MustCompile(`msg="cognito: confirmation code sent" to=` + regexp.QuoteMeta(email) + ` code=(\d+)`)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if all := pattern.FindAllStringSubmatch(m.output(), -1); len(all) > 0 {
			return all[len(all)-1][1]
		}
	}
	t.Errorf("make run printed no confirmation code for %s", email)
	return ""
}

// lineWriter calls line for each complete line written to it, and copies
// everything to copyTo.
type lineWriter struct {
	line    func(string)
	copyTo  io.Writer
	partial []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	_, _ = l.copyTo.Write(p)
	l.partial = append(l.partial, p...)
	for {
		line, rest, ok := bytes.Cut(l.partial, []byte("\n"))
		if !ok {
			return len(p), nil
		}
		l.partial = rest
		l.line(string(line))
	}
}

// runSteps runs the walkthrough in one shell, so variables carry over as
// in a terminal, and compares each step's output with the README's.
func runSteps(t *testing.T, steps []step, run *makeRun) {
	t.Helper()
	var script strings.Builder
	script.WriteString("set -e\n")
	for i, s := range steps {
		fmt.Fprintf(&script, "printf '\\n@@step %d\\n'\n%s", i, s.script)
	}
	sh := exec.Command("bash", "-c", script.String())
	sh.Dir = processes.RepoRoot()
	sh.Env = userEnv()
	got, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("walkthrough failed: %v\n%s\nmake run:\n%s", err, got, run.output())
	}
	outputs := regexp.MustCompile(`(?m)^@@step \d+\n`).Split(string(got), -1)[1:]
	if len(outputs) != len(steps) {
		t.Fatalf("got %d step outputs, want %d:\n%s", len(outputs), len(steps), got)
	}
	for i, s := range steps {
		if !matches(s.want, outputs[i]) {
			t.Errorf("step %d:\n%s\nprinted:\n%s\nREADME promises:\n%s", i+1, s.script, outputs[i], s.want)
		}
	}
	t.Logf("walkthrough output:\n%s", got)
}

// userEnv is this environment without what an enclosing make (make test)
// passes down, so commands behave as in a user's terminal.
func userEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		name, _, _ := strings.Cut(e, "=")
		if name != "MAKELEVEL" && name != "MAKEFLAGS" && name != "MFLAGS" && name != "MAKEOVERRIDES" {
			env = append(env, e)
		}
	}
	return env
}

func outString(b *bytes.Buffer) string {
	outMu.Lock()
	defer outMu.Unlock()
	return b.String()
}
