// Package codeshape checks the shape the code keeps: which way the
// packages depend on each other, how long a function may grow, and that
// the documentation's relative links lead somewhere.
package codeshape

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/kandy-provisioner/kandy-provisioner/"

func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", ".."))
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

// goList runs go list in the repository with args, in workspace mode
// unless env says otherwise, and returns the packages it names.
func goList(t *testing.T, env []string, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = root(t)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Fields(string(out))
}

// The service is a module of its own: the root go.mod builds and tests it
// with no workspace, and no package of it, tests included, depends on the
// local module (local/: the local stack, the benchmarks, the end-to-end
// suite). Its code (not its tests) depends on no test support either.
func TestTheServiceStandsAlone(t *testing.T) {
	alone := []string{"GOWORK=off"}
	deps := goList(t, alone, "-deps", "-test", "./...")
	own := 0
	for _, d := range deps {
		own += map[bool]int{true: 1}[strings.HasPrefix(d, module)]
		if strings.HasPrefix(d, module+"local/") {
			t.Errorf("the service depends on %s", d)
		}
	}
	if own < 20 {
		t.Fatalf("go list -deps -test ./... named %d of the module's packages; the check would prove nothing", own)
	}
	for _, d := range goList(t, alone, "-deps", "./pkg/...", "./functions/...", "./cmd/...", "./api/...") {
		if strings.HasPrefix(d, module+"internal/") {
			t.Errorf("the service's code depends on %s", d)
		}
	}
}

// The service's go.mod requires what its packages and their tests link,
// and nothing more: go mod tidy would change nothing.
func TestTheServiceRequiresOnlyWhatItLinks(t *testing.T) {
	cmd := exec.Command("go", "mod", "tidy", "-diff")
	cmd.Dir = root(t)
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("go.mod is not what the service links (go mod tidy -diff: %v):\n%s", err, out)
	}
}

// The local run's code uses of the test support only the Kandy simulator,
// which stands in for Kandy as the local run's Kandy.
func TestTheLocalRunUsesNoTestSupport(t *testing.T) {
	checked := 0
	for _, d := range goList(t, nil, "-deps", "./local/cmd/...", "./local/localrun") {
		checked++
		if strings.HasPrefix(d, module+"internal/testing/") && d != module+"internal/testing/kandysim" {
			t.Errorf("the local run depends on %s", d)
		}
	}
	if checked < 50 {
		t.Fatalf("go list named %d packages; the check would prove nothing", checked)
	}
}

// maxLines bounds a function, tests included: a longer one is split into
// named steps.
const maxLines = 80

func TestNoFunctionIsLong(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	for _, rel := range projectFiles(t, ".go") {
		f, err := parser.ParseFile(fset, filepath.Join(root(t), rel), nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		// Generated code (api/apiclient) is shaped by its generator.
		if ast.IsGenerated(f) {
			continue
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			checked++
			if n := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1; n > maxLines {
				t.Errorf("%s: %s is %d lines, over %d", rel, fn.Name.Name, n, maxLines)
			}
		}
	}
	if checked < 100 {
		t.Fatalf("only %d functions read; the check would prove nothing", checked)
	}
}

// projectFiles lists the project's own files whose names end in suffix,
// relative to the root: not the installed tools, built binaries or test data.
func projectFiles(t *testing.T, suffix string) []string {
	t.Helper()
	dir := root(t)
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && path != dir && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "testdata" || name == "bin") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(name, suffix) {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// awsClients are the AWS SDK service clients each function may link. A
// client costs a function 0.26 to 1.8 MB of binary and the start-up of its
// generated schemas as soon as any of its packages is imported, called or
// not (docs/performance.md).
var awsClients = map[string][]string{
	"api":              {"dynamodb", "kms", "secretsmanager"},
	"deprovision":      {"dynamodb", "secretsmanager"},
	"postconfirmation": {"dynamodb", "kms", "secretsmanager", "sqs"},
	"reconcile":        {"cognitoidentityprovider", "dynamodb", "secretsmanager"},
	"retry":            {"dynamodb", "kms", "secretsmanager", "sqs"},
}

func TestFunctionsLinkOnlyTheAWSClientsTheyCall(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(root(t), "functions", "*"))
	if err != nil || len(dirs) < len(awsClients) {
		t.Fatalf("functions/: %d directories, %v", len(dirs), err)
	}
	for _, dir := range dirs {
		name := filepath.Base(dir)
		want, ok := awsClients[name]
		if !ok {
			t.Errorf("functions/%s: list the AWS clients it may link in awsClients", name)
			continue
		}
		cmd := exec.Command("go", "list", "-deps", "-tags", "lambda.norpc", "./functions/"+name)
		cmd.Dir = root(t)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps functions/%s: %v", name, err)
		}
		if got := serviceClients(strings.Fields(string(out))); !slices.Equal(got, want) {
			t.Errorf("functions/%s links the AWS clients %v, want %v", name, got, want)
		}
	}
}

// serviceClients names the SDK services any package of which is among
// deps, sorted: a service's types package alone links its schemas.
func serviceClients(deps []string) []string {
	const prefix = "github.com/aws/aws-sdk-go-v2/service/"
	var names []string
	for _, d := range deps {
		if rest, ok := strings.CutPrefix(d, prefix); ok {
			if name, _, _ := strings.Cut(rest, "/"); name != "internal" {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Every package says what it is in a comment that names it: "Package x"
// over package x, "Command x" over a main package, so go doc never shows
// a name a rename left behind.
func TestPackageCommentsNameTheirPackage(t *testing.T) {
	fset := token.NewFileSet()
	named := map[string]bool{} // directory → it has a package comment
	for _, rel := range projectFiles(t, ".go") {
		if strings.HasSuffix(rel, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(root(t), rel), nil, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Dir(rel)
		named[dir] = named[dir] || false
		if f.Doc == nil {
			continue
		}
		first, _, _ := strings.Cut(f.Doc.Text(), "\n")
		words := strings.Fields(first)
		want := []string{"Package", f.Name.Name}
		if f.Name.Name == "main" {
			want = []string{"Command", filepath.Base(dir)}
		}
		if len(words) < 2 || words[0] != want[0] || words[1] != want[1] {
			t.Errorf("%s: the package comment begins %q, want %q", rel, first, strings.Join(want, " ")+" …")
		}
		named[dir] = true
	}
	if len(named) < 30 {
		t.Fatalf("read %d packages; the check would prove nothing", len(named))
	}
	for dir, ok := range named {
		if !ok {
			t.Errorf("%s: no file has a package comment", dir)
		}
	}
}

// statusKeepers may compare a record's Status: the state machine, the two
// stores that turn its rules into conditional writes, and the contract
// that checks what they write.
var statusKeepers = []string{"pkg/provision/state.go", "pkg/store/", "internal/testing/memstore/", "internal/testing/accountstest/"}

// What a record means is decided in pkg/provision/state.go alone: no other
// code compares a Status, switches on one, or names one but to pass it to
// the state machine.
func TestOnlyTheStateMachineComparesStatuses(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	for _, rel := range projectFiles(t, ".go") {
		if strings.HasSuffix(rel, "_test.go") || slices.ContainsFunc(statusKeepers, func(k string) bool { return strings.HasPrefix(rel, k) }) {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(root(t), rel), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BinaryExpr:
				if (n.Op == token.EQL || n.Op == token.NEQ) && (isStatus(n.X) || isStatus(n.Y)) {
					t.Errorf("%s: compares a status", fset.Position(n.Pos()))
				}
			case *ast.CaseClause:
				for _, e := range n.List {
					if isStatus(e) {
						t.Errorf("%s: a case of a status", fset.Position(e.Pos()))
					}
				}
			}
			return true
		})
	}
	if checked < 50 {
		t.Fatalf("only %d files read; the check would prove nothing", checked)
	}
}

// isStatus reports whether e is one of the record's statuses.
func isStatus(e ast.Expr) bool {
	var name string
	switch e := e.(type) {
	case *ast.SelectorExpr:
		name = e.Sel.Name
	case *ast.Ident:
		name = e.Name
	}
	return slices.Contains([]string{"StatusPending", "StatusActive", "StatusDeleting", "StatusDeleted"}, name)
}
