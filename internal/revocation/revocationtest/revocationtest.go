// Package revocationtest runs revocation sources for tests: an OCSP
// responder built on golang.org/x/crypto/ocsp and a CRL distribution point,
// both real HTTP servers on 127.0.0.1, with request counters and knobs for
// the failures a checker must survive.
package revocationtest

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/wardengw/warden/internal/pki/pkitest"
)

// Revocation is a revoked serial's time and RFC 5280 reason code.
type Revocation struct {
	At     time.Time
	Reason int
}

// Responder is an OCSP responder for one CA. By default it signs with the
// CA's key, answers good for every serial not revoked, with thisUpdate =
// now and nextUpdate = now + 1h.
type Responder struct {
	URL string

	t      testing.TB
	ca     *pkitest.CA
	srv    *httptest.Server
	hits   hitCounter
	mu     sync.Mutex
	now    func() time.Time
	valid  time.Duration
	signer crypto.Signer
	cert   *x509.Certificate // responder certificate embedded in responses; nil: none
	revs   map[string]Revocation
	serial *big.Int                   // answer about this serial instead of the one asked
	answer func(*ocsp.Request) []byte // overrides everything when set
	gate   chan struct{}              // requests wait on it when non-nil
	last   []byte
}

// NewResponder starts a responder for ca; it stops at the end of the test.
func NewResponder(t testing.TB, ca *pkitest.CA) *Responder {
	t.Helper()
	r := &Responder{t: t, ca: ca, now: time.Now, valid: time.Hour, signer: ca.Key, revs: map[string]Revocation{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = r.srv.URL
	t.Cleanup(r.srv.Close)
	return r
}

// Hits returns the number of requests received.
func (r *Responder) Hits() int64 { return r.hits.load() }

// WaitHits blocks until the responder has received at least n requests,
// or ctx ends.
func (r *Responder) WaitHits(ctx context.Context, n int64) error { return r.hits.wait(ctx, n) }

// Close stops the server: later requests fail to connect.
func (r *Responder) Close() { r.srv.Close() }

// Revoke marks serial revoked.
func (r *Responder) Revoke(serial *big.Int, reason int, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revs[serial.String()] = Revocation{At: at, Reason: reason}
}

// SetClock sets the clock stamping thisUpdate and nextUpdate.
func (r *Responder) SetClock(now func() time.Time) { r.mu.Lock(); r.now = now; r.mu.Unlock() }

// SetValidity sets nextUpdate - thisUpdate; 0 omits nextUpdate.
func (r *Responder) SetValidity(d time.Duration) { r.mu.Lock(); r.valid = d; r.mu.Unlock() }

// SignWith makes the responder sign with key, embedding cert (a delegated
// responder certificate) unless it is nil.
func (r *Responder) SignWith(key crypto.Signer, cert *x509.Certificate) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.signer, r.cert = key, cert
}

// AnswerSerial makes the responder answer about serial, whatever it is
// asked.
func (r *Responder) AnswerSerial(serial *big.Int) { r.mu.Lock(); r.serial = serial; r.mu.Unlock() }

// Answer makes the responder send f's bytes.
func (r *Responder) Answer(f func(*ocsp.Request) []byte) { r.mu.Lock(); r.answer = f; r.mu.Unlock() }

// Hold makes requests wait until the returned release is called.
func (r *Responder) Hold() (release func()) {
	gate := make(chan struct{})
	r.mu.Lock()
	r.gate = gate
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			r.gate = nil
			r.mu.Unlock()
			close(gate)
		})
	}
}

// Last returns the last response sent.
func (r *Responder) Last() []byte { r.mu.Lock(); defer r.mu.Unlock(); return r.last }

func (r *Responder) serve(w http.ResponseWriter, req *http.Request) {
	r.hits.add()
	r.mu.Lock()
	gate := r.gate
	r.mu.Unlock()
	if gate != nil {
		<-gate
	}
	var body []byte
	switch req.Method {
	case http.MethodPost:
		body, _ = io.ReadAll(io.LimitReader(req.Body, 1<<16))
	case http.MethodGet:
		body, _ = base64.StdEncoding.DecodeString(strings.TrimPrefix(req.URL.Path, "/"))
	}
	oreq, err := ocsp.ParseRequest(body)
	if err != nil {
		w.Header().Set("Content-Type", "application/ocsp-response")
		_, _ = w.Write(ocsp.MalformedRequestErrorResponse)
		return
	}
	der := r.Respond(oreq)
	w.Header().Set("Content-Type", "application/ocsp-response")
	_, _ = w.Write(der)
}

// Respond builds the response the responder sends for req.
func (r *Responder) Respond(req *ocsp.Request) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.answer != nil {
		r.last = r.answer(req)
		return r.last
	}
	serial := req.SerialNumber
	if r.serial != nil {
		serial = r.serial
	}
	now := r.now()
	tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: serial, ThisUpdate: now.Add(-time.Minute), Certificate: r.cert}
	if r.valid > 0 {
		tmpl.NextUpdate = now.Add(r.valid)
	}
	if rev, ok := r.revs[serial.String()]; ok {
		tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, rev.At, rev.Reason
	}
	responderName := r.ca.Cert
	if r.cert != nil {
		responderName = r.cert
	}
	der, err := ocsp.CreateResponse(r.ca.Cert, responderName, tmpl, r.signer)
	if err != nil {
		r.t.Errorf("revocationtest: create OCSP response: %v", err)
		return ocsp.InternalErrorErrorResponse
	}
	r.last = der
	return der
}

// CRLOptions describe a CRL; zero times mean thisUpdate = now - 1m and
// nextUpdate = thisUpdate + 1h.
type CRLOptions struct {
	Number     int64
	ThisUpdate time.Time
	NextUpdate time.Time
	Revoked    map[*big.Int]Revocation
}

// NewCRL returns a DER CRL signed by signer (key) in the name of ca.
func NewCRL(t testing.TB, issuer *x509.Certificate, key crypto.Signer, o CRLOptions) []byte {
	t.Helper()
	if o.ThisUpdate.IsZero() {
		o.ThisUpdate = time.Now().Add(-time.Minute)
	}
	if o.NextUpdate.IsZero() {
		o.NextUpdate = o.ThisUpdate.Add(time.Hour)
	}
	tmpl := &x509.RevocationList{Number: big.NewInt(max(o.Number, 1)), ThisUpdate: o.ThisUpdate, NextUpdate: o.NextUpdate}
	for serial, rev := range o.Revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber: serial, RevocationTime: rev.At, ReasonCode: rev.Reason,
		})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer, key)
	if err != nil {
		t.Fatalf("revocationtest: create CRL: %v", err)
	}
	return der
}

// CRLServer serves one CRL at its URL.
type CRLServer struct {
	URL string

	srv  *httptest.Server
	hits hitCounter
	mu   sync.Mutex
	der  []byte
	code int
}

// NewCRLServer starts a distribution point serving der; it stops at the
// end of the test.
func NewCRLServer(t testing.TB, der []byte) *CRLServer {
	t.Helper()
	s := &CRLServer{der: der, code: http.StatusOK}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.hits.add()
		s.mu.Lock()
		der, code := s.der, s.code
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.WriteHeader(code)
		_, _ = w.Write(der)
	}))
	s.URL = s.srv.URL + "/ca.crl"
	t.Cleanup(s.srv.Close)
	return s
}

// Publish makes the server serve der from now on.
func (s *CRLServer) Publish(der []byte) { s.mu.Lock(); s.der = der; s.mu.Unlock() }

// Fail makes the server answer with HTTP status code (200 restores it).
func (s *CRLServer) Fail(code int) { s.mu.Lock(); s.code = code; s.mu.Unlock() }

// Hits returns the number of requests received.
func (s *CRLServer) Hits() int64 { return s.hits.load() }

// WaitHits blocks until the server has received at least n requests, or
// ctx ends.
func (s *CRLServer) WaitHits(ctx context.Context, n int64) error { return s.hits.wait(ctx, n) }

// Close stops the server.
func (s *CRLServer) Close() { s.srv.Close() }

// hitCounter counts requests and wakes those waiting for a count.
type hitCounter struct {
	mu      sync.Mutex
	n       int64
	changed chan struct{} // closed (and cleared) on each hit; nil: no waiter
}

func (h *hitCounter) add() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	if h.changed != nil {
		close(h.changed)
		h.changed = nil
	}
}

func (h *hitCounter) load() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

func (h *hitCounter) wait(ctx context.Context, n int64) error {
	for {
		h.mu.Lock()
		if h.n >= n {
			h.mu.Unlock()
			return nil
		}
		if h.changed == nil {
			h.changed = make(chan struct{})
		}
		ch := h.changed
		h.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("revocationtest: %d of %d hits: %w", h.load(), n, ctx.Err())
		}
	}
}
