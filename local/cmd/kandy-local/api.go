package main

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/kandy-provisioner/kandy-provisioner/api"
	"github.com/kandy-provisioner/kandy-provisioner/local/authorizer"
	"github.com/kandy-provisioner/kandy-provisioner/local/gateway"
	"github.com/kandy-provisioner/kandy-provisioner/local/guard"
	"github.com/kandy-provisioner/kandy-provisioner/local/localrun"
	"github.com/kandy-provisioner/kandy-provisioner/local/openapicheck"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
)

// consolePage is the local console served at /.
//
//go:embed console/index.html
var consolePage []byte

// cognitoBundle is amazon-cognito-identity-js's browser bundle, from
// tools/node_modules, served to the console: no CDN.
func cognitoBundle() ([]byte, error) {
	path := filepath.Join(processes.RepoRoot(), "tools", "node_modules", "amazon-cognito-identity-js", "dist", "amazon-cognito-identity.min.js")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s is not installed: run `make tools`", path)
	}
	return b, nil
}

// serveAPI serves the emulated HTTP API of ApiFunction, as the template
// declares it, checking every exchange against api/openapi.yaml; and,
// beside it, the console page with its Cognito client and the description.
func serveAPI(st *localrun.Stack, srv *guard.Server, s settings, fns *localrun.Functions, pool *localrun.UserPool, verifier *authorizer.Verifier, log *slog.Logger) (gateway.API, error) {
	tpl, err := samtemplate.Load(samtemplate.Path())
	if err != nil {
		return gateway.API{}, err
	}
	params, err := samtemplate.ParameterDefaults(samtemplate.Path())
	if err != nil {
		return gateway.API{}, err
	}
	// Exactly the origins in use, never the template's default.
	params["CorsAllowedOrigins"] = strings.Join(s.origins, ",")
	httpAPI, err := gateway.FromTemplate(tpl, "ApiFunction", params)
	if err != nil {
		return gateway.API{}, err
	}
	bundle, err := cognitoBundle()
	if err != nil {
		return gateway.API{}, err
	}
	contract, err := openapicheck.Load()
	if err != nil {
		return gateway.API{}, err
	}
	config, _ := json.Marshal(map[string]string{
		"region": localrun.Region, "userPoolId": pool.ID, "clientId": pool.ClientID, "endpoint": pool.URL + "/",
	})
	err = st.ServeHTTPAPI(srv, site{
		gateway: &gateway.Gateway{API: httpAPI, Verifier: verifier, Function: fns.Pools["ApiFunction"], Log: log, Contract: contract},
		assets: map[string]http.HandlerFunc{
			"/":                    asset("text/html; charset=utf-8", consolePage),
			"/console/config.json": asset("application/json", config),
			"/console/amazon-cognito-identity.min.js": asset("text/javascript; charset=utf-8", bundle),
			"/openapi.yaml": asset("application/yaml", api.OpenAPI),
		},
	})
	return httpAPI, err
}

// site serves the console's assets and hands every other request to the
// gateway as it came: http.ServeMux would redirect a path such as
// //users/me, which API Gateway answers with a 404.
type site struct {
	gateway http.Handler
	assets  map[string]http.HandlerFunc // by exact path, for GET
}

func (s site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a, ok := s.assets[r.URL.Path]; ok && r.Method == http.MethodGet {
		a(w, r)
		return
	}
	s.gateway.ServeHTTP(w, r)
}

func asset(contentType string, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write(body)
	}
}
