package policy

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/wardengw/warden/internal/audit"
)

// Problem describes a refusal. Reason is a stable, public code
// (snake_case); Detail is shown to the client and must never say why a
// secret failed beyond the reason code. Cause is for the audit log only.
type Problem struct {
	Status int
	Reason string
	Title  string // defaults to the status text
	Detail string
	// Event is the audit event type; "request_denied" if empty.
	Event    string
	Severity string         // audit severity; warning if empty
	Cause    error          // internal cause, logged, never sent
	Fields   map[string]any // extra audit fields
	Header   http.Header    // extra response headers (Retry-After, WWW-Authenticate…)
	// Close asks that the client connection be closed after the response.
	Close bool
}

// AmbiguousFraming is the problem of a request the framing guard
// (internal/framing) refused: ambiguous or malformed framing, in its
// header block or its body, the shapes of request smuggling. reason is
// the guard's reason code.
func AmbiguousFraming(reason string) Problem {
	return Problem{Status: http.StatusBadRequest, Reason: "ambiguous_framing",
		Detail: "the request's framing is ambiguous or malformed", Event: "request_smuggling_refused",
		Fields: map[string]any{"framing": reason}, Close: true}
}

// HeadersTooLarge is the problem of a request whose request line and
// header block exceed the limit (the framing guard's, or the HTTP/1.x
// server's backstop behind it).
func HeadersTooLarge() Problem {
	return Problem{Status: http.StatusRequestHeaderFieldsTooLarge, Reason: "headers_too_large",
		Detail: "the request headers exceed the limit", Close: true}
}

// ProblemType returns the RFC 9457 "type" URI for a reason code.
func ProblemType(reason string) string { return "urn:warden:problem:" + reason }

type problemBody struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Reason    string `json:"reason"`
	RequestID string `json:"request_id,omitempty"`
}

// Deny is the single deny path: it writes an RFC 9457 problem+json
// response, records the audit event and counts the metric.
func Deny(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if p.Event == "" {
		p.Event = "request_denied"
	}
	if p.Severity == "" {
		p.Severity = audit.Warning
	}
	x := ExchangeOf(r)
	body := problemBody{Type: ProblemType(p.Reason), Title: p.Title, Status: p.Status, Detail: p.Detail, Reason: p.Reason}
	if x != nil {
		body.RequestID = x.ID
		record(x, r, p)
	}
	h := w.Header()
	for k, v := range p.Header {
		h[k] = v
	}
	b, _ := json.Marshal(body)
	b = append(b, '\n')
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Encoding")
	if p.Close {
		h.Set("Connection", "close")
	}
	w.WriteHeader(p.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

func record(x *Exchange, r *http.Request, p Problem) {
	if x.Env == nil {
		return
	}
	fields := map[string]any{"method": r.Method, "path": r.URL.Path}
	if x.Identity.Consumer != "" {
		fields["consumer"] = x.Identity.Consumer
	}
	for k, v := range p.Fields {
		fields[k] = v
	}
	if p.Cause != nil {
		fields["cause"] = p.Cause.Error()
	}
	x.Env.Audit.Emit(audit.Event{
		Type: p.Event, Severity: p.Severity, RequestID: x.ID, Route: x.Route,
		Remote: x.Remote, Reason: p.Reason, Status: p.Status, Detail: p.Detail, Fields: fields,
	})
	if p.Status == http.StatusUnauthorized && x.Env.AuthFailures != nil {
		x.Env.AuthFailures.Failed(r, x, p.Reason)
	}
	if x.Env.Metrics != nil {
		route := x.Route
		if route == "" {
			route = "-"
		}
		x.Env.Metrics.Denies.WithLabelValues(route, p.Reason).Inc()
	}
}
