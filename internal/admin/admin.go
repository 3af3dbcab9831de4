// Package admin serves Warden's admin listener: Prometheus metrics, a
// health check, and the admin API through which operators change running
// state (deny-listing a token, approving a step-up, unlocking a consumer).
//
// The admin API is off unless the admin listener has client CAs: every
// /api/ request must then present a client certificate that verifies
// against them (EKU clientAuth). Metrics and health stay readable without
// one, on a listener that is loopback-only by default.
package admin

import (
	"crypto/x509"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/revocation"
)

// Server is the admin listener's handler.
type Server struct {
	mux     *http.ServeMux
	api     *http.ServeMux
	clients atomic.Pointer[x509.CertPool] // nil: the admin API is off
	revoked policy.RevocationChecker      // nil: no revocation check
	hsts    func() string
	audit   *audit.Logger
	now     func() time.Time
}

// New returns the admin handler serving metrics at /metrics.
func New(metrics http.Handler, hsts func() string, aud *audit.Logger, now func() time.Time) *Server {
	if now == nil {
		now = time.Now
	}
	s := &Server{mux: http.NewServeMux(), api: http.NewServeMux(), hsts: hsts, audit: aud, now: now}
	s.mux.Handle("GET /metrics", metrics)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.Handle("/api/", s.requireClient(s.api))
	return s
}

// SetClientCAs sets the CAs admin API clients must chain to; nil turns
// the API off.
func (s *Server) SetClientCAs(p *x509.CertPool) { s.clients.Store(p) }

// SetRevocation makes admin clients' certificates subject to revocation:
// a revoked one is refused; one whose status cannot be established is let
// through with an audit event, so that a down responder cannot lock the
// operators out.
func (s *Server) SetRevocation(c policy.RevocationChecker) { s.revoked = c }

// Handle registers an admin API handler; pattern must start with a method
// and "/api/", e.g. "POST /api/jwt/deny".
func (s *Server) Handle(pattern string, h http.Handler) { s.api.Handle(pattern, h) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Strict-Transport-Security", s.hsts())
	s.mux.ServeHTTP(w, r)
}

// requireClient lets through only requests whose connection presented a
// certificate that verifies against the admin client CAs, and audits
// every admin API call.
func (s *Server) requireClient(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pool := s.clients.Load()
		if pool == nil {
			policy.Deny(w, r, policy.Problem{Status: http.StatusNotFound, Reason: "admin_api_disabled",
				Detail: "the admin API is off: set server.admin.client_ca_files"})
			return
		}
		var subject string
		ok := false
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			leaf := r.TLS.PeerCertificates[0]
			inter := x509.NewCertPool()
			for _, c := range r.TLS.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			chains, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: s.now(),
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
			ok, subject = err == nil, leaf.Subject.String()
			if ok && s.revoked != nil {
				switch rerr := s.revoked.CheckChain(r.Context(), chains[0]); {
				case rerr == nil:
				case !revocation.Forgivable(rerr):
					ok = false // revoked, the gateway's own CA cannot vouch for it, or the request was abandoned
				default: // an outside responder is down: operators must not be locked out
					s.audit.Emit(audit.Event{Type: "admin_revocation_unavailable", Severity: audit.Warning, Remote: r.RemoteAddr,
						Detail: rerr.Error(), Fields: map[string]any{"subject": subject}})
				}
			}
		}
		if !ok {
			s.audit.Emit(audit.Event{Type: "admin_api_refused", Severity: audit.Warning, Remote: r.RemoteAddr,
				Fields: map[string]any{"method": r.Method, "path": r.URL.Path, "subject": subject}})
			policy.Deny(w, r, policy.Problem{Status: http.StatusUnauthorized, Reason: "admin_client_certificate_required",
				Detail: "the admin API needs a client certificate from the admin CA"})
			return
		}
		s.audit.Emit(audit.Event{Type: "admin_api_call", Severity: audit.Info, Remote: r.RemoteAddr,
			Fields: map[string]any{"method": r.Method, "path": r.URL.Path, "subject": subject}})
		next.ServeHTTP(w, r)
	})
}
