package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	_ "crypto/sha1" //nolint:gosec // OCSP CertIDs hash with SHA-1 (RFC 5019)
	"crypto/sha256"
	_ "crypto/sha512" // CertIDs with SHA-384/512
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/wardengw/warden/internal/store"
)

// Publishing bounds.
const (
	// HTTPMaxAge caps the Cache-Control max-age of CRL and OCSP responses:
	// a revocation reaches clients behind HTTP caches within it.
	HTTPMaxAge = time.Minute
	// maxOCSPRequestBytes bounds a POSTed OCSP request.
	maxOCSPRequestBytes = 16 << 10
	// maxOCSPCacheEntries bounds the signed-response cache.
	maxOCSPCacheEntries = 1 << 16
)

// Publisher publishes a CA's revocations: a signed CRL, cached and
// regenerated after every revocation and at half its validity, and an OCSP
// responder (RFC 6960) whose signed responses are cached per serial until
// a revocation (or half their validity) makes them stale. It is safe for
// concurrent use.
type Publisher struct {
	ca  *CA
	log *slog.Logger

	// gen counts revocations seen; cached CRLs and OCSP responses are
	// valid for the generation they were made in only. It is read
	// before the records, so that a cached answer is never newer than
	// the generation it is filed under.
	gen atomic.Uint64

	crlMu sync.Mutex // one regeneration at a time
	crl   atomic.Pointer[signedCRL]

	ocspOff     bool // Ed25519 CA: no responder
	noOCSPCache bool // tests and benchmarks
	nameHash    map[crypto.Hash][]byte
	keyHash     map[crypto.Hash][]byte
	ocspMu      sync.RWMutex
	ocsp        map[string]*signedOCSP
}

type signedCRL struct {
	der       []byte
	crl       *x509.RevocationList
	gen       uint64
	refreshAt time.Time
	revoked   [32]byte // fingerprint of the revocations it lists
	etag      string
}

type signedOCSP struct {
	der                    []byte
	gen                    uint64
	thisUpdate, nextUpdate time.Time
	refreshAt              time.Time
	etag                   string
}

// NewPublisher returns the publisher of c. Revocations take effect at
// the next CRL or OCSP answer, whether made through c or by another
// process sharing the records (`warden ca revoke`, another gateway): each
// answer first reads the records' revocation generation. log may be nil.
func NewPublisher(c *CA, log *slog.Logger) *Publisher {
	if log == nil {
		log = slog.Default()
	}
	p := &Publisher{ca: c, log: log, ocsp: map[string]*signedOCSP{},
		nameHash: map[crypto.Hash][]byte{}, keyHash: map[crypto.Hash][]byte{}}
	if _, ok := c.key.Public().(ed25519.PublicKey); ok {
		p.ocspOff = true
	}
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(c.Intermediate.RawSubjectPublicKeyInfo, &spki); err == nil {
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
			p.nameHash[h] = digest(h, c.Intermediate.RawSubject)
			p.keyHash[h] = digest(h, spki.PublicKey.RightAlign())
		}
	}
	c.OnRevoke(p.Invalidate)
	return p
}

func digest(h crypto.Hash, b []byte) []byte {
	d := h.New()
	d.Write(b)
	return d.Sum(nil)
}

// sync notices revocations recorded by other processes before an answer
// is taken from the cache: the records' revocation generation is read (one
// lookup) and a change invalidates the cache (CA.revocations calls
// Invalidate). If the records cannot be read, the last signed answers keep
// being served until they are due (as when Refresh fails).
func (p *Publisher) sync(ctx context.Context) {
	if _, err := p.ca.revocations(ctx); err != nil && ctx.Err() == nil {
		p.log.Warn("CA publisher cannot read the revocation records; serving cached answers", "err", err)
	}
}

// Invalidate makes the next CRL and OCSP answers be signed afresh from the
// records.
func (p *Publisher) Invalidate() { p.gen.Add(1) }

// CRL returns the current signed CRL (DER), regenerating it if a
// revocation happened since it was signed or half its validity has passed.
func (p *Publisher) CRL(ctx context.Context) ([]byte, *x509.RevocationList, error) {
	s, err := p.currentCRL(ctx)
	if err != nil {
		return nil, nil, err
	}
	return s.der, s.crl, nil
}

func (p *Publisher) currentCRL(ctx context.Context) (*signedCRL, error) {
	p.sync(ctx)
	if s := p.crl.Load(); p.crlFresh(s) {
		return s, nil
	}
	p.crlMu.Lock()
	defer p.crlMu.Unlock()
	if s := p.crl.Load(); p.crlFresh(s) {
		return s, nil
	}
	g := p.gen.Load()
	revoked, err := p.ca.cfg.Records.RevokedList(ctx, p.ca.IssuerID)
	if err != nil {
		return nil, fmt.Errorf("ca: CRL: %w", err)
	}
	crl, der, err := p.ca.signCRL(ctx, revoked)
	if err != nil {
		return nil, err
	}
	s := &signedCRL{der: der, crl: crl, gen: g, revoked: fingerprint(revoked),
		refreshAt: crl.ThisUpdate.Add(p.ca.cfg.CRLValidity / 2), etag: `"crl-` + crl.Number.Text(16) + `"`}
	p.crl.Store(s)
	return s, nil
}

func (p *Publisher) crlFresh(s *signedCRL) bool {
	return s != nil && s.gen == p.gen.Load() && p.ca.cfg.Now().Before(s.refreshAt)
}

func fingerprint(revoked []store.IssuedCert) [32]byte {
	h := sha256.New()
	for _, r := range revoked {
		fmt.Fprintf(h, "%s %d %d\n", r.Serial, r.RevokedAt.UnixMicro(), r.Reason)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Refresh notices revocations recorded by other processes and signs a new
// CRL if one is due: what Run does periodically.
func (p *Publisher) Refresh(ctx context.Context) error {
	revoked, err := p.ca.cfg.Records.RevokedList(ctx, p.ca.IssuerID)
	if err != nil {
		return fmt.Errorf("ca: refresh: %w", err)
	}
	if s := p.crl.Load(); s == nil || s.revoked != fingerprint(revoked) {
		p.Invalidate()
	}
	_, err = p.currentCRL(ctx)
	return err
}

// Run calls Refresh every interval until ctx ends, logging failures (the
// last good CRL keeps being served until its nextUpdate).
func (p *Publisher) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := p.Refresh(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("CA publisher refresh failed; serving the last CRL", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Handler serves the CRL at /crl and the OCSP responder at /ocsp (POST)
// and /ocsp/<url-escaped base64 request> (GET), relative to where it is
// mounted: mount it with http.StripPrefix under the path of
// Config.PublishURL.
func (p *Publisher) Handler() http.Handler {
	crl, oc := p.CRLHandler(), p.OCSPHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.EscapedPath()
		switch {
		case path == "/crl":
			crl.ServeHTTP(w, r)
		case path == "/ocsp" || strings.HasPrefix(path, "/ocsp/"):
			r2 := r.Clone(r.Context())
			r2.URL.RawPath = strings.TrimPrefix(path, "/ocsp")
			r2.URL.Path, _ = url.PathUnescape(r2.URL.RawPath)
			oc.ServeHTTP(w, r2)
		default:
			http.NotFound(w, r)
		}
	})
}

// CRLHandler serves the current CRL, DER (application/pkix-crl), on GET
// and HEAD, with Last-Modified (thisUpdate), Expires (nextUpdate), an ETag
// that changes with the CRL number, and a max-age of at most HTTPMaxAge.
func (p *Publisher) CRLHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		s, err := p.currentCRL(r.Context())
		if err != nil {
			p.log.Error("cannot publish CRL", "err", err)
			w.Header().Set("Retry-After", "5")
			http.Error(w, "CRL temporarily unavailable", http.StatusServiceUnavailable)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/pkix-crl")
		h.Set("ETag", s.etag)
		h.Set("Last-Modified", s.crl.ThisUpdate.UTC().Format(http.TimeFormat))
		h.Set("Expires", s.crl.NextUpdate.UTC().Format(http.TimeFormat))
		h.Set("Cache-Control", cacheControl(s.refreshAt.Sub(p.ca.cfg.Now())))
		// Zero modtime: only the ETag decides a 304 (two CRLs may share a
		// thisUpdate second).
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(s.der))
	})
}

func cacheControl(d time.Duration) string {
	d = min(max(d, 0), HTTPMaxAge)
	return "public, max-age=" + strconv.Itoa(int(d.Seconds())) + ", no-transform, must-revalidate"
}

// OCSPHandler is the OCSP responder (RFC 6960, with the RFC 5019 HTTP
// conventions): POST of an application/ocsp-request, or GET of
// /<url-escaped base64 request> relative to where it is mounted. It
// answers good, revoked (time and reason) or unknown for the serials of
// the CA's intermediate, signed by the intermediate, with thisUpdate and
// nextUpdate (OCSPValidity apart); malformed requests get
// malformedRequest, requests about another issuer unauthorized.
func (p *Publisher) OCSPHandler() http.Handler {
	return http.HandlerFunc(p.serveOCSP)
}

func (p *Publisher) serveOCSP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	switch r.Method {
	case http.MethodPost:
		b, err := io.ReadAll(io.LimitReader(r.Body, maxOCSPRequestBytes+1))
		if err != nil || len(b) > maxOCSPRequestBytes {
			writeOCSP(w, ocsp.MalformedRequestErrorResponse, nil, 0)
			return
		}
		body = b
	case http.MethodGet:
		enc, err := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), "/"))
		if err == nil {
			body, err = base64.StdEncoding.DecodeString(enc)
			if err != nil { // some clients send base64url
				body, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(enc, "="))
			}
		}
		if err != nil {
			writeOCSP(w, ocsp.MalformedRequestErrorResponse, nil, 0)
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	req, err := ocsp.ParseRequest(body)
	if err != nil {
		writeOCSP(w, ocsp.MalformedRequestErrorResponse, nil, 0)
		return
	}
	s, err := p.respond(r.Context(), req)
	if err != nil {
		var re ocspStatusError
		if errors.As(err, &re) {
			writeOCSP(w, re.der, nil, 0)
			return
		}
		p.log.Error("OCSP responder", "err", err)
		writeOCSP(w, ocsp.TryLaterErrorResponse, nil, 0)
		return
	}
	writeOCSP(w, s.der, s, s.refreshAt.Sub(p.ca.cfg.Now()))
}

func writeOCSP(w http.ResponseWriter, der []byte, s *signedOCSP, maxAge time.Duration) {
	h := w.Header()
	h.Set("Content-Type", "application/ocsp-response")
	if s != nil {
		h.Set("ETag", s.etag)
		h.Set("Last-Modified", s.thisUpdate.UTC().Format(http.TimeFormat))
		h.Set("Expires", s.nextUpdate.UTC().Format(http.TimeFormat))
		h.Set("Cache-Control", cacheControl(maxAge))
	} else {
		h.Set("Cache-Control", "no-store")
	}
	h.Set("Content-Length", strconv.Itoa(len(der)))
	_, _ = w.Write(der)
}

// ocspStatusError carries an unsuccessful OCSP response to send.
type ocspStatusError struct {
	der    []byte
	reason string
}

func (e ocspStatusError) Error() string { return "OCSP: " + e.reason }

// respond returns the signed OCSP response (DER) for req, from the cache
// when it is current.
func (p *Publisher) respond(ctx context.Context, req *ocsp.Request) (*signedOCSP, error) {
	if p.ocspOff {
		return nil, ocspStatusError{ocsp.UnauthorizedErrorResponse, "this CA (Ed25519) has no OCSP responder"}
	}
	nh, ok := p.nameHash[req.HashAlgorithm]
	if !ok {
		return nil, ocspStatusError{ocsp.MalformedRequestErrorResponse, "unsupported CertID hash"}
	}
	if !bytes.Equal(nh, req.IssuerNameHash) || !bytes.Equal(p.keyHash[req.HashAlgorithm], req.IssuerKeyHash) {
		return nil, ocspStatusError{ocsp.UnauthorizedErrorResponse, "request about another issuer"}
	}
	if req.SerialNumber == nil || req.SerialNumber.Sign() <= 0 {
		return nil, ocspStatusError{ocsp.MalformedRequestErrorResponse, "bad serial"}
	}
	serial := SerialString(req.SerialNumber)
	key := strconv.Itoa(int(req.HashAlgorithm)) + ":" + serial
	p.sync(ctx)
	g := p.gen.Load()
	now := p.ca.cfg.Now()
	if !p.noOCSPCache {
		p.ocspMu.RLock()
		s := p.ocsp[key]
		p.ocspMu.RUnlock()
		if s != nil && s.gen == g && now.Before(s.refreshAt) {
			return s, nil
		}
	}
	tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber, IssuerHash: req.HashAlgorithm,
		ThisUpdate: now.UTC().Truncate(time.Second)}
	tmpl.NextUpdate = tmpl.ThisUpdate.Add(p.ca.cfg.OCSPValidity)
	rec, err := p.ca.cfg.Records.IssuedCert(ctx, serial)
	known := err == nil && rec.Issuer == p.ca.IssuerID
	switch {
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return nil, err
	case !known:
		tmpl.Status = ocsp.Unknown
	case rec.Revoked():
		tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, rec.RevokedAt.UTC().Truncate(time.Second), rec.Reason
	}
	der, err := ocsp.CreateResponse(p.ca.Intermediate, p.ca.Intermediate, tmpl, p.ca.key)
	if err != nil {
		return nil, fmt.Errorf("sign OCSP response: %w", err)
	}
	sum := sha256.Sum256(der)
	s := &signedOCSP{der: der, gen: g, thisUpdate: tmpl.ThisUpdate, nextUpdate: tmpl.NextUpdate,
		refreshAt: tmpl.ThisUpdate.Add(p.ca.cfg.OCSPValidity / 2), etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	// Unknown answers are not cached: the serial may be issued (by this or
	// another process) a moment later.
	if known && !p.noOCSPCache {
		p.ocspMu.Lock()
		if len(p.ocsp) >= maxOCSPCacheEntries {
			for k, e := range p.ocsp { // drop stale entries, or an arbitrary one
				if e.gen != g || len(p.ocsp) >= maxOCSPCacheEntries {
					delete(p.ocsp, k)
				}
				if len(p.ocsp) < maxOCSPCacheEntries/2 {
					break
				}
			}
		}
		p.ocsp[key] = s
		p.ocspMu.Unlock()
	}
	return s, nil
}
