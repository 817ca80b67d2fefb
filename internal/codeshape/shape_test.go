// Package codeshape checks the shape the code keeps: which way the
// packages depend on each other, and how long a function may grow.
package codeshape

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/kandy-provisioner/kandy-provisioner/"

func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// The domain and the configuration know no adapter: not Kandy's client,
// not net/http, not the AWS SDK, not even through another package.
func TestDomainDependsOnNoAdapter(t *testing.T) {
	for _, pkg := range []string{"pkg/provision", "pkg/config"} {
		cmd := exec.Command("go", "list", "-deps", "./"+pkg)
		cmd.Dir = root(t)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 {
			t.Fatalf("go list -deps %s listed %d packages; the check would prove nothing", pkg, len(deps))
		}
		for _, d := range deps {
			switch {
			case d == "net/http", strings.HasPrefix(d, "github.com/aws/"),
				strings.HasPrefix(d, module) && !strings.HasPrefix(d, module+"pkg/provision") && d != module+"pkg/userid" && d != module+pkg:
				t.Errorf("%s depends on %s", pkg, d)
			}
		}
	}
}

// maxLines bounds a function, tests included: a longer one is split into
// named steps.
const maxLines = 80

func TestNoFunctionIsLong(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(root(t), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "testdata") && path != root(t) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		// Generated code (api/apiclient) is shaped by its generator.
		if ast.IsGenerated(f) {
			return nil
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			checked++
			if n := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1; n > maxLines {
				rel, _ := filepath.Rel(root(t), path)
				t.Errorf("%s: %s is %d lines, over %d", rel, fn.Name.Name, n, maxLines)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("only %d functions read; the check would prove nothing", checked)
	}
}
