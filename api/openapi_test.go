package api_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/kandy-provisioner/kandy-provisioner/api"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/httpapi"
)

func description(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("api/openapi.yaml is not a valid OpenAPI description: %v", err)
	}
	return doc
}

// operations are the description's operations by "METHOD /path".
func operations(doc *openapi3.T) map[string]*openapi3.Operation {
	ops := map[string]*openapi3.Operation{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops[method+" "+path] = op
		}
	}
	return ops
}

// TestDescriptionIsValid: the description loads and validates (its
// examples against their schemas too), in the OpenAPI version API Gateway
// HTTP APIs import, and documents every operation and answer.
func TestDescriptionIsValid(t *testing.T) {
	doc := description(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.0.") {
		t.Errorf("openapi %s, want 3.0.x", doc.OpenAPI)
	}
	for route, op := range operations(doc) {
		if op.OperationID == "" || op.Summary == "" || op.Description == "" {
			t.Errorf("%s: operationId %q, summary %q, description %q: want all three", route, op.OperationID, op.Summary, op.Description)
		}
		for status, resp := range op.Responses.Map() {
			for mediaType, content := range resp.Value.Content {
				if content.Example == nil && len(content.Examples) == 0 {
					t.Errorf("%s %s (%s): no example", route, status, mediaType)
				}
			}
		}
	}
}

// TestErrorCodesAreTheDomains: the description's error codes are the
// ones the handler answers, httpapi.Codes (the domain's and its own
// not_found), exactly.
func TestErrorCodesAreTheDomains(t *testing.T) {
	schema := description(t).Components.Schemas["ErrorCode"]
	if schema == nil {
		t.Fatal("api/openapi.yaml has no ErrorCode schema")
	}
	var described []string
	for _, v := range schema.Value.Enum {
		s, _ := v.(string)
		described = append(described, s)
	}
	var domain []string
	for _, c := range httpapi.Codes {
		domain = append(domain, string(c))
	}
	for _, c := range described {
		if !slices.Contains(domain, c) {
			t.Errorf("api/openapi.yaml has the code %q, which httpapi.Codes lacks", c)
		}
	}
	for _, c := range domain {
		if !slices.Contains(described, c) {
			t.Errorf("httpapi.Codes has %q, which api/openapi.yaml's ErrorCode lacks", c)
		}
	}
	if unique := slices.Compact(slices.Sorted(slices.Values(described))); len(unique) != len(described) {
		t.Errorf("api/openapi.yaml lists a code twice: %v", described)
	}
}

// TestGeneratedClientIsCurrent: api/apiclient is what `make generate`
// writes from api/openapi.yaml now.
func TestGeneratedClientIsCurrent(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	committed := filepath.Join(root, "api", "apiclient", "apiclient.gen.go")
	fresh := filepath.Join(t.TempDir(), "apiclient.gen.go")
	cmd := exec.Command("make", "--no-print-directory", "-s", "generate", "APICLIENT="+fresh)
	cmd.Dir = root
	// Not an enclosing make's flags (make test): this make is a fresh one.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(e string) bool {
		name, _, _ := strings.Cut(e, "=")
		return name == "MAKEFLAGS" || name == "MAKELEVEL" || name == "MFLAGS" || name == "MAKEOVERRIDES"
	})
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make generate: %v\n%s", err, out)
	}
	want, err := os.ReadFile(fresh)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("api/apiclient/apiclient.gen.go is stale: run `make generate` and commit it")
	}
}
