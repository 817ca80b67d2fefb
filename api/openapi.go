// Package api holds the HTTP API's OpenAPI description, api/openapi.yaml:
// the contract frontends build on. The local run serves it, and the tests
// check the service and the template against it.
package api

import _ "embed"

// OpenAPI is the text of api/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
