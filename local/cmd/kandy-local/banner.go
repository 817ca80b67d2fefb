package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/kandy-provisioner/kandy-provisioner/local/gateway"
	"github.com/kandy-provisioner/kandy-provisioner/local/localrun"
)

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// banner says what runs where, and example commands for the ports in use.
func banner(s settings, st *localrun.Stack, fns *localrun.Functions, pool *localrun.UserPool, api gateway.API) {
	w := io.Writer(stdout)
	routes := make([]string, 0, len(api.Routes))
	for r := range api.Routes {
		routes = append(routes, r)
	}
	sort.Strings(routes)
	functions := make([]string, 0, len(fns.Pools))
	for id := range fns.Pools {
		functions = append(functions, id)
	}
	sort.Strings(functions)
	cors := "no CORS"
	if api.CORS != nil {
		cors = "CORS origins " + strings.Join(api.CORS.AllowOrigins, ", ")
	}
	fmt.Fprintf(w, "\nkandy-provisioner is running locally. Ctrl-C stops everything.\n\n")
	fmt.Fprintf(w, "  HTTP API        http://%s   (%s; %s)\n", addr(s.apiPort), strings.Join(routes, ", "), cors)
	fmt.Fprintf(w, "  console         http://%s/\n", addr(s.apiPort))
	fmt.Fprintf(w, "  OpenAPI         http://%s/openapi.yaml   (every request and answer is checked against it)\n", addr(s.apiPort))
	fmt.Fprintf(w, "  Cognito         %s   (cognito-local: pool %s, app client %s)\n", pool.URL, pool.ID, pool.ClientID)
	fmt.Fprintf(w, "  Lambda          %s   (Invoke API; %s; up to %d emulators each)\n", fns.URL, strings.Join(functions, ", "), s.concurrency)
	fmt.Fprintf(w, "  SQS             %s   (goaws; %s)\n", st.SQSURL, queues(st))
	if st.Kandy != nil {
		fmt.Fprintf(w, "  Kandy simulator %s   (quota %d users)\n", st.KandyURL, s.quota)
		kandyVar := ""
		if s.kandyPort != 8090 {
			kandyVar = " KANDY_PORT=" + strconv.Itoa(s.kandyPort)
		}
		fmt.Fprintf(w, "                  local control: http://%s/_sim (state), make kandy-down%s / make kandy-up%[2]s (outage)\n", addr(s.kandyPort), kandyVar)
	} else {
		fmt.Fprintf(w, "  Kandy           %s   (real)\n", st.KandyURL)
	}
	fmt.Fprintf(w, "  Secrets Manager %s   (GetSecretValue: %s)\n", st.SecretsURL, st.SecretID)
	store := "in memory, gone at Ctrl-C (FRESH=1); the pool and client ids change on the next start"
	if s.dataDir != "" {
		store = "kept in " + s.dataDir + ": the pool and client ids stay; make run FRESH=1 starts afresh"
	}
	fmt.Fprintf(w, "  DynamoDB        %s   (dynalite, table %s)\n", st.DynamoURL, st.Table)
	fmt.Fprintf(w, "  KMS             %s   (local-kms; credentials are stored encrypted)\n", st.KMSURL)
	fmt.Fprintf(w, "  data            %s\n", store)
	fmt.Fprintf(w, "  browser pages   from %s only; every server refuses other origins and hosts that are not 127.0.0.1, localhost or [::1]\n",
		strings.Join(s.origins, ", "))
	if len(s.wildcards) > 0 {
		fmt.Fprintf(w, "                  CORS_ALLOWED_ORIGINS' %s opens no local server: name each origin\n", strings.Join(s.wildcards, ", "))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Try it:\n  make signup USER=ada%[1]s\n  TOKEN=$(make token USER=ada%[1]s)\n  curl -s http://%[2]s/users/me -H \"Authorization: Bearer $TOKEN\"\n\n",
		makeVars(s), addr(s.apiPort))
}

// makeVars are the make variables the example commands need for the
// ports in use.
func makeVars(s settings) string {
	if s.authPort == 9229 {
		return ""
	}
	return " AUTH_PORT=" + strconv.Itoa(s.authPort)
}

func queues(st *localrun.Stack) string {
	names := make([]string, 0, len(st.Queues))
	for _, q := range st.Queues {
		names = append(names, q.Name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
