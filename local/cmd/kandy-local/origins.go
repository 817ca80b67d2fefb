package main

import (
	"strconv"
	"strings"

	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
)

// browserOrigins are the origins whose pages make run's servers answer:
// the console's own, and the API's CORS origins (CORS_ALLOWED_ORIGINS, or
// the template's default). A wildcard is left out, and returned apart:
// it would open every local server to every page.
func browserOrigins(s settings) (origins, wildcards []string, err error) {
	cors := s.corsOrigins
	if cors == "" {
		params, err := samtemplate.ParameterDefaults(samtemplate.Path())
		if err != nil {
			return nil, nil, err
		}
		cors = params["CorsAllowedOrigins"]
	}
	api := strconv.Itoa(s.apiPort)
	origins = []string{"http://127.0.0.1:" + api, "http://localhost:" + api, "http://[::1]:" + api}
	for _, o := range strings.Split(cors, ",") {
		switch o = strings.TrimSuffix(strings.TrimSpace(o), "/"); {
		case o == "":
		case strings.Contains(o, "*"):
			wildcards = append(wildcards, o)
		default:
			origins = append(origins, o)
		}
	}
	return origins, wildcards, nil
}
