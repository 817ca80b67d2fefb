package samtemplate_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/kandy-provisioner/kandy-provisioner/api"
	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
)

// description is api/openapi.yaml, loaded.
func description(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
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

// TestOperationsAreTheTemplates: the description's operations are
// exactly the HttpApi routes of template.yaml as the SAM transform
// deploys them, each with the same security requirement: the Cognito
// authorizer with the routes' AuthorizationScopes.
func TestOperationsAreTheTemplates(t *testing.T) {
	stack, err := samtemplate.Transform(map[string]string{
		"KandySecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:kandy-project-AbCdEf"})
	if err != nil {
		t.Fatal(err)
	}
	apis := stack.OfType("AWS::ApiGatewayV2::Api")
	if len(apis) != 1 {
		t.Fatalf("HTTP APIs in the stack: %v, want one", apis)
	}
	props, _ := stack.Resolve(stack.Resources[apis[0]].Properties).(map[string]any)
	body, _ := props["Body"].(map[string]any)
	paths, _ := body["paths"].(map[string]any)
	deployed := map[string]string{} // route → its security, as JSON
	for path, item := range paths {
		methods, _ := item.(map[string]any)
		for method, op := range methods {
			security, _ := op.(map[string]any)["security"]
			raw, _ := json.Marshal(security)
			deployed[strings.ToUpper(method)+" "+path] = string(raw)
		}
	}
	doc := description(t)
	described := map[string]string{}
	for route, op := range operations(doc) {
		security := doc.Security
		if op.Security != nil {
			security = *op.Security
		}
		raw, _ := json.Marshal(security)
		described[route] = string(raw)
	}
	for route, sec := range deployed {
		got, ok := described[route]
		switch {
		case !ok:
			t.Errorf("%s is deployed, and api/openapi.yaml lacks it", route)
		case got != sec:
			t.Errorf("%s: api/openapi.yaml requires %s, the deployed route %s", route, got, sec)
		}
	}
	for route := range described {
		if _, ok := deployed[route]; !ok {
			t.Errorf("%s is in api/openapi.yaml, and template.yaml has no such route", route)
		}
	}
	if len(deployed) == 0 {
		t.Error("the deployed HTTP API has no routes")
	}
}
