package gateway

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// CORS is an HTTP API's CorsConfiguration. API Gateway answers preflights
// itself, with no route and no token, and adds the headers to every
// answer to an allowed origin; it drops those the integration sets.
type CORS struct {
	AllowOrigins, AllowMethods, AllowHeaders, ExposeHeaders []string
	MaxAge                                                  int
	AllowCredentials                                        bool
}

// allows reports whether origin is allowed: listed, or matched by "*",
// "https://*" or "http://*".
func (c *CORS) allows(origin string) bool {
	for _, o := range c.AllowOrigins {
		switch {
		case o == "*", strings.EqualFold(o, origin):
			return true
		case strings.HasSuffix(o, "://*") && strings.HasPrefix(strings.ToLower(origin), strings.ToLower(strings.TrimSuffix(o, "*"))):
			return true
		}
	}
	return false
}

// isPreflight: an OPTIONS with an Origin and Access-Control-Request-Method.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// preflight answers a preflight: 204, with the allowed methods, headers
// and max age if the origin is allowed, and no CORS header if it is not.
func (c *CORS) preflight(w http.ResponseWriter, r *http.Request) int {
	h := w.Header()
	if origin := r.Header.Get("Origin"); c.allows(origin) {
		c.originHeaders(h, origin)
		h.Set("Access-Control-Allow-Methods", echoStar(c.AllowMethods, r.Header.Get("Access-Control-Request-Method")))
		if req := r.Header.Get("Access-Control-Request-Headers"); req != "" || len(c.AllowHeaders) > 0 {
			h.Set("Access-Control-Allow-Headers", echoStar(c.AllowHeaders, req))
		}
		if c.MaxAge > 0 {
			h.Set("Access-Control-Max-Age", strconv.Itoa(c.MaxAge))
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}

// annotate adds the headers of an actual request from origin, if allowed.
func (c *CORS) annotate(h http.Header, origin string) {
	if origin == "" || !c.allows(origin) {
		return
	}
	c.originHeaders(h, origin)
	if len(c.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(c.ExposeHeaders, ","))
	}
}

func (c *CORS) originHeaders(h http.Header, origin string) {
	if slices.Contains(c.AllowOrigins, "*") && !c.AllowCredentials {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
	}
	if c.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}

// echoStar lists the allowed values; "*" allows what was asked for.
func echoStar(allowed []string, requested string) string {
	if slices.Contains(allowed, "*") && requested != "" {
		return requested
	}
	return strings.Join(allowed, ",")
}
