package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
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

// consoleFile is a file of the console (local/console), its bundle built
// by make from its TypeScript sources.
func consoleFile(name string) ([]byte, error) {
	path := filepath.Join(processes.RepoRoot(), "local", "console", name)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s is missing: run make run, which builds the console", path)
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
	files := map[string][]byte{}
	for _, name := range []string{"index.html", "console.css", "dist/console.js"} {
		if files[name], err = consoleFile(name); err != nil {
			return gateway.API{}, err
		}
	}
	contract, err := openapicheck.Load()
	if err != nil {
		return gateway.API{}, err
	}
	apiURL := "http://" + addr(s.apiPort)
	// Amplify.configure's names; a page of any allowed origin may read it.
	config, _ := json.Marshal(map[string]string{
		"userPoolId": pool.ID, "userPoolClientId": pool.ClientID, "userPoolEndpoint": pool.URL, "apiUrl": apiURL,
	})
	page := pageHeaders(apiURL, pool.URL)
	err = st.ServeHTTPAPI(srv, site{
		gateway: &gateway.Gateway{API: httpAPI, Verifier: verifier, Function: fns.Pools["ApiFunction"], Log: log, Contract: contract},
		assets: map[string]http.HandlerFunc{
			"/":                    page(asset("text/html; charset=utf-8", files["index.html"])),
			"/console/console.css": page(asset("text/css; charset=utf-8", files["console.css"])),
			"/console/console.js":  page(asset("text/javascript; charset=utf-8", files["dist/console.js"])),
			"/console/config.json": readableBy(s.origins, asset("application/json", config)),
			"/openapi.yaml":        asset("application/yaml", api.OpenAPI),
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

// pageHeaders keep the console from being framed, sniffed or made to run
// a script not its own; it calls the API and the pool only.
func pageHeaders(apiURL, poolURL string) func(http.HandlerFunc) http.HandlerFunc {
	csp := "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self' " + apiURL + " " + poolURL +
		"; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return func(next http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", csp)
			w.Header().Set("X-Frame-Options", "DENY")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			next(w, r)
		}
	}
}

// readableBy lets pages of origins read an answer: a frontend on its own
// dev server loads the pool and client ids at run time.
func readableBy(origins []string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Origin")
		if o := r.Header.Get("Origin"); slices.Contains(origins, o) {
			w.Header().Set("Access-Control-Allow-Origin", o)
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next(w, r)
	}
}

func asset(contentType string, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write(body)
	}
}
