package mxhttp

import (
	"net/http"
	"slices"
	"strings"
)

// Web pages and the client API.
//
// Every answer carries Access-Control-Allow-Origin: * (ServeHTTP), as the
// spec asks so that web clients work, which lets any page open in a
// browser on the device call the loopback API and read the answers. For
// authenticated endpoints that is safe: they need an access token, and a
// page has none unless the user logged in through it. The unauthenticated
// endpoints that change something are the risk: a page could register
// accounts (open registration) or guess passwords at /login and read the
// answers. So such requests (any method but GET and HEAD on a Public
// route) that come from a web page, which browsers mark with an Origin
// header on every such request, preflighted or not, and on a DNS-rebound
// same-origin one too, are refused with 403 M_FORBIDDEN unless the node's
// WebOrigins lists that origin (or "*"). Native clients (matrix-js-sdk in
// Node, matrix-rust-sdk, curl) send no Origin and are not affected; a web
// client served from a known origin is allowed by configuring it.

// fromAllowedOrigin wraps a Public route's handler with that check.
func (rt *Router) fromAllowedOrigin(h HandlerFunc) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			return h(w, r)
		}
		origin, sent := r.Header["Origin"]
		if !sent {
			return h(w, r)
		}
		allowed := rt.node.Config().WebOrigins
		if slices.Contains(allowed, "*") || (len(origin) == 1 && slices.Contains(allowed, origin[0])) {
			return h(w, r)
		}
		return Forbidden("requests from web pages (origin %q) may not use %s here unless the node's web_origins lists that origin",
			strings.Join(origin, ", "), r.URL.Path)
	}
}
