package gateway

import (
	"fmt"
	"strings"

	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
)

// API is what template.yaml declares of the HTTP API in front of one
// function: its routes and their authorization, CORS and throttling.
type API struct {
	Routes map[string]Route // by "METHOD /path"
	CORS   *CORS            // nil: no CorsConfiguration
	// Burst and Rate are each route's throttling (DefaultRouteSettings);
	// 0 means none.
	Burst int
	Rate  float64
}

// Route is one route and what its authorizer demands.
type Route struct {
	JWT    bool     // a JWT authorizer guards it
	Scopes []string // its authorization scopes: the token needs one of them
}

// FromTemplate reads the HttpApi events of functionID and the API they
// name. params holds the template parameters' values (CorsAllowedOrigins).
func FromTemplate(tpl *samtemplate.Template, functionID string, params map[string]string) (API, error) {
	api := API{Routes: map[string]Route{}}
	evs, _ := tpl.Resources[functionID].Properties["Events"].(map[string]any)
	apiID := ""
	for name, e := range evs {
		ev, _ := e.(map[string]any)
		if ev["Type"] != "HttpApi" {
			continue
		}
		p, _ := ev["Properties"].(map[string]any)
		id := refName(p["ApiId"])
		if apiID != "" && id != apiID {
			return API{}, fmt.Errorf("%s: event %s is on another API (%s, not %s)", functionID, name, id, apiID)
		}
		apiID = id
		api.Routes[fmt.Sprintf("%s %s", p["Method"], p["Path"])] = route(tpl, id, p)
	}
	props := tpl.Resources[apiID].Properties
	if c, ok := props["CorsConfiguration"].(map[string]any); ok {
		api.CORS = corsFrom(c, params)
	}
	settings, _ := props["DefaultRouteSettings"].(map[string]any)
	api.Burst, _ = settings["ThrottlingBurstLimit"].(int)
	switch r := settings["ThrottlingRateLimit"].(type) {
	case int:
		api.Rate = float64(r)
	case float64:
		api.Rate = r
	}
	return api, nil
}

// route applies an event's Auth over its API's default authorizer.
func route(tpl *samtemplate.Template, apiID string, event map[string]any) Route {
	apiAuth, _ := tpl.Resources[apiID].Properties["Auth"].(map[string]any)
	authorizers, _ := apiAuth["Authorizers"].(map[string]any)
	name, _ := apiAuth["DefaultAuthorizer"].(string)
	evAuth, _ := event["Auth"].(map[string]any)
	if n, ok := evAuth["Authorizer"].(string); ok {
		name = n
	}
	if name == "" || name == "NONE" {
		return Route{}
	}
	def, _ := authorizers[name].(map[string]any)
	scopes := samtemplate.Strings(def["AuthorizationScopes"])
	if s, ok := evAuth["AuthorizationScopes"]; ok {
		scopes = samtemplate.Strings(s)
	}
	return Route{JWT: true, Scopes: scopes}
}

func corsFrom(c map[string]any, params map[string]string) *CORS {
	cors := &CORS{
		AllowOrigins:  resolveList(c["AllowOrigins"], params),
		AllowMethods:  resolveList(c["AllowMethods"], params),
		AllowHeaders:  resolveList(c["AllowHeaders"], params),
		ExposeHeaders: resolveList(c["ExposeHeaders"], params),
	}
	cors.MaxAge, _ = c["MaxAge"].(int)
	cors.AllowCredentials, _ = c["AllowCredentials"].(bool)
	return cors
}

// resolveList reads a list, or a Ref to a comma-delimited parameter.
func resolveList(v any, params map[string]string) []string {
	if name := refName(v); name != "" {
		var out []string
		for _, s := range strings.Split(params[name], ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return samtemplate.Strings(v)
}

func refName(v any) string {
	m, _ := v.(map[string]any)
	s, _ := m["Ref"].(string)
	return s
}
