package gateway

import (
	"net/http"
	"sort"
	"strings"

	"github.com/wardengw/warden/internal/telemetry"
)

// route is a compiled route: matchers and the handler chain.
type route struct {
	name    string
	host    string // "" any, "api.example.com", or "*.example.com"
	prefix  string
	methods map[string]bool         // nil: any
	handler http.Handler            // policies, then the upstream
	legacy  http.Handler            // the legacy variant, for connections without a client certificate; nil if none
	mtls    bool                    // the route has an mtls policy, which checks client certificates itself
	metrics *telemetry.RouteMetrics // the route's request metrics, resolved once
}

// router picks the route for a request: the most specific host (exact,
// then the longest wildcard, then any), then the longest path prefix.
type router struct {
	routes []*route // sorted by specificity, most specific first
}

func hostRank(h string) int {
	switch {
	case h == "":
		return 0
	case strings.HasPrefix(h, "*."):
		return 1
	}
	return 2
}

func newRouter(rs []*route) *router {
	sorted := append([]*route(nil), rs...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if ra, rb := hostRank(a.host), hostRank(b.host); ra != rb {
			return ra > rb
		}
		if len(a.host) != len(b.host) {
			return len(a.host) > len(b.host)
		}
		if len(a.prefix) != len(b.prefix) {
			return len(a.prefix) > len(b.prefix)
		}
		// Equal specificity: keep each host+prefix's routes together, so
		// that match sees all of them before it gives up with 405.
		if a.host != b.host {
			return a.host < b.host
		}
		return a.prefix < b.prefix
	})
	return &router{routes: sorted}
}

func hostMatches(pattern, host string) bool {
	switch {
	case pattern == "":
		return true
	case strings.HasPrefix(pattern, "*."):
		suffix := pattern[1:] // ".example.com"
		return len(host) > len(suffix) && strings.HasSuffix(host, suffix) && !strings.Contains(host[:len(host)-len(suffix)], ".")
	}
	return pattern == host
}

// requestHost returns the request's host in lower case, without port.
func requestHost(r *http.Request) string {
	h := r.Host
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		h = h[:i]
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// prefixMatches matches path prefixes by whole segments: "/api/" matches
// what starts with "/api/"; "/api" matches "/api" and what starts with
// "/api/", but not "/apiary" (a route's policies must not apply to, or be
// escaped by, a neighbouring path that happens to share its letters).
func prefixMatches(prefix, path string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || strings.HasSuffix(prefix, "/") || path[len(prefix)] == '/'
}

// match returns the route for r, or nil and whether a route matched the
// host and path but not the method. Only the routes of the most specific
// host and prefix that match are considered: a method they do not accept
// gets 405, never a less specific route (a POST to a GET-only /admin/
// must not fall through to a catch-all / without /admin/'s policies).
func (rt *router) match(r *http.Request) (*route, bool) {
	host := requestHost(r)
	path := r.URL.Path
	var best *route
	for _, ro := range rt.routes {
		if best != nil && (ro.host != best.host || ro.prefix != best.prefix) {
			break // sorted by specificity: the rest are less specific
		}
		if !hostMatches(ro.host, host) || !prefixMatches(ro.prefix, path) {
			continue
		}
		best = ro
		if ro.methods == nil || ro.methods[r.Method] {
			return ro, false
		}
	}
	return nil, best != nil
}
