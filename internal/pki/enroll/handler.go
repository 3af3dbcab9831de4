package enroll

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/wardengw/warden/internal/pki/ca"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/store"
)

// Reasons: the stable "reason" codes of refusals.
const (
	ReasonTokenInvalid       = "token_invalid"        // no, malformed or unknown token (401)
	ReasonTokenUsed          = "token_used"           // the token was already used (401)
	ReasonTokenExpired       = "token_expired"        // the token expired unused (401)
	ReasonCSRInvalid         = "csr_invalid"          // malformed, badly signed, too large or refused CSR (400, 413)
	ReasonNamesNotAllowed    = "names_not_allowed"    // a name outside the token's or the CA's (403)
	ReasonRenewNoCertificate = "renew_no_certificate" // no client certificate of this CA presented (401)
	ReasonRenewExpired       = "renew_expired"        // the presented certificate has expired (401)
	ReasonRenewRevoked       = "renew_revoked"        // the presented certificate is revoked (403)
	ReasonRenewNamesChanged  = "renew_names_changed"  // the CSR's names differ from the certificate's (403)
	ReasonMethodNotAllowed   = "method_not_allowed"   // not a POST (405)
	ReasonInternal           = "internal_error"       // store or CA failure (500)
)

// ContentTypeChain is the media type of a successful response (RFC 8555).
const ContentTypeChain = "application/pem-certificate-chain"

// auditEvent is the audit event type of refusals.
const auditEvent = "pki_enroll_refused"

// Store is what the handlers need of the store; *store.Store satisfies it.
type Store interface {
	UseEnrollToken(ctx context.Context, hash string, at time.Time) (store.EnrollToken, error)
	IssuedCert(ctx context.Context, serial string) (store.IssuedCert, error)
}

var _ Store = (*store.Store)(nil)

// Config configures a Handler.
type Config struct {
	// CA issues the certificates; required.
	CA *ca.CA
	// Store keeps the tokens and the CA's records; required.
	Store Store
	// Lifetime of issued certificates; 0 for the CA's client default.
	Lifetime time.Duration
	// Now is the clock; the CA's clock if nil.
	Now func() time.Time
	// Log receives a line per certificate issued; slog.Default() if nil.
	Log *slog.Logger
}

// Handler serves enrollment and renewal. It is safe for concurrent use.
type Handler struct {
	cfg   Config
	roots *x509.CertPool
	inter *x509.CertPool
	mux   *http.ServeMux
}

// New returns a Handler for cfg.
func New(cfg Config) (*Handler, error) {
	if cfg.CA == nil || cfg.Store == nil {
		return nil, errors.New("enroll: a CA and a store are required")
	}
	if cfg.Lifetime < 0 {
		return nil, errors.New("enroll: negative lifetime")
	}
	if cfg.Now == nil {
		cfg.Now = cfg.CA.Config().Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	h := &Handler{cfg: cfg, roots: x509.NewCertPool(), inter: x509.NewCertPool(), mux: http.NewServeMux()}
	h.roots.AddCert(cfg.CA.Root)
	h.inter.AddCert(cfg.CA.Intermediate)
	h.mux.Handle("/enroll", h.Enroll())
	h.mux.Handle("/renew", h.Renew())
	return h, nil
}

// ServeHTTP serves /enroll and /renew (mount it under a prefix with
// http.StripPrefix); any other path is 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Enroll returns the enrollment handler (POST, bearer token, CSR body),
// for mounting at a path of one's choosing.
func (h *Handler) Enroll() http.Handler { return http.HandlerFunc(h.enroll) }

// Renew returns the renewal handler (POST over mTLS, CSR body), for
// mounting at a path of one's choosing.
func (h *Handler) Renew() http.Handler { return http.HandlerFunc(h.renew) }

func deny(w http.ResponseWriter, r *http.Request, status int, reason, detail string, cause error) {
	p := policy.Problem{Status: status, Reason: reason, Detail: detail, Cause: cause, Event: auditEvent}
	switch status {
	case http.StatusUnauthorized:
		if strings.HasPrefix(reason, "token_") {
			p.Header = http.Header{"Www-Authenticate": {`Bearer realm="warden-enroll"`}}
		}
	case http.StatusMethodNotAllowed:
		p.Header = http.Header{"Allow": {http.MethodPost}}
	case http.StatusInternalServerError:
		p.Severity = "error"
	}
	policy.Deny(w, r, p)
}

// readCSR reads the bounded body; ok false means a refusal was written.
func readCSR(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, ca.MaxCSRBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		deny(w, r, http.StatusRequestEntityTooLarge, ReasonCSRInvalid, fmt.Sprintf("CSR larger than %d bytes", ca.MaxCSRBytes), err)
		return nil, false
	case err != nil:
		deny(w, r, http.StatusBadRequest, ReasonCSRInvalid, "could not read the request body", err)
		return nil, false
	case len(body) == 0:
		deny(w, r, http.StatusBadRequest, ReasonCSRInvalid, "empty body: send a PEM CSR", nil)
		return nil, false
	}
	return body, true
}

func bearer(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

func (h *Handler) enroll(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		deny(w, r, http.StatusMethodNotAllowed, ReasonMethodNotAllowed, "use POST", nil)
		return
	}
	tok := bearer(r)
	if !wellFormed(tok) {
		deny(w, r, http.StatusUnauthorized, ReasonTokenInvalid, "an enrollment token is required: Authorization: Bearer wenr_…", nil)
		return
	}
	body, ok := readCSR(w, r)
	if !ok {
		return
	}
	// Consume first: from here on the token is spent, whatever the CSR.
	rec, err := h.cfg.Store.UseEnrollToken(r.Context(), HashToken(tok), h.cfg.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		deny(w, r, http.StatusUnauthorized, ReasonTokenInvalid, "unknown enrollment token", nil)
		return
	case errors.Is(err, store.ErrTokenUsed):
		deny(w, r, http.StatusUnauthorized, ReasonTokenUsed, "this enrollment token has already been used", nil)
		return
	case errors.Is(err, store.ErrTokenExpired):
		deny(w, r, http.StatusUnauthorized, ReasonTokenExpired, "this enrollment token has expired", nil)
		return
	case err != nil:
		deny(w, r, http.StatusInternalServerError, ReasonInternal, "", err)
		return
	}
	csr, err := ca.ParseCSR(body)
	if err != nil {
		deny(w, r, http.StatusBadRequest, ReasonCSRInvalid, err.Error(), err)
		return
	}
	if err := allowed(csr, rec); err != nil {
		deny(w, r, http.StatusForbidden, ReasonNamesNotAllowed, err.Error(), err)
		return
	}
	h.issue(w, r, body, "enrolled", slog.String("consumer", rec.Consumer))
}

// allowed checks that every name csr asks for is one the token allows.
func allowed(csr *x509.CertificateRequest, rec store.EnrollToken) error {
	if cn := csr.Subject.CommonName; cn != "" && cn != rec.CommonName {
		return fmt.Errorf("common name %q not allowed by the token", cn)
	}
	if len(csr.IPAddresses) > 0 {
		return fmt.Errorf("IP address %s not allowed by the token", csr.IPAddresses[0])
	}
	if len(csr.EmailAddresses) > 0 {
		return fmt.Errorf("email address %q not allowed by the token", csr.EmailAddresses[0])
	}
	for _, d := range csr.DNSNames {
		if !slices.Contains(rec.Names, "dns:"+strings.ToLower(d)) {
			return fmt.Errorf("DNS name %q not allowed by the token", d)
		}
	}
	for _, u := range csr.URIs {
		if !slices.Contains(rec.Names, "uri:"+u.String()) {
			return fmt.Errorf("URI %q not allowed by the token", u.String())
		}
	}
	return nil
}

// issue issues a client certificate from the CSR body and writes the
// chain, or the refusal.
func (h *Handler) issue(w http.ResponseWriter, r *http.Request, body []byte, what string, attrs ...any) {
	cert, err := h.cfg.CA.Issue(r.Context(), ca.IssueRequest{CSR: body, Profile: ca.ProfileClient, Lifetime: h.cfg.Lifetime})
	var nameErr *ca.NameError
	var reqErr *ca.RequestError
	switch {
	case errors.As(err, &nameErr):
		deny(w, r, http.StatusForbidden, ReasonNamesNotAllowed, err.Error(), err)
		return
	case errors.As(err, &reqErr):
		deny(w, r, http.StatusBadRequest, ReasonCSRInvalid, err.Error(), err)
		return
	case err != nil:
		deny(w, r, http.StatusInternalServerError, ReasonInternal, "", err)
		return
	}
	h.cfg.Log.Info("pki: client certificate "+what, append(attrs, slog.String("serial", ca.SerialString(cert.SerialNumber)),
		slog.String("subject", cert.Subject.String()), slog.Time("not_after", cert.NotAfter))...)
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.cfg.CA.Intermediate.Raw})...)
	hd := w.Header()
	hd.Set("Content-Type", ContentTypeChain)
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

func (h *Handler) renew(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		deny(w, r, http.StatusMethodNotAllowed, ReasonMethodNotAllowed, "use POST", nil)
		return
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		deny(w, r, http.StatusUnauthorized, ReasonRenewNoCertificate, "renewal needs the current client certificate (mTLS)", nil)
		return
	}
	leaf := r.TLS.PeerCertificates[0]
	now := h.cfg.Now()
	if reason, detail, err := h.verify(leaf, now); reason != "" {
		status := http.StatusUnauthorized
		deny(w, r, status, reason, detail, err)
		return
	}
	serial := ca.SerialString(leaf.SerialNumber)
	rec, err := h.cfg.Store.IssuedCert(r.Context(), serial)
	switch {
	case errors.Is(err, store.ErrNotFound):
		deny(w, r, http.StatusUnauthorized, ReasonRenewNoCertificate, "the certificate is not in this CA's records", err)
		return
	case err != nil:
		deny(w, r, http.StatusInternalServerError, ReasonInternal, "", err)
		return
	case rec.Issuer != h.cfg.CA.IssuerID || rec.Profile != string(ca.ProfileClient) || !samePEM(rec.PEM, leaf.Raw):
		deny(w, r, http.StatusUnauthorized, ReasonRenewNoCertificate, "the certificate is not a client certificate of this CA", nil)
		return
	case rec.Revoked():
		deny(w, r, http.StatusForbidden, ReasonRenewRevoked, "the certificate is revoked", nil)
		return
	}
	body, ok := readCSR(w, r)
	if !ok {
		return
	}
	csr, err := ca.ParseCSR(body)
	if err != nil {
		deny(w, r, http.StatusBadRequest, ReasonCSRInvalid, err.Error(), err)
		return
	}
	if have, want := csrNames(csr), certNames(leaf); !slices.Equal(have, want) {
		deny(w, r, http.StatusForbidden, ReasonRenewNamesChanged,
			fmt.Sprintf("the CSR names %v; the certificate names %v: renewal keeps the names", have, want), nil)
		return
	}
	h.issue(w, r, body, "renewed", slog.String("previous_serial", serial))
}

// verify checks leaf against the CA's root and intermediate only, for
// clientAuth, at now. It returns a refusal reason, or "" if leaf is good.
func (h *Handler) verify(leaf *x509.Certificate, now time.Time) (reason, detail string, err error) {
	opts := x509.VerifyOptions{Roots: h.roots, Intermediates: h.inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	chains, err := leaf.Verify(opts)
	if err == nil {
		for _, c := range chains {
			if len(c) == 3 && c[1].Equal(h.cfg.CA.Intermediate) {
				return "", "", nil
			}
		}
		return ReasonRenewNoCertificate, "the certificate was not issued by this CA's intermediate", nil
	}
	if now.After(leaf.NotAfter) {
		// Expired; but say so only of one of ours.
		opts.CurrentTime = leaf.NotAfter
		if _, err2 := leaf.Verify(opts); err2 == nil {
			return ReasonRenewExpired, "the certificate expired at " + leaf.NotAfter.UTC().Format(time.RFC3339) + ": enroll again", err
		}
	}
	return ReasonRenewNoCertificate, "the certificate is not a client certificate of this CA", err
}

func samePEM(p []byte, der []byte) bool {
	b, _ := pem.Decode(p)
	return b != nil && string(b.Bytes) == string(der)
}

// certNames and csrNames list a certificate's or a CSR's names in one
// sorted form, for comparison.
func certNames(c *x509.Certificate) []string {
	return nameList(c.Subject.CommonName, c.DNSNames, c.IPAddresses, c.URIs, c.EmailAddresses)
}

func csrNames(c *x509.CertificateRequest) []string {
	return nameList(c.Subject.CommonName, c.DNSNames, c.IPAddresses, c.URIs, c.EmailAddresses)
}
