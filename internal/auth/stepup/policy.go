package stepup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/store"
)

// Methods appended to Identity.Methods on success.
const (
	MethodTOTP     = "totp"
	MethodApproval = "approval"
)

// Audit events of request decisions. Never the code, the secret or the
// body: only reasons, steps, approval ids and digests.
const (
	// EventVerified: a critical request passed (info).
	EventVerified = "stepup_verified"
	// EventRejected: a critical request was refused (through policy.Deny).
	EventRejected = "stepup_rejected"
	// EventApprovalRequested: a pending approval was recorded (202).
	EventApprovalRequested = "stepup_approval_requested"
	// EventApprovalPending: a retry found its approval still pending (202).
	EventApprovalPending = "stepup_approval_pending"
	// EventApprovalDecided: an operator approved or denied (admin API).
	EventApprovalDecided = "stepup_approval_decided"
)

// Reasons: stable, public codes.
const (
	ReasonNoConsumer       = "stepup_no_consumer"             // 401: no earlier policy authenticated a consumer
	ReasonRequired         = "stepup_required"                // 401: no code (and no approval configured)
	ReasonOTPInvalid       = "otp_invalid"                    // 401: malformed, or no step within the skew matches
	ReasonOTPReplayed      = "otp_replayed"                   // 401: the code's step is not later than the last accepted
	ReasonOTPNotEnrolled   = "otp_not_enrolled"               // 401: the consumer has no TOTP secret
	ReasonApprovalPending  = "approval_pending"               // 202: recorded (or still) pending
	ReasonApprovalDenied   = "approval_denied"                // 403: an operator denied it
	ReasonApprovalExpired  = "approval_expired"               // 401: past its deadline
	ReasonApprovalUsed     = "approval_used"                  // 401: already used once
	ReasonApprovalMismatch = "approval_mismatch"              // 401: another consumer's, or another request's
	ReasonApprovalUnknown  = "approval_unknown"               // 401: no such approval id (or not an id)
	ReasonBodyTooLarge     = "approval_body_too_large"        // 413: the body cannot be buffered to be approved
	ReasonTooManyPending   = "approval_limit"                 // 429: too many pending approvals for the consumer
	ReasonStoreUnavailable = "stepup_store_unavailable"       // 503: no record store, or it failed: fail closed
	ReasonBadRequest       = "stepup_request_body_unreadable" // 400: the body could not be read
)

// details are the client-facing problem details.
var details = map[string]string{
	ReasonNoConsumer:       "this operation needs an authenticated consumer before step-up verification",
	ReasonRequired:         "this operation needs step-up verification",
	ReasonOTPInvalid:       "the one-time code is not valid",
	ReasonOTPReplayed:      "the one-time code was already used; wait for the next one",
	ReasonOTPNotEnrolled:   "no one-time code is enrolled for this consumer",
	ReasonApprovalDenied:   "an operator denied this request",
	ReasonApprovalExpired:  "the approval has expired; send the request again without it to ask for a new one",
	ReasonApprovalUsed:     "the approval was already used; send the request again without it to ask for a new one",
	ReasonApprovalMismatch: "the approval was given for another request",
	ReasonApprovalUnknown:  "the approval id is not known",
	ReasonBodyTooLarge:     "the request body is too large to be approved",
	ReasonTooManyPending:   "too many requests are awaiting approval",
	ReasonStoreUnavailable: "step-up verification is not available at the moment",
	ReasonBadRequest:       "the request body could not be read",
}

// statuses are the HTTP statuses of refusals; 401 unless listed.
var statuses = map[string]int{
	ReasonApprovalDenied:   http.StatusForbidden,
	ReasonBodyTooLarge:     http.StatusRequestEntityTooLarge,
	ReasonTooManyPending:   http.StatusTooManyRequests,
	ReasonStoreUnavailable: http.StatusServiceUnavailable,
	ReasonBadRequest:       http.StatusBadRequest,
}

// methodOverrideHeaders are honoured by some upstream frameworks to
// change the method: a request naming a critical method in one is
// critical.
var methodOverrideHeaders = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// critical reports whether the request needs step-up.
func (p *Policy) critical(r *http.Request) bool {
	if p.methods == nil || p.methods[strings.ToUpper(r.Method)] {
		return true
	}
	for _, h := range methodOverrideHeaders {
		for _, v := range r.Header.Values(h) {
			if p.methods[strings.ToUpper(strings.TrimSpace(v))] {
				return true
			}
		}
	}
	return false
}

// Wrap implements policy.Policy.
func (p *Policy) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otp, approval := r.Header.Values(p.headerOTP), r.Header.Values(p.headerApproval)
		delete(r.Header, p.headerOTP)
		delete(r.Header, p.headerApproval)
		if !p.critical(r) {
			next.ServeHTTP(w, r)
			return
		}
		x := policy.ExchangeOf(r)
		if x == nil { // outside the gateway: still decide; no Env means no store
			x = &policy.Exchange{}
			r = r.WithContext(policy.WithExchange(r.Context(), x))
		}
		consumer := x.Identity.Consumer
		if consumer == "" {
			p.reject(w, r, ReasonNoConsumer, errors.New("no consumer: put an authentication policy before stepup"), nil)
			return
		}
		rs := recordsOf(x.Env)
		now := x.Env.Clock()
		switch {
		case p.totp && len(otp) > 0:
			p.serveTOTP(w, r, next, rs, consumer, otp, now)
		case p.approval != nil && len(approval) > 0:
			p.serveApproval(w, r, next, rs, consumer, approval, now)
		case p.approval != nil:
			p.requestApproval(w, r, rs, consumer, now)
		default:
			p.reject(w, r, ReasonRequired, errors.New("no one-time code"), nil)
		}
	})
}

func (p *Policy) serveTOTP(w http.ResponseWriter, r *http.Request, next http.Handler, rs Records, consumer string, vals []string, now time.Time) {
	if len(vals) != 1 {
		p.reject(w, r, ReasonOTPInvalid, fmt.Errorf("%d %s headers", len(vals), p.headerOTP), nil)
		return
	}
	code, err := ParseCode(vals[0])
	if err != nil {
		p.reject(w, r, ReasonOTPInvalid, err, nil)
		return
	}
	if rs == nil {
		p.reject(w, r, ReasonStoreUnavailable, errors.New("no record store (policy.Env.Records)"), nil)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	e, err := rs.TOTPEnrollment(ctx, consumer)
	switch {
	case errors.Is(err, store.ErrNotFound):
		p.reject(w, r, ReasonOTPNotEnrolled, err, nil)
		return
	case err != nil:
		p.reject(w, r, ReasonStoreUnavailable, err, nil)
		return
	}
	step, ok := Match(e.Secret, code, now)
	if !ok {
		p.reject(w, r, ReasonOTPInvalid, errors.New("no time step within the skew matches"), map[string]any{"step": Step(now)})
		return
	}
	fields := map[string]any{"step": step, "skew": step - Step(now)}
	if step <= e.LastUsedStep { // known replay: no write needed
		p.reject(w, r, ReasonOTPReplayed, fmt.Errorf("step %d, last accepted %d", step, e.LastUsedStep), fields)
		return
	}
	switch err := rs.UseTOTPStep(ctx, consumer, step); {
	case errors.Is(err, store.ErrReplayed): // lost a race with another request or node
		p.reject(w, r, ReasonOTPReplayed, err, fields)
		return
	case errors.Is(err, store.ErrNotFound): // unenrolled meanwhile
		p.reject(w, r, ReasonOTPNotEnrolled, err, nil)
		return
	case err != nil:
		p.reject(w, r, ReasonStoreUnavailable, err, fields)
		return
	}
	p.pass(w, r, next, MethodTOTP, fields)
}

func (p *Policy) serveApproval(w http.ResponseWriter, r *http.Request, next http.Handler, rs Records, consumer string, vals []string, now time.Time) {
	id := strings.TrimSpace(vals[0])
	if len(vals) != 1 || !ValidApprovalID(id) {
		p.reject(w, r, ReasonApprovalUnknown, fmt.Errorf("%d %s headers, or not an approval id", len(vals), p.headerApproval), nil)
		return
	}
	fields := map[string]any{"approval_id": id}
	digest, ok := p.digest(w, r, fields)
	if !ok {
		return
	}
	if rs == nil {
		p.reject(w, r, ReasonStoreUnavailable, errors.New("no record store (policy.Env.Records)"), fields)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	a, err := rs.UseApproval(ctx, id, consumer, digest, now)
	switch {
	case err == nil:
		p.pass(w, r, next, MethodApproval, fields)
		return
	case errors.Is(err, store.ErrNotFound):
		p.reject(w, r, ReasonApprovalUnknown, err, fields)
		return
	case !errors.Is(err, store.ErrNotUsable):
		p.reject(w, r, ReasonStoreUnavailable, err, fields)
		return
	}
	fields["state"] = a.State
	reason := refusal(a, consumer, digest, now)
	if reason == ReasonApprovalMismatch {
		fields["approval_consumer"] = a.Consumer
		fields["digest_matches"] = string(a.Digest) == string(digest)
	}
	if reason == ReasonApprovalPending || reason == "" { // "": approved just now; retry
		p.accepted(w, r, EventApprovalPending, a, fields)
		return
	}
	p.reject(w, r, reason, err, fields)
}

// digest buffers the body and returns the request digest, or answers
// the request (413, 400) and returns false.
func (p *Policy) digest(w http.ResponseWriter, r *http.Request, fields map[string]any) ([]byte, bool) {
	body, err := readBody(r, p.approval.maxBody)
	if errors.Is(err, errBodyTooLarge) {
		fields["max_body_bytes"] = p.approval.maxBody
		p.reject(w, r, ReasonBodyTooLarge, err, fields)
		return nil, false
	} else if err != nil {
		p.reject(w, r, ReasonBadRequest, err, fields)
		return nil, false
	}
	return Digest(policy.ExchangeOf(r).Route, r.Method, target(r), body), true
}

// requestApproval records a pending approval for the request, notifies
// the webhook and answers 202.
func (p *Policy) requestApproval(w http.ResponseWriter, r *http.Request, rs Records, consumer string, now time.Time) {
	fields := map[string]any{}
	digest, ok := p.digest(w, r, fields)
	if !ok {
		return
	}
	if rs == nil {
		p.reject(w, r, ReasonStoreUnavailable, errors.New("no record store (policy.Env.Records)"), fields)
		return
	}
	x := policy.ExchangeOf(r)
	id, err := NewApprovalID()
	if err != nil {
		p.reject(w, r, ReasonStoreUnavailable, err, fields)
		return
	}
	a := store.Approval{ID: id, Consumer: consumer, Route: x.Route, Method: r.Method, Target: bounded(target(r)),
		Digest: digest, Remote: x.Remote, RequestID: x.ID, State: store.ApprovalPending,
		CreatedAt: store.Round(now), ExpiresAt: store.Round(now.Add(p.approval.timeout))}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	switch err := rs.CreateApproval(ctx, a, p.approval.maxPending); {
	case errors.Is(err, store.ErrTooManyPending):
		fields["max_pending"] = p.approval.maxPending
		h := http.Header{"Retry-After": {strconv.Itoa(int(p.approval.retryAfter / time.Second))}}
		p.rejectH(w, r, ReasonTooManyPending, err, fields, h)
		return
	case err != nil:
		p.reject(w, r, ReasonStoreUnavailable, err, fields)
		return
	}
	var aud *audit.Logger
	if x.Env != nil {
		aud = x.Env.Audit
	}
	p.notifier.notify(aud, a)
	fields["approval_id"] = id
	p.accepted(w, r, EventApprovalRequested, a, fields)
}

// pendingBody is the 202 body: problem+json-like, with the approval id
// and its deadline.
type pendingBody struct {
	Type       string    `json:"type"`
	Title      string    `json:"title"`
	Status     int       `json:"status"`
	Detail     string    `json:"detail"`
	Reason     string    `json:"reason"`
	RequestID  string    `json:"request_id,omitempty"`
	ApprovalID string    `json:"approval_id"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// accepted answers 202 approval_pending: the approval id in the body and
// in the approval header, Retry-After, and an audit event.
func (p *Policy) accepted(w http.ResponseWriter, r *http.Request, event string, a store.Approval, fields map[string]any) {
	x := policy.ExchangeOf(r)
	p.emit(r, event, audit.Info, ReasonApprovalPending, http.StatusAccepted, fields)
	b, _ := json.Marshal(pendingBody{Type: policy.ProblemType(ReasonApprovalPending), Title: "Approval Pending",
		Status: http.StatusAccepted, Reason: ReasonApprovalPending, RequestID: x.ID, ApprovalID: a.ID, ExpiresAt: a.ExpiresAt,
		Detail: fmt.Sprintf("an operator must approve this request; send it again, unchanged, with header %s: %s, before %s",
			p.headerApproval, a.ID, a.ExpiresAt.Format(time.RFC3339))})
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Retry-After", strconv.Itoa(int(p.approval.retryAfter/time.Second)))
	h.Set(p.headerApproval, a.ID)
	h.Del("Content-Encoding")
	w.WriteHeader(http.StatusAccepted)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

// pass records the method and hands the request on.
func (p *Policy) pass(w http.ResponseWriter, r *http.Request, next http.Handler, method string, fields map[string]any) {
	x := policy.ExchangeOf(r)
	x.Identity.Methods = append(x.Identity.Methods, method)
	fields["stepup_method"] = method
	p.emit(r, EventVerified, audit.Info, "", 0, fields)
	next.ServeHTTP(w, r)
}

// emit records a non-deny decision.
func (p *Policy) emit(r *http.Request, event, severity, reason string, status int, fields map[string]any) {
	x := policy.ExchangeOf(r)
	if x == nil || x.Env == nil {
		return
	}
	f := map[string]any{"policy": Type, "method": r.Method, "path": r.URL.Path, "consumer": x.Identity.Consumer}
	for k, v := range fields {
		f[k] = v
	}
	x.Env.Audit.Emit(audit.Event{Type: event, Severity: severity, RequestID: x.ID, Route: x.Route, Remote: x.Remote,
		Reason: reason, Status: status, Fields: f})
}

func (p *Policy) reject(w http.ResponseWriter, r *http.Request, reason string, cause error, fields map[string]any) {
	p.rejectH(w, r, reason, cause, fields, nil)
}

// rejectH answers through the single deny path with a stepup_rejected
// event; 401s carry WWW-Authenticate with the methods this route takes.
func (p *Policy) rejectH(w http.ResponseWriter, r *http.Request, reason string, cause error, fields map[string]any, h http.Header) {
	status, ok := statuses[reason]
	if !ok {
		status = http.StatusUnauthorized
	}
	if h == nil {
		h = http.Header{}
	}
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", p.wwwAuth)
	}
	f := map[string]any{"policy": Type}
	for k, v := range fields {
		f[k] = v
	}
	severity := audit.Warning
	switch reason {
	case ReasonRequired:
		severity = audit.Info
	case ReasonOTPReplayed, ReasonApprovalMismatch, ReasonApprovalUsed, ReasonStoreUnavailable, ReasonApprovalDenied:
		severity = audit.Critical
	}
	var c error
	if cause != nil {
		c = boundedError{cause}
	}
	policy.Deny(w, r, policy.Problem{Status: status, Reason: reason, Detail: details[reason], Event: EventRejected,
		Severity: severity, Cause: c, Fields: f, Header: h, Close: status == http.StatusRequestEntityTooLarge})
}

// boundedError keeps a cause to a sane length in the audit log while
// keeping it inspectable.
type boundedError struct{ err error }

func (b boundedError) Error() string { return bounded(b.err.Error()) }
func (b boundedError) Unwrap() error { return b.err }

// Wait blocks until the webhook deliveries in flight have ended (each
// is bounded: attempts × timeout plus backoff), or ctx is done. The
// gateway may call it at shutdown; tests call it to count deliveries.
func (p *Policy) Wait(ctx context.Context) error {
	if p.notifier == nil {
		return nil
	}
	return p.notifier.wait(ctx)
}
