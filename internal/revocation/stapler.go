package revocation

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"sync"
	"time"

	"github.com/wardengw/warden/internal/audit"
)

// stapleIdle is how long a certificate no longer asked about keeps its
// cache entry.
const stapleIdle = 24 * time.Hour

// Stapler fetches, verifies and caches OCSP responses for the gateway's own
// certificates, to be stapled in handshakes (tls.Certificate.OCSPStaple).
// It uses the OCSP client and verifier of the Checker. It is safe for
// concurrent use.
type Stapler struct {
	e       *env
	mu      sync.Mutex
	entries map[[32]byte]*stapleEntry // by SHA-256 of the leaf
}

type stapleEntry struct {
	mu        sync.Mutex // serialises fetches for one certificate
	der       []byte     // last good response; nil if none
	goodUntil time.Time  // when der stops being current
	err       error      // last outcome: nil, *RevokedError or *UnavailableError
	refreshAt time.Time
	lastUsed  time.Time
}

// NewStapler returns a Stapler. Of cfg it uses CRLRefresh (the longest
// time between two fetches of a response, so that a revocation of the
// gateway's own certificate is noticed within it), Timeout, Now,
// HTTPClient, Audit, Registry and Log.
func NewStapler(cfg Config) (*Stapler, error) {
	e, err := newEnv(cfg)
	if err != nil {
		return nil, err
	}
	return &Stapler{e: e, entries: make(map[[32]byte]*stapleEntry)}, nil
}

// Staple returns a verified, current, good OCSP response for cert's leaf,
// to put in cert.OCSPStaple. It fetches one when none is cached or the
// cached one is due: at half its validity window, and at least every
// CRLRefresh. When a fetch fails, the last good response is kept while it
// is current. It returns (nil, nil) when the leaf names no http(s) OCSP
// responder; (nil, *RevokedError) when the responder says the leaf is
// revoked, which is also a critical own_certificate_revoked audit event;
// (nil, *UnavailableError) when no good response is at hand. cert's chain
// must include the leaf's issuer (Certificate[1]), which signs or
// delegates the responses.
func (s *Stapler) Staple(ctx context.Context, cert *tls.Certificate) ([]byte, error) {
	leaf, issuer, err := leafAndIssuer(cert)
	if err != nil || leaf == nil {
		return nil, err
	}
	e := s.entry(leaf)
	e.mu.Lock()
	defer e.mu.Unlock()
	if now := s.e.now(); e.refreshAt.IsZero() || !now.Before(e.refreshAt) {
		s.refresh(ctx, e, leaf, issuer)
	}
	switch now := s.e.now(); {
	case e.err != nil && isRevoked(e.err):
		return nil, e.err
	case e.der != nil && now.Before(e.goodUntil):
		return e.der, nil
	case e.err != nil:
		return nil, e.err
	default:
		return nil, unavailable(ReasonOCSPStale, "last good response for serial %s expired", leaf.SerialNumber.Text(16))
	}
}

// refresh fetches a response for leaf into e. e.mu is held.
func (s *Stapler) refresh(ctx context.Context, e *stapleEntry, leaf, issuer *x509.Certificate) {
	refresh := s.e.cfg.CRLRefresh
	resp, der, err := s.e.queryOCSP(ctx, sourceStaple, leaf.OCSPServer, leaf, issuer)
	if err == nil {
		err = statusOf(resp, leaf.SerialNumber)
	}
	now := s.e.now()
	e.err = err
	switch {
	case err == nil:
		e.der, e.goodUntil = der, validUntil(resp, refresh)
		half := resp.ThisUpdate.Add(e.goodUntil.Sub(resp.ThisUpdate) / 2)
		if !half.After(now) { // an old, pre-signed response: half of what is left
			half = now.Add(e.goodUntil.Sub(now) / 2)
		}
		e.refreshAt = half
		if cap := now.Add(refresh); cap.Before(half) {
			e.refreshAt = cap
		}
	case isRevoked(err):
		e.der = nil // never staple a revoked status, nor the good one before it
		e.refreshAt = now.Add(refresh)
		rev := err.(*RevokedError)
		s.e.cfg.Log.Error("revocation: the gateway's own certificate is revoked; not stapling it",
			"subject", leaf.Subject.String(), "serial", leaf.SerialNumber.Text(16), "reason", rev.ReasonText, "revoked_at", rev.RevokedAt)
		s.e.cfg.Audit.Emit(audit.Event{
			Type: EventOwnCertificateRevoked, Severity: audit.Critical, Reason: ReasonRevoked, Detail: truncate(err.Error()),
			Fields: map[string]any{
				"subject": leaf.Subject.String(), "serial": leaf.SerialNumber.Text(16), "not_after": leaf.NotAfter.UTC(),
				"reason_code": rev.ReasonCode, "reason_text": rev.ReasonText, "revoked_at": rev.RevokedAt.UTC(),
			},
		})
	default: // unavailable: keep the last good response while it is current
		if Reason(err) == ReasonOCSPUnknown {
			s.e.fetchFailed(sourceStaple, leaf.OCSPServer[0], err, map[string]any{"serial": leaf.SerialNumber.Text(16)})
		}
		e.refreshAt = now.Add(min(failureTTL, refresh))
	}
}

func (s *Stapler) entry(leaf *x509.Certificate) *stapleEntry {
	k := sha256.Sum256(leaf.Raw)
	now := s.e.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[k]
	if !ok {
		for k, old := range s.entries {
			if now.Sub(old.lastUsed) > stapleIdle {
				delete(s.entries, k)
			}
		}
		e = &stapleEntry{}
		s.entries[k] = e
	}
	e.lastUsed = now
	return e
}

// leafAndIssuer returns cert's leaf and the leaf's issuer, the next
// certificate of the chain; (nil, nil, nil) when the leaf names no http(s)
// OCSP responder.
func leafAndIssuer(cert *tls.Certificate) (leaf, issuer *x509.Certificate, err error) {
	if len(cert.Certificate) == 0 {
		return nil, nil, unavailable(ReasonNoSource, "empty certificate chain")
	}
	leaf = cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, nil, unavailable(ReasonNoSource, "parse leaf: %w", err)
		}
	}
	if !hasHTTP(leaf.OCSPServer) {
		return nil, nil, nil
	}
	if len(cert.Certificate) < 2 {
		return nil, nil, unavailable(ReasonNoSource, "certificate chain has no issuer to verify OCSP responses against")
	}
	if issuer, err = x509.ParseCertificate(cert.Certificate[1]); err != nil {
		return nil, nil, unavailable(ReasonNoSource, "parse issuer: %w", err)
	}
	return leaf, issuer, nil
}
