package mtls

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/revocation"
	"github.com/wardengw/warden/internal/telemetry"
)

// Audit event types.
const (
	// EventRejected records every refused request: the reason, and the
	// presented leaf's SHA-256 fingerprint, subject, issuer and serial.
	EventRejected = "client_cert_rejected"
	// EventRevocationSoftFail records a certificate admitted under
	// soft_fail although its revocation status is unknown (at most once a
	// minute per certificate chain; the metric counts every request).
	EventRevocationSoftFail = "revocation_soft_fail"
)

// Method is what the policy appends to Identity.Methods.
const Method = "mtls"

// details are the client-facing problem details, one per reason: they say
// what failed, never more.
var details = map[string]string{
	ReasonCertificateRequired:   "this route requires a client certificate",
	ReasonExpired:               "the client certificate or its chain has expired",
	ReasonNotYetValid:           "the client certificate or its chain is not valid yet",
	ReasonUnknownCA:             "the client certificate is not issued by a CA this route trusts, or an intermediate certificate is missing",
	ReasonWrongEKU:              "the client certificate is not valid for client authentication",
	ReasonWrongKeyUsage:         "the client certificate's key usage does not allow client authentication",
	ReasonWeakKey:               "the client certificate chain uses a key that is too weak",
	ReasonSHA1Signature:         "the client certificate chain uses a SHA-1 or MD5 signature",
	ReasonNameConstraint:        "the client certificate violates a name constraint of its issuer",
	ReasonChainTooDeep:          "the client certificate chain is too long",
	ReasonInvalidChain:          "the client certificate chain is invalid",
	ReasonRevoked:               "the client certificate has been revoked",
	ReasonRevocationUnavailable: "the revocation status of the client certificate cannot be established",
	ReasonConnectionTooOld:      "this connection has reached its maximum age; reconnect",
	ReasonConsumerMismatch:      "the client certificate names another consumer than the request's other credentials",
}

// errNoChecker stands for the revocation status when the gateway has no
// revocation checker: unknown.
var errNoChecker = &revocation.UnavailableError{Reason: "no_revocation_checker",
	Cause: errors.New("the gateway has no revocation checker (policy.Env.Revocation is nil)")}

// Wrap implements policy.Policy.
func (p *Policy) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		StripIdentityHeaders(r.Header, p.identityHeader)
		x := policy.ExchangeOf(r)
		if x == nil { // outside the gateway: still decide, just without Env
			x = &policy.Exchange{}
			r = r.WithContext(policy.WithExchange(r.Context(), x))
		}
		var presented []*x509.Certificate
		if r.TLS != nil {
			presented = r.TLS.PeerCertificates
		}
		res, err := p.authenticate(r.Context(), x, presented)
		if err == nil && res.consumer != "" && x.Identity.Consumer != "" && x.Identity.Consumer != res.consumer {
			err = fail(ReasonConsumerMismatch, res.chain[0], "certificate maps to consumer %q, the request is already %q", res.consumer, x.Identity.Consumer)
		}
		if err != nil {
			p.reject(w, r, presented, err)
			return
		}
		id := &x.Identity
		id.ClientCert = res.chain[0]
		id.Methods = append(id.Methods, Method)
		if id.Consumer == "" {
			id.Consumer = res.consumer
		}
		if p.allow != nil {
			f := res.facts
			f.consumer = id.Consumer
			if !anyMatch(p.allow, &f) {
				policy.Deny(w, r, policy.Problem{Status: http.StatusForbidden, Reason: ReasonNotAuthorized,
					Detail: "the client certificate is not authorized for this route", Event: EventRejected,
					Fields: p.auditFields(presented, nil)})
				return
			}
		}
		p.forward(r.Header, res, id.Consumer)
		next.ServeHTTP(w, r)
	})
}

// authenticate establishes the connection's verified chain, or says why
// not. The result is shared: callers must not modify it.
func (p *Policy) authenticate(ctx context.Context, x *policy.Exchange, presented []*x509.Certificate) (*result, *Error) {
	if len(presented) == 0 {
		return nil, fail(ReasonCertificateRequired, nil, "the connection presented no client certificate")
	}
	now := x.Env.Clock()
	if p.maxAge > 0 {
		if x.ConnStart.IsZero() {
			return nil, fail(ReasonConnectionTooOld, presented[0], "the connection's start time is unknown: max_connection_age cannot be enforced")
		}
		if age := now.Sub(x.ConnStart); age > p.maxAge {
			return nil, fail(ReasonConnectionTooOld, presented[0], "connection open for %v, max_connection_age is %v", age.Round(time.Millisecond), p.maxAge)
		}
	}
	k := keyOf(presented)
	res, ok := p.cache.Get(k, now)
	if !ok {
		res = p.verify(presented, now)
		p.cache.Put(k, res, res.expires, now)
	}
	if res.err != nil {
		return nil, res.err
	}
	if err := p.checkRevocation(ctx, x, res, now); err != nil {
		return nil, err
	}
	return res, nil
}

// verify runs Verify and precomputes what requests on this chain need.
func (p *Policy) verify(presented []*x509.Certificate, now time.Time) *result {
	chain, err := Verify(presented, VerifyOptions{Roots: p.roots, Now: now, MaxChainDepth: p.maxDepth, MinRSABits: p.minRSABits})
	if err != nil {
		e, ok := errors.AsType[*Error](err)
		if !ok {
			e = &Error{Reason: ReasonInvalidChain, Cert: presented[0], Err: err}
		}
		return &result{err: e, expires: now.Add(negativeTTL)}
	}
	res := &result{chain: chain, facts: newFacts(chain[0]), expires: now.Add(CacheTTL)}
	for _, c := range chain {
		if c.NotAfter.Before(res.expires) {
			res.expires = c.NotAfter
		}
	}
	for _, c := range p.consumers {
		if c.m.match(&res.facts) {
			res.consumer = c.name
			break
		}
	}
	ders := make([][]byte, len(chain))
	for i, c := range chain {
		ders[i] = c.Raw
	}
	res.certValue, res.chainValue = chainHeaders(ders)
	if p.identityHeader != "" {
		res.identity = identityValue(&res.facts, res.consumer)
	}
	return res
}

// checkRevocation asks the gateway's revocation checker about the verified
// chain on every request (its cache makes that cheap), so that a
// revocation learnt while a connection is open refuses its next request.
func (p *Policy) checkRevocation(ctx context.Context, x *policy.Exchange, res *result, now time.Time) *Error {
	if p.revocation == RevocationOff {
		return nil
	}
	var err error = errNoChecker
	if x.Env != nil && x.Env.Revocation != nil {
		err = x.Env.Revocation.CheckChain(ctx, res.chain)
	}
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*revocation.RevokedError](err); ok {
		return &Error{Reason: ReasonRevoked, Cert: res.chain[0], Err: fmt.Errorf("revocation check: %w", err)}
	}
	// Unknown status: soft_fail admits it only when an outside source
	// could not answer (never for the gateway's own CA, see Forgivable).
	if p.revocation == RevocationSoftFail && revocation.Forgivable(err) {
		p.softFail(x, res, err, now)
		return nil
	}
	return &Error{Reason: ReasonRevocationUnavailable, Cert: res.chain[0], Err: fmt.Errorf("revocation check: %w", err)}
}

// reject answers 401 through the single deny path. Revoked certificates
// and over-age connections also close the connection: nothing else will
// succeed on it.
func (p *Policy) reject(w http.ResponseWriter, r *http.Request, presented []*x509.Certificate, e *Error) {
	prob := policy.Problem{
		Status: http.StatusUnauthorized, Reason: e.Reason, Detail: details[e.Reason], Event: EventRejected,
		Cause: boundedError{e}, Fields: p.auditFields(presented, e),
	}
	switch e.Reason {
	case ReasonRevoked:
		prob.Severity, prob.Close = audit.Critical, true
	case ReasonConnectionTooOld:
		prob.Severity, prob.Close = audit.Info, true
	case ReasonCertificateRequired:
		prob.Severity = audit.Info
	}
	policy.Deny(w, r, prob)
}

// auditFields describe the presented certificate (attacker-chosen text is
// truncated) and, for e, what failed.
func (p *Policy) auditFields(presented []*x509.Certificate, e *Error) map[string]any {
	f := map[string]any{"policy": Type}
	if len(presented) == 0 {
		return f
	}
	leaf := presented[0]
	sum := sha256.Sum256(leaf.Raw)
	f["cert_sha256"] = hex.EncodeToString(sum[:])
	f["subject"] = truncate(leaf.Subject.String())
	f["issuer"] = truncate(leaf.Issuer.String())
	f["serial"] = serialHex(leaf)
	f["presented"] = len(presented)
	if e == nil {
		return f
	}
	if e.Cert != nil && string(e.Cert.Raw) != string(leaf.Raw) {
		f["failed_subject"] = truncate(e.Cert.Subject.String())
	}
	switch e.Reason {
	case ReasonUnknownCA:
		top := presented[len(presented)-1]
		f["chain_top_issuer"] = truncate(top.Issuer.String())
		// A trusted name whose signature does not verify: a forgery attempt?
		f["issuer_in_bundle"] = p.anchorSubjects[string(top.RawIssuer)]
	case ReasonRevoked:
		if rev, ok := errors.AsType[*revocation.RevokedError](e.Err); ok {
			f["revocation_reason"] = rev.ReasonCode
			f["revocation_reason_text"] = rev.ReasonText
			f["revocation_source"] = rev.Source
			if rev.Serial != nil {
				f["revoked_serial"] = rev.Serial.Text(16)
			}
		}
	case ReasonRevocationUnavailable:
		f["revocation_status"] = revocation.Reason(e.Err)
	}
	return f
}

// softFail counts an admission with unknown revocation status and records
// it, at most once per softFailEvery per chain.
func (p *Policy) softFail(x *policy.Exchange, res *result, err error, now time.Time) {
	if x.Env == nil {
		return
	}
	p.softFails.inc(x.Env.Metrics, x.Route)
	last := res.lastSoftFail.Load()
	if last != 0 && now.Sub(time.Unix(0, last)) < softFailEvery || !res.lastSoftFail.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	fields := p.auditFields(res.chain[:1], nil)
	fields["revocation_status"] = revocation.Reason(err)
	fields["cause"] = truncate(err.Error())
	x.Env.Audit.Emit(audit.Event{
		Type: EventRevocationSoftFail, Severity: audit.Warning, RequestID: x.ID, Route: x.Route, Remote: x.Remote,
		Reason: ReasonRevocationUnavailable, Detail: "revocation status unknown; admitted under soft_fail", Fields: fields,
	})
}

// forward sets the identity headers the upstream reads.
func (p *Policy) forward(h http.Header, res *result, consumer string) {
	if p.certHeaders {
		h[HeaderClientCert] = []string{res.certValue}
		if res.chainValue != "" {
			h[HeaderClientCertChain] = []string{res.chainValue}
		}
	}
	if p.identityHeader != "" {
		v := res.identity
		if consumer != res.consumer { // named by an earlier policy
			f := res.facts
			v = identityValue(&f, consumer)
		}
		h[p.identityHeader] = []string{v}
	}
}

// softFailMetric is warden_mtls_revocation_soft_fail_total, registered on
// the gateway's registry on first use (policies only see Env at request
// time); policies sharing a registry share the collector.
type softFailMetric struct {
	mu  sync.Mutex
	reg *telemetry.Metrics
	vec *prometheus.CounterVec
}

func (s *softFailMetric) inc(m *telemetry.Metrics, route string) {
	if m == nil || m.Registry == nil {
		return
	}
	s.mu.Lock()
	if s.reg != m {
		vec := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_mtls_revocation_soft_fail_total",
			Help: "Requests admitted under revocation soft_fail although the client certificate's revocation status was unknown, by route.",
		}, []string{"route"})
		if err := m.Registry.Register(vec); err != nil {
			are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err)
			existing, isVec := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok || !isVec {
				s.mu.Unlock()
				return
			}
			vec = existing
		}
		s.reg, s.vec = m, vec
	}
	vec := s.vec
	s.mu.Unlock()
	if route == "" {
		route = "-"
	}
	vec.WithLabelValues(route).Inc()
}

// boundedError keeps an attacker-influenced cause to a sane length in the
// audit log while keeping it inspectable.
type boundedError struct{ err error }

func (b boundedError) Error() string { return truncateN(b.err.Error(), 1024) }
func (b boundedError) Unwrap() error { return b.err }

func truncate(s string) string { return truncateN(s, maxAuditText) }

func truncateN(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func serialHex(c *x509.Certificate) string {
	if c.SerialNumber == nil {
		return ""
	}
	return c.SerialNumber.Text(16)
}
