package gateway

import (
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/policy"
)

// legacyVariant wraps a route's legacy chain: 410 after the sunset,
// Deprecation (RFC 9745), Sunset (RFC 8594) and Link headers on every
// response, and an audit event with full detail for every request.
type legacyVariant struct {
	route                     string
	deprecation, sunset       time.Time
	deprecationHdr, sunsetHdr string
	link                      string
	next                      http.Handler
}

func newLegacyVariant(route string, l *config.Legacy, chain http.Handler) *legacyVariant {
	v := &legacyVariant{route: route, sunset: l.Sunset, next: chain,
		sunsetHdr: l.Sunset.UTC().Format(http.TimeFormat),
		link:      "<" + l.Link + `>; rel="deprecation"; type="text/html", <` + l.Link + `>; rel="sunset"; type="text/html"`}
	v.deprecationHdr = "@" + strconv.FormatInt(l.Deprecation.Unix(), 10)
	return v
}

func (v *legacyVariant) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := policy.ExchangeOf(r)
	now := x.Env.Clock()
	h := w.Header()
	h.Set("Deprecation", v.deprecationHdr)
	h.Set("Sunset", v.sunsetHdr)
	h.Set("Link", v.link)
	if !now.Before(v.sunset) {
		policy.Deny(w, r, policy.Problem{Status: http.StatusGone, Reason: "legacy_sunset",
			Detail: "this legacy access path has been retired; see the Link header for the migration", Severity: audit.Info})
		return
	}
	v.next.ServeHTTP(w, r)
	status := 0
	if sw, ok := w.(*statusWriter); ok {
		status = sw.status
	}
	x.Env.Audit.Emit(audit.Event{Type: "legacy_request", Severity: audit.Info, RequestID: x.ID, Route: v.route,
		Remote: x.Remote, Status: status, Fields: map[string]any{
			"method": r.Method, "path": r.URL.Path, "query_params": queryNames(r), "host": r.Host,
			"user_agent": r.UserAgent(), "consumer": x.Identity.Consumer, "methods": x.Identity.Methods,
			"proto": r.Proto, "content_length": r.ContentLength,
		}})
}

// queryNames lists the query's parameter names, never their values: a
// legacy client may well put a credential there.
func queryNames(r *http.Request) []string {
	if r.URL.RawQuery == "" {
		return nil
	}
	q := r.URL.Query()
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
