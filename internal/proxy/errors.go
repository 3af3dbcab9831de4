package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/framing"
	"github.com/wardengw/warden/internal/policy"
)

// Reason codes of upstream failures: the public reason, the audit event
// type and the warden_upstream_errors_total label.
const (
	ReasonPinMismatch        = "upstream_pin_mismatch"
	ReasonTLSVerifyFailed    = "upstream_tls_verify_failed"
	ReasonTLSHandshakeFailed = "upstream_tls_handshake_failed" // e.g. upstream refused our client certificate, or does not speak TLS
	ReasonTimeout            = "upstream_timeout"
	ReasonProtocolError      = "upstream_protocol_error"    // the upstream's response could not be parsed or violates HTTP framing
	ReasonConnectionClosed   = "upstream_connection_closed" // an established connection closed or reset before the response was complete
	ReasonUnavailable        = "upstream_unavailable"       // no connection: refused, unreachable, dropped during the handshake
)

// ProtocolError is an upstream response the gateway could not parse or
// that violates HTTP framing (RFC 9112): a malformed status line or
// header field, an oversized header section, conflicting or unsupported
// framing, a status code outside 100-599, a protocol switch nobody asked
// for, too many informational responses, a malformed chunked body, or a
// TLS record that failed its integrity check. A buggy upstream sends
// these, and so does someone tampering with the hop. The response is never
// passed on: the client gets 502 upstream_protocol_error, or, when the
// failure comes after the status line went out, a cut-off response.
type ProtocolError struct {
	Err error // what was wrong, for the audit event
}

// Error implements error.
func (e *ProtocolError) Error() string { return "upstream sent an invalid response: " + e.Err.Error() }

// Unwrap returns the parser's or the transport's error.
func (e *ProtocolError) Unwrap() error { return e.Err }

// closedError is the upstream closing or resetting an established
// connection before its response was complete: after the request (or part
// of it) was sent, so the upstream may have acted on it.
type closedError struct{ err error }

func (e closedError) Error() string { return "upstream closed the connection: " + e.err.Error() }
func (e closedError) Unwrap() error { return e.err }

// readFailure types a failure to read a response on an established
// connection. ioErr says whether err is the connection's own failure
// (the upstream closed or reset it) rather than a parser's verdict on the
// bytes it sent. A timeout, or an alert the upstream sent, is left as it
// is: classify has its reasons; but for an alert refusing a record the
// gateway sent (isRecordAlert), and a TLS record header crypto/tls
// refuses, which are protocol errors. An alert the gateway raised (a TLS record
// that failed its integrity check, an unexpected message) is a protocol
// error whatever the reader: crypto/tls reports it as a *net.OpError with
// Op "local error".
func readFailure(err error, ioErr bool) error {
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		// On an established connection, a record header crypto/tls
		// refuses (a wrong version, an oversized length) is bytes altered
		// or injected on the hop, not a failed handshake.
		return &ProtocolError{Err: err}
	}
	if isRecordAlert(err) {
		// The upstream refused a record the gateway sent on the
		// established connection: bytes altered on the hop towards it.
		return &ProtocolError{Err: err}
	}
	if isTimeout(err) || isTLSFailure(err) {
		return err
	}
	if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Op == "local error" {
		return &ProtocolError{Err: err}
	}
	if ioErr {
		return closedError{err}
	}
	return &ProtocolError{Err: err}
}

// upstreamFailure reports whether err was typed as the upstream's failure
// on an established connection: a *ProtocolError or a closedError.
func upstreamFailure(err error) bool {
	if _, ok := errors.AsType[*ProtocolError](err); ok {
		return true
	}
	_, ok := errors.AsType[closedError](err)
	return ok
}

// classify maps a round-trip error to the problem the client gets. The
// audit event carries the full cause; the client sees only the reason.
func (u *Upstream) classify(err error) policy.Problem {
	p := policy.Problem{
		Status: http.StatusBadGateway,
		Reason: ReasonUnavailable,
		Detail: "the upstream service could not be reached",
		Cause:  err,
		Fields: map[string]any{"upstream": u.name},
	}
	if pm, ok := errors.AsType[*PinMismatchError](err); ok {
		p.Reason, p.Event, p.Severity = ReasonPinMismatch, ReasonPinMismatch, audit.Critical
		p.Detail = "the upstream connection could not be verified"
		p.Fields["presented_pins"] = pm.Presented
		return p
	}
	if vr := verifyReason(err, u.now()); vr != "" {
		p.Reason, p.Event, p.Severity = ReasonTLSVerifyFailed, ReasonTLSVerifyFailed, audit.Critical
		p.Detail = "the upstream connection could not be verified"
		p.Fields["verify_reason"] = vr
		return p
	}
	// Before the handshake check: a record crypto/tls refused on an
	// established connection is typed a protocol error (readFailure).
	if _, ok := errors.AsType[*ProtocolError](err); ok {
		p.Reason, p.Event = ReasonProtocolError, ReasonProtocolError
		p.Detail = "the upstream service sent an invalid response"
		return p
	}
	if isTLSFailure(err) {
		p.Reason, p.Event = ReasonTLSHandshakeFailed, ReasonTLSHandshakeFailed
		return p
	}
	if ne, ok := errors.AsType[net.Error](err); (ok && ne.Timeout()) || errors.Is(err, context.DeadlineExceeded) {
		p.Status, p.Reason, p.Event = http.StatusGatewayTimeout, ReasonTimeout, ReasonTimeout
		p.Detail = "the upstream service did not answer in time"
		return p
	}
	_, closed := errors.AsType[closedError](err)
	if _, noResponse := errors.AsType[noResponseError](err); closed || noResponse {
		p.Reason, p.Event = ReasonConnectionClosed, ReasonConnectionClosed
		p.Detail = "the upstream service closed the connection before responding; the request may have reached it"
		return p
	}
	p.Event = ReasonUnavailable
	return p
}

// isTLSFailure reports a handshake the upstream aborted with an alert, or
// a peer that does not speak TLS.
func isTLSFailure(err error) bool {
	if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Op == "remote error" {
		return true
	}
	_, ok := errors.AsType[tls.RecordHeaderError](err)
	return ok
}

// isRecordAlert reports an alert the upstream sent because a record from
// the gateway failed its checks: bad_record_mac, record_overflow,
// decode_error, unexpected_message. On an established connection that is
// tampering on the hop, not a refused handshake (a TLS 1.3 upstream that
// refuses the gateway's client certificate after the handshake sends
// certificate alerts, which stay upstream_tls_handshake_failed).
// crypto/tls's alert type is unexported: its text is all there is to
// match.
func isRecordAlert(err error) bool {
	oe, ok := errors.AsType[*net.OpError](err)
	if !ok || oe.Op != "remote error" || oe.Err == nil {
		return false
	}
	switch oe.Err.Error() {
	case "tls: bad record MAC", "tls: record overflow", "tls: error decoding message", "tls: unexpected message":
		return true
	}
	return false
}

// inbound returns the client's request of an outbound one (ReverseProxy's
// hooks see the outbound request, whose path differs with a base path).
func inbound(out *http.Request) *http.Request {
	if in, ok := out.Context().Value(inboundKey{}).(*http.Request); ok {
		return in
	}
	return out
}

// handleError is the ReverseProxy.ErrorHandler: every failure goes through
// policy.Deny and is counted per upstream. A request the client abandoned
// is not answered: nobody is listening.
func (u *Upstream) handleError(w http.ResponseWriter, out *http.Request, err error) {
	r := inbound(out)
	if reason, ok := framing.ConnViolation(r); ok {
		// The framing guard cut the client's body (a malformed chunk): the
		// request is refused as the client's, not the upstream's, fault.
		// First: the end of the guarded stream may also have cancelled the
		// request's context, as if the client had gone.
		policy.Deny(w, r, policy.AmbiguousFraming(reason))
		return
	}
	if errors.Is(out.Context().Err(), context.Canceled) {
		return
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		// The client's body outgrew the gateway's limit while streaming:
		// the client's fault, not the upstream's.
		policy.Deny(w, r, policy.Problem{Status: http.StatusRequestEntityTooLarge, Reason: "body_too_large",
			Detail: "the request body exceeds the limit", Cause: err, Close: true})
		return
	}
	p := u.classify(err)
	u.count(r, p.Reason)
	policy.Deny(w, r, p)
}

func (u *Upstream) count(r *http.Request, reason string) {
	if x := policy.ExchangeOf(r); x != nil && x.Env != nil && x.Env.Metrics != nil {
		x.Env.Metrics.UpstreamErrors.WithLabelValues(u.name, reason).Inc()
	}
}

// bodyFailed records an upstream failure that came after the response's
// status line went to the client (out is the request, inbound or
// outbound, and status the code the client got). The client can no longer
// be told with a problem: the response is cut off (serveLean and
// ReverseProxy abort it, so it never looks complete). The failure gets the
// audit event and the metric a refusal would, with "phase": "body". Only
// the upstream's failures are recorded: not the client going away, nor a
// failed write to it.
func (u *Upstream) bodyFailed(out *http.Request, status int, err error) {
	if out.Context().Err() != nil || !upstreamFailure(err) {
		return
	}
	r := inbound(out)
	x := policy.ExchangeOf(r)
	if x == nil || x.Env == nil {
		return
	}
	p := u.classify(err)
	u.count(r, p.Reason)
	fields := map[string]any{"method": r.Method, "path": r.URL.Path, "upstream": u.name, "phase": "body", "cause": err.Error()}
	if x.Identity.Consumer != "" {
		fields["consumer"] = x.Identity.Consumer
	}
	x.Env.Audit.Emit(audit.Event{
		Type: p.Event, Severity: audit.Warning, RequestID: x.ID, Route: x.Route, Remote: x.Remote,
		Reason: p.Reason, Status: status, Detail: "the upstream response failed after it had begun and was cut off", Fields: fields,
	})
}
