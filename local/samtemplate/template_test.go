package samtemplate_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/config"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/store"
)

func load(t *testing.T) *samtemplate.Template {
	t.Helper()
	tpl, err := samtemplate.Load(samtemplate.Path())
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func root() string { return filepath.Dir(samtemplate.Path()) }

func TestEveryFunctionHasAMakeTargetAndAFolder(t *testing.T) {
	tpl := load(t)
	fns := tpl.Functions()
	if len(fns) < 3 {
		t.Fatalf("functions = %v", fns)
	}
	for _, id := range fns {
		dir := samtemplate.FunctionDir(id)
		if _, err := os.Stat(filepath.Join(root(), dir, "main.go")); err != nil {
			t.Errorf("%s: no %s/main.go", id, dir)
		}
		// What sam build runs: it must build that folder for arm64 into ARTIFACTS_DIR.
		cmd := exec.Command("make", "--no-print-directory", "-n", "build-"+id, "ARTIFACTS_DIR=/artifacts")
		cmd.Dir = root()
		out, err := cmd.CombinedOutput()
		recipe := string(out)
		if err != nil {
			t.Errorf("make build-%s: %v\n%s", id, err, recipe)
		}
		for _, want := range []string{"GOARCH=arm64", "-o /artifacts/bootstrap " + dir} {
			if !strings.Contains(recipe, want) {
				t.Errorf("make build-%s: recipe lacks %q:\n%s", id, want, recipe)
			}
		}
		r := tpl.Resources[id]
		if r.Metadata["BuildMethod"] != "makefile" {
			t.Errorf("%s: BuildMethod = %v", id, r.Metadata["BuildMethod"])
		}
	}
}

// The local stack creates its table from the YAML reader's definition:
// its key must be the one the code uses.
func TestTableMatchesTheCode(t *testing.T) {
	in, err := load(t).CreateTableInput("x")
	if err != nil {
		t.Fatal(err)
	}
	if len(in.KeySchema) != 1 {
		t.Fatalf("key schema = %+v, want one key", in.KeySchema)
	}
	if k := in.KeySchema[0]; *k.AttributeName != store.KeyAttribute {
		t.Errorf("key %s, the code uses %q", *k.AttributeName, store.KeyAttribute)
	}
	if k := in.KeySchema[0]; k.KeyType != "HASH" {
		t.Errorf("key type %s, want HASH", k.KeyType)
	}
}

// The local run reads routes and settings with the YAML reader: they must
// be what the deployed stack has.
func TestReaderAgreesWithTheDeployedStack(t *testing.T) {
	tpl, s := load(t), deployed(t, true)
	paths, _ := get(props(s, "HttpApi"), "Body", "paths").(map[string]any)
	var routes []string
	for p, ops := range paths {
		for m := range ops.(map[string]any) {
			routes = append(routes, strings.ToUpper(m)+" "+p)
		}
	}
	sort.Strings(routes)
	if got := tpl.HTTPRoutes("ApiFunction"); strings.Join(got, ",") != strings.Join(routes, ",") {
		t.Errorf("reader routes %v, deployed %v", got, routes)
	}
	for _, id := range s.OfType("AWS::Lambda::Function") {
		timeout, memory := tpl.FunctionSettings(id)
		p := props(s, id)
		if fmt.Sprintf("%d %d", timeout, memory) != fmt.Sprintf("%v %v", p["Timeout"], p["MemorySize"]) {
			t.Errorf("%s: reader says %d s and %d MB, deployed %v s and %v MB", id, timeout, memory, p["Timeout"], p["MemorySize"])
		}
	}
	if fns := tpl.Functions(); strings.Join(fns, ",") != strings.Join(s.OfType("AWS::Lambda::Function"), ",") {
		t.Errorf("reader functions %v, deployed %v", fns, s.OfType("AWS::Lambda::Function"))
	}
}

// The local run starts the functions a deploy would create with the same
// parameters: the reader's conditions agree with the transformed stack's.
func TestReaderDeploysWhatTheStackDeploys(t *testing.T) {
	tpl := load(t)
	for _, custom := range []bool{false, true} {
		params := map[string]string{}
		if custom {
			params = optional
		}
		deployedFns := strings.Join(deployed(t, custom).OfType("AWS::Lambda::Function"), ",")
		var fns []string
		for _, id := range tpl.Functions() {
			if tpl.Deployed(id, params) {
				fns = append(fns, id)
			}
		}
		if strings.Join(fns, ",") != deployedFns {
			t.Errorf("options set %v: the reader deploys %v, the stack %s", custom, fns, deployedFns)
		}
	}
}

// The template's defaults are the code's: one value each, spelled twice
// only because CloudFormation cannot read Go.
func TestParameterDefaultsAreTheCodes(t *testing.T) {
	defaults, err := samtemplate.ParameterDefaults(samtemplate.Path())
	if err != nil {
		t.Fatal(err)
	}
	for param, want := range map[string]string{"KandyApiUrl": config.DefaultKandyAPIURL, "KandyDefaultCountryCode": provision.DefaultCountryCode} {
		if defaults[param] != want {
			t.Errorf("%s defaults to %q, the code to %q", param, defaults[param], want)
		}
	}
}

// A deploy names its browser origins: a default would ship an API that
// trusts whatever page runs on a developer's port. And a page must be
// able to read a 503's Retry-After, which docs/api.md tells it to obey.
func TestCORSTrustsNoDefaultOriginAndExposesRetryAfter(t *testing.T) {
	defaults, err := samtemplate.ParameterDefaults(samtemplate.Path())
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := defaults["CorsAllowedOrigins"]; ok {
		t.Errorf("CorsAllowedOrigins defaults to %q, want no default", d)
	}
	cors, _ := load(t).Resources["HttpApi"].Properties["CorsConfiguration"].(map[string]any)
	exposed := samtemplate.Strings(cors["ExposeHeaders"])
	if !slices.ContainsFunc(exposed, func(h string) bool { return strings.EqualFold(h, "Retry-After") }) {
		t.Errorf("HttpApi's CorsConfiguration exposes %v, want Retry-After among them", exposed)
	}
}
