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
	ReasonUnavailable        = "upstream_unavailable"
)

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
	if isTLSFailure(err) {
		p.Reason, p.Event = ReasonTLSHandshakeFailed, ReasonTLSHandshakeFailed
		return p
	}
	if ne, ok := errors.AsType[net.Error](err); (ok && ne.Timeout()) || errors.Is(err, context.DeadlineExceeded) {
		p.Status, p.Reason, p.Event = http.StatusGatewayTimeout, ReasonTimeout, ReasonTimeout
		p.Detail = "the upstream service did not answer in time"
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

// handleError is the ReverseProxy.ErrorHandler: every failure goes through
// policy.Deny and is counted per upstream. A request the client abandoned
// is not answered: nobody is listening.
func (u *Upstream) handleError(w http.ResponseWriter, out *http.Request, err error) {
	r := out
	if in, ok := out.Context().Value(inboundKey{}).(*http.Request); ok {
		r = in
	}
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
	if x := policy.ExchangeOf(r); x != nil && x.Env != nil && x.Env.Metrics != nil {
		x.Env.Metrics.UpstreamErrors.WithLabelValues(u.name, p.Reason).Inc()
	}
	policy.Deny(w, r, p)
}
