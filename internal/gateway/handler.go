package gateway

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/wardengw/warden/internal/h1server"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/telemetry"
)

// statusWriter records the response status for metrics, and puts the
// gateway's own fields on every response it writes.
type statusWriter struct {
	http.ResponseWriter
	status   int
	hsts, id []string // the gateway's Strict-Transport-Security and X-Request-Id
}

// WriteHeader sets HSTS as the gateway's (whatever a handler or the
// upstream put there) and the request ID unless one is set, then writes
// the status. Interim (1xx) responses included: ReverseProxy's 1xx
// handling clears the header map after each, which would otherwise leave
// the final response without them.
func (w *statusWriter) WriteHeader(code int) {
	h := w.ResponseWriter.Header()
	h["Strict-Transport-Security"] = w.hsts
	if _, ok := h["X-Request-Id"]; !ok {
		h["X-Request-Id"] = w.id
	}
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush forwards streaming flushes.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// newRequestID returns 96 random bits in hex: a correlation ID for logs,
// the client and the upstream, not a secret (the client sees it), so it
// comes from math/rand/v2's generator (ChaCha8, seeded by the runtime),
// which costs a fraction of crypto/rand's.
func newRequestID() string {
	var b [12]byte
	var h [24]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint32(b[8:], rand.Uint32())
	hex.Encode(h[:], b[:])
	return string(h[:]) // one allocation, where EncodeToString makes two
}

// cleanPath reports whether p is already in canonical form: no dot
// segments, no empty segments, no backslashes. A path like
// /public/../secure/x would otherwise match the /public/ route here and
// reach /secure/x at an upstream that normalises it.
func cleanPath(p string) bool {
	if p == "" || p[0] != '/' || strings.ContainsAny(p, "\\\x00") {
		return false
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// exchange is the gateway's state of one request: its Exchange, status
// writer and request ID field, in one allocation.
type exchange struct {
	x  policy.Exchange
	sw statusWriter
	id [1]string
}

// begin starts a request as the gateway answers every one, a refusal
// before any route included: HSTS and a fresh request ID on w, the
// request's Exchange (attached to the request it returns), and the status
// writer over w through which the answer must go. It must come first,
// before the request or its context reaches any other goroutine: the lean
// server's context holds the Exchange itself.
func (g *Gateway) begin(w http.ResponseWriter, r *http.Request, rt *snapshot, start time.Time) (*exchange, *http.Request) {
	h := w.Header()
	h["Strict-Transport-Security"] = rt.hstsHeader
	st := &exchange{x: policy.Exchange{ID: newRequestID(), Start: start, Remote: r.RemoteAddr, Env: g.env}}
	ci := connInfoOf(r)
	st.x.ConnStart, st.x.Peer, st.x.PeerIP = ci.start, ci.peer, ci.peerIP
	st.id[0] = st.x.ID
	h["X-Request-Id"] = st.id[:] // capacity 1: an append copies
	st.sw.hsts, st.sw.id = rt.hstsHeader, st.id[:]
	st.sw.ResponseWriter = w
	return st, policy.AttachExchange(r, &st.x)
}

// count records the request in the request metric rm: its status (200
// if none was written) and its duration.
func (st *exchange) count(rm *telemetry.RouteMetrics) {
	status := st.sw.status
	if status == 0 {
		status = http.StatusOK
	}
	rm.Request(status, time.Since(st.x.Start).Seconds())
}

// ServeHTTP is the HTTPS entry point: HSTS, request ID, framing check,
// identity headers stripped, the internal CA's publication, path check,
// routing, the legacy/modern choice, the body limit, then the route's
// policies (inside the brute-force guard) and upstream.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := g.rt.Load()
	st, r := g.begin(w, r, rt, time.Now())
	x, sw := &st.x, &st.sw
	rm := rt.noRoute // the matched route's cached metric children once routed
	defer func() { st.count(rm) }()

	if reason, ok := framingViolation(r); ok {
		if reason == "header_too_large" {
			policy.Deny(sw, r, policy.HeadersTooLarge())
			return
		}
		policy.Deny(sw, r, policy.AmbiguousFraming(reason))
		return
	}
	// Identity headers are the gateway's to set: whatever the client sent
	// under those names is dropped on every route.
	stripIdentity(r, rt.identityNames)
	if g.servePKI(sw, r) {
		return
	}
	if !cleanPath(r.URL.Path) {
		policy.Deny(sw, r, policy.Problem{Status: http.StatusBadRequest, Reason: "path_not_normalized",
			Detail: "the request path has dot segments, empty segments or backslashes"})
		return
	}
	ro, wrongMethod := rt.router.match(r)
	if ro == nil {
		if wrongMethod {
			policy.Deny(sw, r, policy.Problem{Status: http.StatusMethodNotAllowed, Reason: "method_not_allowed",
				Detail: "the route does not accept this method", Severity: "info"})
			return
		}
		policy.Deny(sw, r, policy.Problem{Status: http.StatusNotFound, Reason: "no_route",
			Detail: "no route matches this host and path", Severity: "info"})
		return
	}
	x.Route, rm = ro.name, ro.metrics

	if ro.legacy != nil {
		variant, consumer := "modern", "-"
		if tlsState := connTLS(r); tlsState == nil || len(tlsState.PeerCertificates) == 0 {
			variant = "legacy"
		}
		defer func() {
			if x.Identity.Consumer != "" {
				consumer = x.Identity.Consumer
			}
			g.metrics.Variants.WithLabelValues(ro.name, variant, g.consumerLabel(consumer)).Inc()
		}()
		if variant == "legacy" {
			if !g.preflight(sw, r, rt) {
				return
			}
			ro.legacy.ServeHTTP(sw, r)
			return
		}
	}
	if !g.handshakeIdentity(sw, r, x, ro) { // revocation-checked (clientcert.go)
		return
	}
	if !g.preflight(sw, r, rt) {
		return
	}
	ro.handler.ServeHTTP(sw, r)
}

// refuse is the lean HTTP/1.x server's Refuse hook: a request it refuses
// itself, before ServeHTTP could see it (malformed, an unsupported
// version, Expect or transfer coding, oversized headers), gets what every
// refusal of the gateway gets: HSTS, a request ID, the problem+json
// answer, the audit event with the client's address, warden_denies_total
// and the request metric, under the labels of a request no route matched
// (the request is not routed). The connection is closed after it.
func (g *Gateway) refuse(w http.ResponseWriter, r *http.Request, why h1server.Refusal) {
	rt := g.rt.Load()
	st, r := g.begin(w, r, rt, time.Now())
	defer st.count(rt.noRoute)
	p := policy.Problem{Status: why.Status, Reason: why.Reason, Detail: why.Detail, Close: true}
	if why.Reason == h1server.ReasonHeadersTooLarge {
		p = policy.HeadersTooLarge() // the 431 backstop: recorded as the framing guard's refusal is
	}
	policy.Deny(&st.sw, r, p)
}

// preflight applies the body limit; false means the request was refused.
func (g *Gateway) preflight(w http.ResponseWriter, r *http.Request, rt *snapshot) bool {
	if r.ContentLength > rt.maxBody {
		policy.Deny(w, r, policy.Problem{Status: http.StatusRequestEntityTooLarge, Reason: "body_too_large",
			Detail: "the request body exceeds the limit", Close: true})
		return false
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, rt.maxBody)
	}
	return true
}

// stripIdentity removes, from the request's headers and trailers, every
// field whose name is an identity header's, also when spelled with
// underscores for dashes (CGI-style upstreams read X_Client_Cert as
// X-Client-Cert), and drops those names from Connection (so a client
// cannot make the proxy remove the gateway's own values). names holds
// lower-case, dash-spelled names.
func stripIdentity(r *http.Request, names map[string]bool) {
	for _, h := range []http.Header{r.Header, r.Trailer} {
		for k := range h {
			if isIdentity(names, k) {
				delete(h, k)
			}
		}
	}
	if conn := r.Header["Connection"]; len(conn) > 0 && listsIdentity(names, conn) {
		kept := conn[:0:0]
		for _, v := range conn {
			var toks []string
			for _, tok := range strings.Split(v, ",") {
				if tok = strings.TrimSpace(tok); tok != "" && !isIdentity(names, tok) {
					toks = append(toks, tok)
				}
			}
			if len(toks) > 0 {
				kept = append(kept, strings.Join(toks, ", "))
			}
		}
		if len(kept) == 0 {
			delete(r.Header, "Connection")
		} else {
			r.Header["Connection"] = kept
		}
	}
}

// listsIdentity reports whether a Connection field lists an identity
// header: only then is it rewritten (the usual "keep-alive" or "close"
// costs a scan, no allocation).
func listsIdentity(names map[string]bool, conn []string) bool {
	for _, v := range conn {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" && isIdentity(names, tok) {
				return true
			}
		}
	}
	return false
}

// identityKey is a header name in lower case with underscores as dashes.
func identityKey(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// isIdentity reports whether names holds identityKey(name), without
// allocating for the usual short name.
func isIdentity(names map[string]bool, name string) bool {
	var buf [64]byte
	if len(name) > len(buf) {
		return names[identityKey(name)]
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		case c >= 0x80: // non-ASCII: strings.ToLower's Unicode rules
			return names[identityKey(name)]
		}
		buf[i] = c
	}
	return names[string(buf[:len(name)])]
}

// maxConsumerLabels bounds the consumer label of the variant metric: a
// consumer can come from a token claim, and an unbounded label set would
// let clients grow the gateway's (and Prometheus's) memory.
const maxConsumerLabels = 1000

// consumerLabel returns consumer while fewer than maxConsumerLabels
// distinct ones have been seen, "other" after.
func (g *Gateway) consumerLabel(consumer string) string {
	if _, ok := g.consumers.Load(consumer); ok {
		return consumer
	}
	if g.consumerCount.Add(1) > maxConsumerLabels {
		g.consumerCount.Add(-1)
		return "other"
	}
	if _, loaded := g.consumers.LoadOrStore(consumer, true); loaded {
		g.consumerCount.Add(-1)
	}
	return consumer
}
