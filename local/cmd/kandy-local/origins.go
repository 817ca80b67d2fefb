package main

import (
	"strconv"
	"strings"
)

// browserOrigins are the origins whose pages make run's servers that pages
// call (the HTTP API and Cognito) answer: the console's own, on the port
// the API listens on, and CORS_ALLOWED_ORIGINS; never the template's
// default, which a moved API_PORT would leave to whatever else listens
// there. A wildcard is left out, and returned apart: it would open those
// servers to every page.
func browserOrigins(apiPort int, cors string) (origins, wildcards []string) {
	api := strconv.Itoa(apiPort)
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
	return origins, wildcards
}
