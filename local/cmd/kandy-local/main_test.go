package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
)

func TestJSONLinesPassesWholeJSONLinesOnly(t *testing.T) {
	var out bytes.Buffer
	j := &jsonLines{name: "Fn", out: &out}
	for _, chunk := range []string{`{"a":`, "1}\nSTART RequestId: x\n", `{"b":2}`, "\n{\"c\"", ":3"} {
		if n, err := j.Write([]byte(chunk)); err != nil || n != len(chunk) {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	if want := "Fn | {\"a\":1}\nFn | {\"b\":2}\n"; out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}

// The state is kept by default, so the pool and client ids survive a
// restart; FRESH=1 keeps nothing.
func TestDataDirKeepsStateUnlessFresh(t *testing.T) {
	for _, c := range []struct{ dir, fresh, want, err string }{
		{"", "", defaultDataDir(), ""},
		{"/tmp/kept", "", "/tmp/kept", ""},
		{"", "1", "", ""},
		{"/tmp/kept", "1", "", "set one of them"},
		{"", "yes", "", "FRESH must be 1"},
	} {
		got, err := dataDir(c.dir, c.fresh)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("DATA_DIR=%q FRESH=%q: error %v, want one saying %q", c.dir, c.fresh, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("DATA_DIR=%q FRESH=%q: %q, %v; want %q", c.dir, c.fresh, got, err, c.want)
		}
	}
	if filepath.Base(defaultDataDir()) != ".local-data" || filepath.Dir(defaultDataDir()) != processes.RepoRoot() {
		t.Errorf("default data dir %s, want .local-data in the repository", defaultDataDir())
	}
	ignored, err := exec.Command("git", "-C", processes.RepoRoot(), "check-ignore", "-q", filepath.Join(defaultDataDir(), "cognito")).CombinedOutput()
	if err != nil {
		t.Errorf("git does not ignore %s: %v %s", defaultDataDir(), err, ignored)
	}
}
