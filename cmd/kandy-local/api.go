package main

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/kandy-provisioner/kandy-provisioner/internal/apigw"
	"github.com/kandy-provisioner/kandy-provisioner/internal/localauth"
	"github.com/kandy-provisioner/kandy-provisioner/internal/localenv"
	"github.com/kandy-provisioner/kandy-provisioner/internal/localstack"
	"github.com/kandy-provisioner/kandy-provisioner/internal/samtemplate"
)

// consolePage is the local console served at /.
//
//go:embed console/index.html
var consolePage []byte

// cognitoBundle is amazon-cognito-identity-js's browser bundle, from
// tools/node_modules, served to the console: no CDN.
func cognitoBundle() ([]byte, error) {
	path := filepath.Join(localenv.RepoRoot(), "tools", "node_modules", "amazon-cognito-identity-js", "dist", "amazon-cognito-identity.min.js")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s is not installed: run `make tools`", path)
	}
	return b, nil
}

// serveAPI serves the emulated HTTP API of ApiFunction, as the template
// declares it, and the console page with its Cognito client.
func serveAPI(st *localstack.Stack, s settings, fns *localstack.Functions, pool *localstack.UserPool, verifier *localauth.Verifier, log *slog.Logger) (apigw.API, error) {
	tpl, err := samtemplate.Load(samtemplate.Path())
	if err != nil {
		return apigw.API{}, err
	}
	params, err := samtemplate.ParameterDefaults(samtemplate.Path())
	if err != nil {
		return apigw.API{}, err
	}
	if s.corsOrigins != "" {
		params["CorsAllowedOrigins"] = s.corsOrigins
	}
	api, err := apigw.FromTemplate(tpl, "ApiFunction", params)
	if err != nil {
		return apigw.API{}, err
	}
	bundle, err := cognitoBundle()
	if err != nil {
		return apigw.API{}, err
	}
	config, _ := json.Marshal(map[string]string{
		"region": localstack.Region, "userPoolId": pool.ID, "clientId": pool.ClientID, "endpoint": pool.URL + "/",
	})
	mux := http.NewServeMux()
	mux.Handle("/", &apigw.Gateway{API: api, Verifier: verifier, Function: fns.Pools["ApiFunction"], Log: log})
	mux.HandleFunc("GET /{$}", asset("text/html; charset=utf-8", consolePage))
	mux.HandleFunc("GET /console/config.json", asset("application/json", config))
	mux.HandleFunc("GET /console/amazon-cognito-identity.min.js", asset("text/javascript; charset=utf-8", bundle))
	_, err = st.Serve(s.apiPort, mux)
	return api, err
}

func asset(contentType string, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write(body)
	}
}
