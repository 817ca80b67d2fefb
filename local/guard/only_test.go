package guard

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// tcpListen is code that would open a TCP port of its own.
var tcpListen = regexp.MustCompile(`net\.Listen(TCP)?\(|ListenAndServe|httptest\.New(Unstarted)?Server|tls\.Listen\(|ListenConfig`)

// TestOnlyTheGuardListens: no code of the local run or of the tools it
// starts, but this package, opens a TCP port, so every one a page could
// reach has a guard, including any server added later. Unix sockets
// (net.Listen("unix", …)) are how the backends listen.
func TestOnlyTheGuardListens(t *testing.T) {
	root := filepath.Join("..", "..")
	checked := 0
	for _, dir := range []string{"local", "tools/cmd"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			checked++
			if filepath.Base(filepath.Dir(path)) == "guard" && filepath.Base(filepath.Dir(filepath.Dir(path))) == "local" {
				return nil
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for i, line := range strings.Split(string(raw), "\n") {
				if tcpListen.MatchString(line) && !strings.Contains(line, `net.Listen("unix"`) {
					t.Errorf("%s:%d listens outside the guard: %s", path, i+1, strings.TrimSpace(line))
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked < 50 {
		t.Fatalf("read %d files; the check would prove nothing", checked)
	}
}
