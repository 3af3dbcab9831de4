package caadmin

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/pki/ca"
	"github.com/wardengw/warden/internal/pki/enroll"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/store"
)

// Admin API patterns, for (*admin.Server).Handle; Mount registers them
// all.
const (
	PatternIssue  = "POST /api/ca/certificates"
	PatternList   = "GET /api/ca/certificates"
	PatternRevoke = "POST /api/ca/revoke"
	PatternToken  = "POST /api/ca/tokens"
)

// Refusal reasons (problem+json "reason").
const (
	ReasonBadRequest         = "bad_request"         // 400: parameters or JSON body
	ReasonCSRInvalid         = "csr_invalid"         // 400: malformed, badly signed CSR, refused key or profile
	ReasonNamesNotAllowed    = "names_not_allowed"   // 400: a name outside the CA's constraints
	ReasonBodyTooLarge       = "body_too_large"      // 413
	ReasonCertificateUnknown = "certificate_unknown" // 404: a serial this CA did not issue
	ReasonAlreadyRevoked     = "already_revoked"     // 409
	ReasonStoreUnavailable   = "store_unavailable"   // 503
	ReasonCAError            = "ca_error"            // 500: signing or recording failed; nothing issued
)

// Audit event types of the decisions (the admin server also records
// every call as admin_api_call).
const (
	EventIssued       = "ca_certificate_issued"
	EventRevoked      = "ca_certificate_revoked"
	EventTokenCreated = "ca_enroll_token_created"
	EventRefused      = "ca_admin_refused"
)

// Listing limits.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// Records is what the endpoints need of the store besides the CA's own
// records; *store.Store satisfies it.
type Records interface {
	ListIssued(ctx context.Context, issuer string, limit int) ([]store.IssuedCert, error)
	IssuedCert(ctx context.Context, serial string) (store.IssuedCert, error)
	CreateEnrollToken(ctx context.Context, t store.EnrollToken) error
}

var _ Records = (*store.Store)(nil)

// Admin serves the internal CA's admin API endpoints. The admin server has
// already verified the operator's client certificate; Admin records its
// subject with each decision.
type Admin struct {
	ca    *ca.CA
	recs  Records
	audit *audit.Logger
	log   *slog.Logger
	now   func() time.Time
}

// New returns the endpoints of authority over recs (the gateway's
// *store.Store, the one authority records into). now is the clock
// (time.Now if nil); log may be nil.
func New(authority *ca.CA, recs Records, aud *audit.Logger, log *slog.Logger, now func() time.Time) *Admin {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Admin{ca: authority, recs: recs, audit: aud, log: log, now: now}
}

// Mount registers the endpoints on m, normally the gateway's
// *admin.Server.
func (a *Admin) Mount(m interface{ Handle(string, http.Handler) }) {
	m.Handle(PatternIssue, http.HandlerFunc(a.issue))
	m.Handle(PatternList, http.HandlerFunc(a.list))
	m.Handle(PatternRevoke, http.HandlerFunc(a.revoke))
	m.Handle(PatternToken, http.HandlerFunc(a.token))
}

func operator(r *http.Request) string {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return r.TLS.PeerCertificates[0].Subject.String()
	}
	return "admin-api"
}

// refuse writes the problem and records the refusal.
func (a *Admin) refuse(w http.ResponseWriter, r *http.Request, status int, reason, detail string, cause error) {
	sev := audit.Warning
	if status >= 500 {
		sev = audit.Critical
	}
	fields := map[string]any{"method": r.Method, "path": r.URL.Path, "by": operator(r)}
	if cause != nil {
		fields["cause"] = bounded(cause.Error())
	}
	a.audit.Emit(audit.Event{Type: EventRefused, Severity: sev, Remote: r.RemoteAddr, Reason: reason, Status: status,
		Detail: bounded(detail), Fields: fields})
	if status >= 500 {
		a.log.Error("CA admin API", "path", r.URL.Path, "reason", reason, "err", cause)
		detail = "" // the cause is logged, not sent
	}
	policy.Deny(w, r, policy.Problem{Status: status, Reason: reason, Detail: bounded(detail), Cause: cause})
}

// readBody reads at most max bytes; ok false means a refusal was written.
func (a *Admin) readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
		a.refuse(w, r, http.StatusRequestEntityTooLarge, ReasonBodyTooLarge, fmt.Sprintf("body larger than %d bytes", max), nil)
		return nil, false
	}
	if err != nil {
		a.refuse(w, r, http.StatusBadRequest, ReasonBadRequest, "could not read the request body", err)
		return nil, false
	}
	if len(body) == 0 {
		a.refuse(w, r, http.StatusBadRequest, ReasonBadRequest, "empty body", nil)
		return nil, false
	}
	return body, true
}

func (a *Admin) issue(w http.ResponseWriter, r *http.Request) {
	p, err := ParseIssueParams(r.URL.Query(), a.ca.Config())
	if err != nil {
		a.refuse(w, r, http.StatusBadRequest, ReasonBadRequest, err.Error(), nil)
		return
	}
	csr, ok := a.readBody(w, r, ca.MaxCSRBytes)
	if !ok {
		return
	}
	cert, err := a.ca.Issue(r.Context(), ca.IssueRequest{CSR: csr, Profile: p.Profile, Lifetime: p.Lifetime})
	if err != nil {
		if _, ok := errors.AsType[*ca.NameError](err); ok {
			a.refuse(w, r, http.StatusBadRequest, ReasonNamesNotAllowed, err.Error(), err)
		} else if _, ok := errors.AsType[*ca.RequestError](err); ok {
			a.refuse(w, r, http.StatusBadRequest, ReasonCSRInvalid, err.Error(), err)
		} else {
			a.refuse(w, r, http.StatusInternalServerError, ReasonCAError, "", err)
		}
		return
	}
	serial := ca.SerialString(cert.SerialNumber)
	a.audit.Emit(audit.Event{Type: EventIssued, Severity: audit.Info, Remote: r.RemoteAddr, Fields: map[string]any{
		"serial": serial, "subject": bounded(cert.Subject.String()), "profile": string(p.Profile), "sans": sansOf(cert),
		"not_after": cert.NotAfter.UTC().Format(time.RFC3339), "by": operator(r)}})
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.ca.Intermediate.Raw})...)
	h := w.Header()
	h.Set("Content-Type", enroll.ContentTypeChain)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// CertificateView is an issued certificate as the admin API lists it.
// State is valid, expired or revoked.
type CertificateView struct {
	Serial    string     `json:"serial"`
	Subject   string     `json:"subject"`
	SANs      []string   `json:"sans"`
	Profile   string     `json:"profile"`
	NotBefore time.Time  `json:"not_before"`
	NotAfter  time.Time  `json:"not_after"`
	IssuedAt  time.Time  `json:"issued_at"`
	State     string     `json:"state"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	Reason    string     `json:"reason,omitempty"`
}

func view(c store.IssuedCert, now time.Time) CertificateView {
	v := CertificateView{Serial: c.Serial, Subject: c.Subject, SANs: c.SANs, Profile: c.Profile, NotBefore: c.NotBefore,
		NotAfter: c.NotAfter, IssuedAt: c.IssuedAt, State: "valid"}
	if v.SANs == nil {
		v.SANs = []string{}
	}
	switch {
	case c.Revoked():
		t := c.RevokedAt
		v.State, v.RevokedAt, v.Reason = "revoked", &t, reasonName(c.Reason)
	case now.After(c.NotAfter):
		v.State = "expired"
	}
	return v
}

func reasonName(code int) string {
	for n, c := range ca.Reasons {
		if c == code {
			return n
		}
	}
	return "reason(" + strconv.Itoa(code) + ")"
}

func (a *Admin) list(w http.ResponseWriter, r *http.Request) {
	limit := DefaultListLimit
	for k, v := range r.URL.Query() {
		if k != "limit" || len(v) != 1 {
			a.refuse(w, r, http.StatusBadRequest, ReasonBadRequest, "the only parameter is limit, once", nil)
			return
		}
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > MaxListLimit {
			a.refuse(w, r, http.StatusBadRequest, ReasonBadRequest, fmt.Sprintf("limit: want 1 to %d", MaxListLimit), nil)
			return
		}
		limit = n
	}
	certs, err := a.recs.ListIssued(r.Context(), a.ca.IssuerID, limit)
	if err != nil {
		a.refuse(w, r, http.StatusServiceUnavailable, ReasonStoreUnavailable, "", err)
		return
	}
	now := a.now()
	views := make([]CertificateView, 0, len(certs))
	for _, c := range certs {
		views = append(views, view(c, now))
	}
	policy.WriteJSON(w, http.StatusOK, map[string]any{"certificates": views})
}

func (a *Admin) revoke(w http.ResponseWriter, r *http.Request) {
	req, ok := readJSON(a, w, r, ParseRevokeRequest)
	if !ok {
		return
	}
	serial := ca.SerialString(req.Serial)
	switch err := a.ca.Revoke(r.Context(), req.Serial, req.Reason); {
	case errors.Is(err, ca.ErrNotIssued):
		a.refuse(w, r, http.StatusNotFound, ReasonCertificateUnknown, "this CA issued no certificate with serial "+serial, nil)
		return
	case errors.Is(err, store.ErrAlreadyRevoked):
		a.refuse(w, r, http.StatusConflict, ReasonAlreadyRevoked, "certificate "+serial+" is already revoked; the first revocation stands", nil)
		return
	case err != nil:
		a.refuse(w, r, http.StatusServiceUnavailable, ReasonStoreUnavailable, "", err)
		return
	}
	rec, err := a.recs.IssuedCert(r.Context(), serial)
	if err != nil { // recorded; only the answer's details are missing
		a.log.Warn("CA admin API: revoked, but cannot read the record back", "serial", serial, "err", err)
		rec = store.IssuedCert{Serial: serial, RevokedAt: a.now()}
	}
	a.audit.Emit(audit.Event{Type: EventRevoked, Severity: audit.Warning, Remote: r.RemoteAddr, Fields: map[string]any{
		"serial": serial, "subject": bounded(rec.Subject), "reason": req.Reason, "by": operator(r)}})
	policy.WriteJSON(w, http.StatusOK, map[string]any{"serial": serial, "revoked_at": rec.RevokedAt, "reason": req.Reason})
}

// storeError marks a failure of the store (503), as opposed to a refused
// token request (400).
type storeError struct{ err error }

func (e *storeError) Error() string { return e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

type markingStore struct{ Records }

func (m markingStore) CreateEnrollToken(ctx context.Context, t store.EnrollToken) error {
	if err := m.Records.CreateEnrollToken(ctx, t); err != nil {
		return &storeError{err}
	}
	return nil
}

func (a *Admin) token(w http.ResponseWriter, r *http.Request) {
	req, ok := readJSON(a, w, r, ParseTokenRequest)
	if !ok {
		return
	}
	now := a.now()
	tok, err := enroll.CreateToken(r.Context(), markingStore{a.recs}, req.Constraints, req.TTL, now)
	if _, isStore := errors.AsType[*storeError](err); isStore {
		a.refuse(w, r, http.StatusServiceUnavailable, ReasonStoreUnavailable, "", err)
		return
	} else if err != nil {
		a.refuse(w, r, http.StatusBadRequest, ReasonBadRequest, err.Error(), nil)
		return
	}
	expires := now.Add(req.TTL) // as CreateToken recorded it
	// The token itself is never logged or audited.
	a.audit.Emit(audit.Event{Type: EventTokenCreated, Severity: audit.Info, Remote: r.RemoteAddr, Fields: map[string]any{
		"consumer": bounded(req.Constraints.Consumer), "token_sha256": enroll.HashToken(tok),
		"expires_at": expires.UTC().Format(time.RFC3339), "by": operator(r)}})
	policy.WriteJSON(w, http.StatusCreated, map[string]any{"token": tok, "expires_at": expires.UTC()})
}

// sansOf lists a certificate's names for the audit trail (at most 20, each
// bounded): for a server certificate they are the point.
func sansOf(c *x509.Certificate) []string {
	out := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	out = append(out, c.EmailAddresses...)
	if len(out) > 20 {
		out = append(out[:20], fmt.Sprintf("… %d more", len(out)-20))
	}
	for i := range out {
		out[i] = bounded(out[i])
	}
	return out
}

func bounded(s string) string {
	const max = 512
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

// readJSON reads a JSON request body of at most maxJSONBytes and parses it
// with parse; false means the request was refused (400, or what readBody
// answers).
func readJSON[T any](a *Admin, w http.ResponseWriter, r *http.Request, parse func([]byte) (T, error)) (T, bool) {
	var zero T
	body, ok := a.readBody(w, r, maxJSONBytes)
	if !ok {
		return zero, false
	}
	req, err := parse(body)
	if err != nil {
		a.refuse(w, r, http.StatusBadRequest, ReasonBadRequest, err.Error(), nil)
		return zero, false
	}
	return req, true
}
