package revocation

import (
	"bytes"
	"context"
	"crypto/tls"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/pki/pkitest"
)

func (f *fixture) stapler(cfg Config) *Stapler {
	f.t.Helper()
	cfg.Now = f.clock.Now
	cfg.Audit = audit.New(f.sink)
	cfg.Registry = f.reg
	s, err := NewStapler(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) serverCert() tls.Certificate {
	return f.inter.Issue(f.t, pkitest.Options{DNSNames: []string{"gw.example"}, OCSPServer: []string{f.ocsp.URL}}).TLS()
}

func TestStapleGood(t *testing.T) {
	f := newFixture(t)
	s := f.stapler(Config{})
	cert := f.serverCert()
	staple, err := s.Staple(context.Background(), &cert)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(staple, f.ocsp.Last()) {
		t.Fatal("staple is not the responder's response")
	}
	resp, err := ocsp.ParseResponseForCert(staple, cert.Leaf, f.inter.Cert)
	if err != nil || resp.Status != ocsp.Good {
		t.Fatalf("staple: %v, status %v", err, resp)
	}
	if again, err := s.Staple(context.Background(), &cert); err != nil || !bytes.Equal(again, staple) || f.ocsp.Hits() != 1 {
		t.Fatalf("cached: err %v, hits %d", err, f.ocsp.Hits())
	}
	// Refreshed at half its validity window (1h here), when CRLRefresh
	// does not come first.
	s2 := f.stapler(Config{CRLRefresh: 24 * time.Hour})
	_, _ = s2.Staple(context.Background(), &cert)
	hits := f.ocsp.Hits()
	f.clock.Advance(20 * time.Minute)
	_, _ = s2.Staple(context.Background(), &cert)
	if f.ocsp.Hits() != hits {
		t.Fatal("fetched before half the validity window")
	}
	f.clock.Advance(11 * time.Minute) // thisUpdate was 1m before the fetch: half-life is 29m30s after it
	fresh, err := s2.Staple(context.Background(), &cert)
	if err != nil || f.ocsp.Hits() != hits+1 || bytes.Equal(fresh, staple) {
		t.Fatalf("after half-life: err %v, hits %d (want %d)", err, f.ocsp.Hits(), hits+1)
	}
}

func TestStapleCRLRefreshBound(t *testing.T) {
	f := newFixture(t)
	s := f.stapler(Config{CRLRefresh: time.Minute})
	cert := f.serverCert()
	if _, err := s.Staple(context.Background(), &cert); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	if _, err := s.Staple(context.Background(), &cert); err != nil || f.ocsp.Hits() != 2 {
		t.Fatalf("err %v, hits %d, want 2", err, f.ocsp.Hits())
	}
}

func TestStapleRevokedOwnCertificate(t *testing.T) {
	f := newFixture(t)
	s := f.stapler(Config{})
	cert := f.serverCert()
	if _, err := s.Staple(context.Background(), &cert); err != nil {
		t.Fatal(err)
	}
	f.ocsp.Revoke(cert.Leaf.SerialNumber, keyCompromise, f.clock.Now())
	f.clock.Advance(DefaultCRLRefresh)
	staple, err := s.Staple(context.Background(), &cert)
	if staple != nil {
		t.Fatal("a revoked certificate is still stapled")
	}
	wantRevoked(t, err, cert.Leaf.SerialNumber, keyCompromise, "ocsp")
	e := f.waitEvent(audit.OfType(EventOwnCertificateRevoked))
	if e.Severity != audit.Critical || e.Fields["serial"] != cert.Leaf.SerialNumber.Text(16) || e.Fields["reason_text"] != "keyCompromise" {
		t.Errorf("event %+v", e)
	}
}

func TestStapleKeepsLastGoodWhileCurrent(t *testing.T) {
	f := newFixture(t)
	s := f.stapler(Config{})
	cert := f.serverCert()
	good, err := s.Staple(context.Background(), &cert)
	if err != nil {
		t.Fatal(err)
	}
	f.ocsp.Close()
	f.clock.Advance(DefaultCRLRefresh)
	if again, err := s.Staple(context.Background(), &cert); err != nil || !bytes.Equal(again, good) {
		t.Fatalf("responder down: %v; last good response dropped", err)
	}
	f.waitEvent(func(e audit.Event) bool {
		return e.Type == EventSourceUnavailable && e.Fields["source"] == "ocsp_staple"
	})
	f.clock.Advance(time.Hour) // past nextUpdate: never staple an expired response
	staple, err := s.Staple(context.Background(), &cert)
	if staple != nil {
		t.Fatal("expired response stapled")
	}
	wantUnavailable(t, err, ReasonOCSPUnreachable)
}

func TestStapleNoResponder(t *testing.T) {
	f := newFixture(t)
	s := f.stapler(Config{})
	cert := f.inter.Issue(t, pkitest.Options{DNSNames: []string{"gw.example"}}).TLS()
	if staple, err := s.Staple(context.Background(), &cert); staple != nil || err != nil {
		t.Fatalf("no OCSP URL: %v, %v", staple, err)
	}
	// A chain without the issuer cannot be verified.
	leafOnly := f.serverCert()
	leafOnly.Certificate = leafOnly.Certificate[:1]
	_, err := s.Staple(context.Background(), &leafOnly)
	wantUnavailable(t, err, ReasonNoSource)
}
