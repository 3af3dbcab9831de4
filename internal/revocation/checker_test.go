package revocation

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/revocation/revocationtest"
)

const (
	keyCompromise = 1
	superseded    = 4
)

func TestGoodCertificatePasses(t *testing.T) {
	f := newFixture(t)
	c := f.checker(Config{})
	for name, l := range map[string]*pkitest.Leaf{"ocsp": f.leafOCSP(), "dp": f.leafDP(), "both": f.leafBoth()} {
		if err := check(c, l); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := counter(t, f.reg, "warden_revocation_checks_total", map[string]string{"source": "ocsp", "result": "good"}); n != 2 {
		t.Errorf("ocsp good checks = %v, want 2", n)
	}
	if n := counter(t, f.reg, "warden_revocation_checks_total", map[string]string{"source": "crl", "result": "good"}); n != 2 {
		t.Errorf("crl good checks = %v, want 2", n)
	}
}

func TestRevokedViaCRLFile(t *testing.T) {
	f := newFixture(t)
	bad, good := f.leafNone(), f.leafNone()
	at := f.clock.Now().Add(-time.Hour).Truncate(time.Second)
	crl := f.crl(map[*big.Int]revocationtest.Revocation{bad.Cert.SerialNumber: {At: at, Reason: keyCompromise}})
	if _, err := f.newChecker(Config{CRLFiles: []string{writeFile(t, "empty.pem", pkitest.CertPEM(f.inter.Cert))}}); Reason(err) != ReasonCRLInvalid {
		t.Errorf("PEM file without a CRL: %v", err)
	}
	c := f.checker(Config{CRLFiles: []string{writeFile(t, "inter.pem", pemCRL(crl))}})
	r := wantRevoked(t, check(c, bad), bad.Cert.SerialNumber, keyCompromise, "crl")
	if !r.RevokedAt.Equal(at) || r.ReasonText != "keyCompromise" {
		t.Errorf("revoked at %v (%s), want %v keyCompromise", r.RevokedAt, r.ReasonText, at)
	}
	if err := check(c, good); err != nil {
		t.Errorf("unrevoked certificate with a file CRL: %v", err)
	}
	// The same CRL in DER form.
	c = f.checker(Config{CRLFiles: []string{writeFile(t, "inter.der", crl)}})
	wantRevoked(t, check(c, bad), bad.Cert.SerialNumber, keyCompromise, "crl")
}

func pemCRL(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

func writeFileAt(path string, data []byte) error { return os.WriteFile(path, data, 0o644) }

func TestRevokedViaDistributionPoint(t *testing.T) {
	f := newFixture(t)
	bad, good := f.leafDP(), f.leafDP()
	f.dp.Publish(f.crl(map[*big.Int]revocationtest.Revocation{bad.Cert.SerialNumber: {At: f.clock.Now(), Reason: keyCompromise}}))
	c := f.checker(Config{})
	wantRevoked(t, check(c, bad), bad.Cert.SerialNumber, keyCompromise, "crl")
	if err := check(c, good); err != nil {
		t.Fatal(err)
	}
	if h := f.dp.Hits(); h != 1 {
		t.Errorf("distribution point fetched %d times for two certificates, want once (cached)", h)
	}
}

func TestRevokedViaOCSP(t *testing.T) {
	f := newFixture(t)
	l := f.leafOCSP()
	at := f.clock.Now().Add(-time.Hour).Truncate(time.Second)
	f.ocsp.Revoke(l.Cert.SerialNumber, superseded, at)
	c := f.checker(Config{})
	r := wantRevoked(t, check(c, l), l.Cert.SerialNumber, superseded, "ocsp")
	if !r.RevokedAt.Equal(at) {
		t.Errorf("revoked at %v, want %v", r.RevokedAt, at)
	}
	// Revoked by OCSP wins over a good CRL.
	both := f.leafBoth()
	f.ocsp.Revoke(both.Cert.SerialNumber, keyCompromise, at)
	wantRevoked(t, check(c, both), both.Cert.SerialNumber, keyCompromise, "ocsp")
}

func TestResponderDown(t *testing.T) {
	f := newFixture(t)
	l := f.leafOCSP()
	f.ocsp.Close()
	c := f.checker(Config{})
	wantUnavailable(t, check(c, l), ReasonOCSPUnreachable)
	e := f.waitEvent(audit.OfType(EventSourceUnavailable))
	if e.Reason != ReasonOCSPUnreachable || e.Fields["url"] != f.ocsp.URL || e.Severity != audit.Warning {
		t.Errorf("event %+v", e)
	}
	if n := counter(t, f.reg, "warden_revocation_fetch_errors_total", map[string]string{"source": "ocsp", "reason": ReasonOCSPUnreachable}); n != 1 {
		t.Errorf("fetch errors = %v, want 1", n)
	}
	// A good CRL decides when the responder is down.
	both := f.leafBoth()
	if err := check(c, both); err != nil {
		t.Errorf("good CRL, responder down: %v", err)
	}
	// The failure is remembered for failureTTL: no request storm.
	for range 10 {
		wantUnavailable(t, check(c, l), ReasonOCSPUnreachable)
	}
	if n := counter(t, f.reg, "warden_revocation_fetch_errors_total", map[string]string{"source": "ocsp"}); n != 2 {
		t.Errorf("fetch errors = %v, want 2 (one per certificate)", n)
	}
	// Events are rate-limited per source: one per auditInterval.
	if n := len(f.sink.Events()); n != 1 {
		t.Errorf("%d events, want 1: %+v", n, f.sink.Events())
	}
	f.clock.Advance(auditInterval)
	wantUnavailable(t, check(c, l), ReasonOCSPUnreachable)
	e = f.waitEvent(func(e audit.Event) bool { return e.Type == EventSourceUnavailable && e.Fields["suppressed"] == 1 })
	_ = e
}

func TestDistributionPointDown(t *testing.T) {
	f := newFixture(t)
	l := f.leafDP()
	f.dp.Fail(http.StatusServiceUnavailable)
	c := f.checker(Config{})
	wantUnavailable(t, check(c, l), ReasonCRLUnreachable)
	f.waitEvent(func(e audit.Event) bool { return e.Type == EventSourceUnavailable && e.Reason == ReasonCRLUnreachable })
}

func TestNoRevocationSource(t *testing.T) {
	f := newFixture(t)
	c := f.checker(Config{})
	wantUnavailable(t, check(c, f.leafNone()), ReasonNoSource)
	// Sources switched off count as absent.
	c = f.checker(Config{DisableOCSP: true, DisableDistributionPoints: true})
	wantUnavailable(t, check(c, f.leafBoth()), ReasonNoSource)
	// A non-HTTP URL is not a source.
	ldap := f.inter.Issue(t, pkitest.Options{CRLDistributionPoints: []string{"ldap://ldap.example/cn=crl"}})
	wantUnavailable(t, check(c, ldap), ReasonNoSource)
	// A chain of just the trust anchor has nothing to check.
	if err := c.CheckChain(context.Background(), []*x509.Certificate{f.root.Cert}); err != nil {
		t.Error(err)
	}
}

// TestOCSPUnauthorisedSigner: a response signed by anyone but the issuer
// or its delegated responder is refused as unavailable, never good, even
// though each of these says "good".
func TestOCSPUnauthorisedSigner(t *testing.T) {
	f := newFixture(t)
	other := pkitest.NewRootCA(t, "Other CA", pkitest.Options{})
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}
	delegate := f.inter.Issue(t, pkitest.Options{CommonName: "delegated responder", ExtKeyUsage: eku})
	// An impostor CA with the intermediate's exact name, but another key.
	impostor := other.NewIntermediate(t, "Revocation Test Intermediate", pkitest.Options{})
	random := pkitest.GenerateKey(t, "")
	signer := func(l *pkitest.Leaf) (crypto.Signer, *x509.Certificate) { return l.Key, l.Cert }

	cases := []struct {
		name   string
		key    crypto.Signer
		cert   *x509.Certificate // embedded in the response
		reason string
	}{
		{"random key, no certificate", random, nil, ReasonOCSPBadSignature},
		{"random key, the delegate's certificate", random, delegate.Cert, ReasonOCSPInvalid},
		{"another CA's OCSP signer", nil, nil, ReasonOCSPUnauthorized},
		{"issuer's certificate without OCSPSigning", nil, nil, ReasonOCSPUnauthorized},
		{"expired delegate", nil, nil, ReasonOCSPUnauthorized},
		{"impostor CA's OCSP signer", nil, nil, ReasonOCSPUnauthorized},
	}
	cases[2].key, cases[2].cert = signer(other.Issue(t, pkitest.Options{CommonName: "other responder", ExtKeyUsage: eku}))
	cases[3].key, cases[3].cert = signer(f.inter.Issue(t, pkitest.Options{CommonName: "no eku"}))
	cases[4].key, cases[4].cert = signer(f.inter.Issue(t, pkitest.Options{CommonName: "expired", ExtKeyUsage: eku,
		NotBefore: f.clock.Now().Add(-48 * time.Hour), NotAfter: f.clock.Now().Add(-24 * time.Hour)}))
	cases[5].key, cases[5].cert = signer(impostor.Issue(t, pkitest.Options{CommonName: "impostor responder", ExtKeyUsage: eku}))

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.ocsp.SignWith(tc.key, tc.cert)
			c := f.checker(Config{})
			wantUnavailable(t, check(c, f.leafOCSP()), tc.reason)
			e := f.waitEvent(func(e audit.Event) bool { return e.Type == EventSourceUnavailable && e.Reason == tc.reason })
			if tc.reason != ReasonOCSPInvalid && e.Severity != audit.Critical {
				t.Errorf("severity %q, want critical", e.Severity)
			}
		})
	}
	t.Run("authorised delegate", func(t *testing.T) {
		f.ocsp.SignWith(delegate.Key, delegate.Cert)
		c := f.checker(Config{})
		if err := check(c, f.leafOCSP()); err != nil {
			t.Fatalf("authorised delegate refused: %v", err)
		}
		l := f.leafOCSP()
		f.ocsp.Revoke(l.Cert.SerialNumber, keyCompromise, f.clock.Now())
		wantRevoked(t, check(c, l), l.Cert.SerialNumber, keyCompromise, "ocsp")
	})
}

func TestOCSPWrongCertificate(t *testing.T) {
	f := newFixture(t)
	c := f.checker(Config{})
	t.Run("another serial", func(t *testing.T) {
		f.ocsp.AnswerSerial(f.leafNone().Cert.SerialNumber)
		defer f.ocsp.AnswerSerial(nil)
		wantUnavailable(t, check(c, f.leafOCSP()), ReasonOCSPWrongCert)
	})
	t.Run("same serial, another issuer", func(t *testing.T) {
		// A responder that the intermediate delegated to answers about a
		// certificate of another CA with the same serial: x/crypto/ocsp
		// matches on the serial alone; the CertID's issuer hashes differ.
		other := pkitest.NewRootCA(t, "Other CA", pkitest.Options{})
		delegate := f.inter.Issue(t, pkitest.Options{CommonName: "shared responder", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}})
		f.ocsp.Answer(func(req *ocsp.Request) []byte {
			der, err := ocsp.CreateResponse(other.Cert, delegate.Cert, ocsp.Response{
				Status: ocsp.Good, SerialNumber: req.SerialNumber, ThisUpdate: f.clock.Now(), NextUpdate: f.clock.Now().Add(time.Hour),
				Certificate: delegate.Cert,
			}, delegate.Key)
			if err != nil {
				t.Error(err)
			}
			return der
		})
		defer f.ocsp.Answer(nil)
		wantUnavailable(t, check(c, f.leafOCSP()), ReasonOCSPWrongCert)
	})
	t.Run("responder error status", func(t *testing.T) {
		f.ocsp.Answer(func(*ocsp.Request) []byte { return ocsp.TryLaterErrorResponse })
		defer f.ocsp.Answer(nil)
		wantUnavailable(t, check(c, f.leafOCSP()), ReasonOCSPResponderError)
	})
	t.Run("garbage", func(t *testing.T) {
		f.ocsp.Answer(func(*ocsp.Request) []byte { return []byte("<html>captive portal</html>") })
		defer f.ocsp.Answer(nil)
		wantUnavailable(t, check(c, f.leafOCSP()), ReasonOCSPInvalid)
	})
	t.Run("unknown", func(t *testing.T) {
		f.ocsp.Answer(func(req *ocsp.Request) []byte {
			der, _ := ocsp.CreateResponse(f.inter.Cert, f.inter.Cert, ocsp.Response{
				Status: ocsp.Unknown, SerialNumber: req.SerialNumber, ThisUpdate: f.clock.Now(), NextUpdate: f.clock.Now().Add(time.Hour),
			}, f.inter.Key)
			return der
		})
		defer f.ocsp.Answer(nil)
		wantUnavailable(t, check(c, f.leafOCSP()), ReasonOCSPUnknown)
	})
}

func TestOCSPTimes(t *testing.T) {
	f := newFixture(t)
	c := f.checker(Config{})
	t.Run("nextUpdate passed", func(t *testing.T) {
		f.ocsp.SetClock(func() time.Time { return f.clock.Now().Add(-2 * time.Hour) })
		wantUnavailable(t, check(c, f.leafOCSP()), ReasonOCSPStale)
	})
	t.Run("thisUpdate in the future", func(t *testing.T) {
		f.ocsp.SetClock(func() time.Time { return f.clock.Now().Add(time.Hour) })
		wantUnavailable(t, check(c, f.leafOCSP()), ReasonOCSPNotYetValid)
	})
	t.Run("small skew tolerated", func(t *testing.T) {
		f.ocsp.SetClock(func() time.Time { return f.clock.Now().Add(2 * time.Minute) })
		if err := check(c, f.leafOCSP()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no nextUpdate: current for CRLRefresh", func(t *testing.T) {
		f.ocsp.SetClock(f.clock.Now)
		f.ocsp.SetValidity(0)
		defer f.ocsp.SetValidity(time.Hour)
		if err := check(c, f.leafOCSP()); err != nil {
			t.Fatal(err)
		}
		f.ocsp.SetClock(func() time.Time { return f.clock.Now().Add(-DefaultCRLRefresh - time.Minute) })
		wantUnavailable(t, check(c, f.leafOCSP()), ReasonOCSPStale)
	})
}

func TestCRLSignedByAnotherCA(t *testing.T) {
	f := newFixture(t)
	other := pkitest.NewRootCA(t, "Other CA", pkitest.Options{})
	impostor := other.NewIntermediate(t, "Revocation Test Intermediate", pkitest.Options{})
	if string(impostor.Cert.RawSubject) != string(f.inter.Cert.RawSubject) {
		t.Fatal("impostor must have the intermediate's name")
	}
	for name, der := range map[string][]byte{
		"other CA":               revocationtest.NewCRL(t, other.Cert, other.Key, revocationtest.CRLOptions{ThisUpdate: f.clock.Now()}),
		"same name, another key": revocationtest.NewCRL(t, impostor.Cert, impostor.Key, revocationtest.CRLOptions{ThisUpdate: f.clock.Now()}),
	} {
		t.Run(name, func(t *testing.T) {
			f.dp.Publish(der)
			c := f.checker(Config{DisableOCSP: true})
			wantUnavailable(t, check(c, f.leafDP()), ReasonCRLBadSignature)
			e := f.waitEvent(func(e audit.Event) bool { return e.Reason == ReasonCRLBadSignature })
			if e.Severity != audit.Critical {
				t.Errorf("severity %q", e.Severity)
			}
			// As a file, it is refused at start.
			_, err := f.newChecker(Config{CRLFiles: []string{writeFile(t, "x.crl", der)}})
			if Reason(err) != ReasonCRLBadSignature {
				t.Errorf("CRL file from %s accepted or wrong reason: %v", name, err)
			}
		})
	}
}

// TestVerifyCRLNeedsCRLSign: an issuer whose key usage lacks cRLSign
// cannot vouch for a CRL, even one its key signed.
func TestVerifyCRLNeedsCRLSign(t *testing.T) {
	key := pkitest.GenerateKey(t, "")
	mk := func(ku x509.KeyUsage) *x509.Certificate {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"}, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: ku,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	withSign, withoutSign := mk(x509.KeyUsageCertSign|x509.KeyUsageCRLSign), mk(x509.KeyUsageCertSign)
	der := revocationtest.NewCRL(t, withSign, key, revocationtest.CRLOptions{})
	if _, err := parseCRL(der, withSign, "test"); err != nil {
		t.Fatalf("with cRLSign: %v", err)
	}
	_, err := parseCRL(der, withoutSign, "test")
	wantUnavailable(t, err, ReasonCRLBadSignature)
}

func TestStaleCRL(t *testing.T) {
	f := newFixture(t)
	l := f.leafDP()
	c := f.checker(Config{})
	if err := check(c, l); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Hour) // past nextUpdate (1h); the distribution point still serves the same CRL
	wantUnavailable(t, check(c, l), ReasonCRLStale)
	if h := f.dp.Hits(); h != 2 {
		t.Errorf("distribution point hits %d, want 2 (a stale CRL is re-fetched once)", h)
	}
	// Within StaleGrace, the stale CRL is still used.
	g := f.checker(Config{StaleGrace: 3 * time.Hour})
	if err := check(g, l); err != nil {
		t.Errorf("within grace: %v", err)
	}
	// A stale file CRL too.
	path := writeFile(t, "old.crl", revocationtest.NewCRL(t, f.inter.Cert, f.inter.Key, revocationtest.CRLOptions{
		ThisUpdate: f.clock.Now().Add(-3 * time.Hour), NextUpdate: f.clock.Now().Add(-time.Hour)}))
	fc := f.checker(Config{CRLFiles: []string{path}})
	wantUnavailable(t, check(fc, f.leafNone()), ReasonCRLStale)
}

// TestRevocationPublishedWhileRunning: a revocation published after the
// first check takes effect at the next refresh: Refresh for CRLs (the
// background loop calls it every CRLRefresh), the cache bound for OCSP.
func TestRevocationPublishedWhileRunning(t *testing.T) {
	f := newFixture(t)
	c := f.checker(Config{CRLRefresh: time.Minute})

	dpLeaf, ocspLeaf, fileLeaf := f.leafDP(), f.leafOCSP(), f.leafNone()
	path := writeFile(t, "inter.crl", f.crl(nil))
	fc := f.checker(Config{CRLFiles: []string{path}, CRLRefresh: time.Minute})
	for _, l := range []*pkitest.Leaf{dpLeaf, ocspLeaf} {
		if err := check(c, l); err != nil {
			t.Fatal(err)
		}
	}
	if err := check(fc, fileLeaf); err != nil {
		t.Fatal(err)
	}

	f.clock.Advance(time.Second) // the new CRL is newer than the one held
	revoked := map[*big.Int]revocationtest.Revocation{
		dpLeaf.Cert.SerialNumber:   {At: f.clock.Now(), Reason: keyCompromise},
		fileLeaf.Cert.SerialNumber: {At: f.clock.Now(), Reason: keyCompromise},
	}
	f.dp.Publish(f.crl(revoked))
	if err := writeFileAt(path, f.crl(revoked)); err != nil {
		t.Fatal(err)
	}
	f.ocsp.Revoke(ocspLeaf.Cert.SerialNumber, keyCompromise, f.clock.Now())

	// Until the refresh, the cached answers stand.
	if err := check(c, ocspLeaf); err != nil {
		t.Fatalf("before the cache bound: %v", err)
	}
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := fc.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantRevoked(t, check(c, dpLeaf), dpLeaf.Cert.SerialNumber, keyCompromise, "crl")
	wantRevoked(t, check(fc, fileLeaf), fileLeaf.Cert.SerialNumber, keyCompromise, "crl")
	f.clock.Advance(time.Minute) // CRLRefresh: the OCSP answer expires
	wantRevoked(t, check(c, ocspLeaf), ocspLeaf.Cert.SerialNumber, keyCompromise, "ocsp")
}

func TestKeepLastGoodCRL(t *testing.T) {
	f := newFixture(t)
	l := f.leafDP()
	f.dp.Publish(f.crl(map[*big.Int]revocationtest.Revocation{l.Cert.SerialNumber: {At: f.clock.Now(), Reason: keyCompromise}}))
	c := f.checker(Config{})
	wantRevoked(t, check(c, l), l.Cert.SerialNumber, keyCompromise, "crl")

	f.dp.Fail(http.StatusInternalServerError)
	if err := c.Refresh(context.Background()); Reason(err) != ReasonCRLUnreachable {
		t.Fatalf("Refresh: %v", err)
	}
	e := f.waitEvent(func(e audit.Event) bool { return e.Reason == ReasonCRLUnreachable })
	if e.Fields["kept_last_good"] != true {
		t.Errorf("event %+v", e)
	}
	wantRevoked(t, check(c, l), l.Cert.SerialNumber, keyCompromise, "crl")
	f.clock.Advance(2 * time.Hour)
	wantUnavailable(t, check(c, l), ReasonCRLStale)

	// A file that turns bad keeps its last good CRLs too.
	path := writeFile(t, "inter.crl", f.crl(nil))
	fc := f.checker(Config{CRLFiles: []string{path}})
	if err := writeFileAt(path, []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	if err := fc.Refresh(context.Background()); Reason(err) != ReasonCRLInvalid {
		t.Fatalf("Refresh: %v", err)
	}
	if err := check(fc, f.leafNone()); err != nil {
		t.Errorf("last good file CRL dropped: %v", err)
	}
}

func TestCRLRollbackRefused(t *testing.T) {
	f := newFixture(t)
	l := f.leafDP()
	old := f.crl(nil)
	f.clock.Advance(time.Minute)
	f.dp.Publish(f.crl(map[*big.Int]revocationtest.Revocation{l.Cert.SerialNumber: {At: f.clock.Now(), Reason: keyCompromise}}))
	c := f.checker(Config{})
	wantRevoked(t, check(c, l), l.Cert.SerialNumber, keyCompromise, "crl")
	f.dp.Publish(old) // a replay of the older, still current CRL
	if err := c.Refresh(context.Background()); Reason(err) != ReasonCRLRollback {
		t.Fatalf("Refresh: %v", err)
	}
	wantRevoked(t, check(c, l), l.Cert.SerialNumber, keyCompromise, "crl")
}

func TestCRLPartitionScope(t *testing.T) {
	f := newFixture(t)
	l := f.leafDP()
	// A valid CRL of another partition, served at this certificate's URL.
	f.dp.Publish(crlWithIDP(t, f, "http://crl.example/partition-2.crl"))
	c := f.checker(Config{DisableOCSP: true})
	wantUnavailable(t, check(c, l), ReasonCRLInvalid)
	// The right partition is accepted.
	f.clock.Advance(time.Second)
	f.dp.Publish(crlWithIDP(t, f, f.dp.URL))
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := check(c, l); err != nil {
		t.Fatal(err)
	}
}

// crlWithIDP returns a CRL of the intermediate with a critical Issuing
// Distribution Point naming uri.
func crlWithIDP(t *testing.T, f *fixture, uri string) []byte {
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: f.clock.Now(), NextUpdate: f.clock.Now().Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: oidIssuingDP, Critical: true, Value: idpValue(uri)}},
	}, f.inter.Cert, f.inter.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// idpValue is an IssuingDistributionPoint naming uri, for end-entity
// certificates only.
func idpValue(uri string) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(uri)) })
			})
		})
		b.AddASN1(cbasn1.Tag(1).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddUint8(0xff) }) // onlyContainsUserCerts
	})
	return b.BytesOrPanic()
}

func TestDeltaCRLRefused(t *testing.T) {
	f := newFixture(t)
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(2), ThisUpdate: f.clock.Now(), NextUpdate: f.clock.Now().Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: oidDeltaCRL, Critical: true, Value: []byte{2, 1, 1}}},
	}, f.inter.Cert, f.inter.Key)
	if err != nil {
		t.Fatal(err)
	}
	f.dp.Publish(der)
	wantUnavailable(t, check(f.checker(Config{}), f.leafDP()), ReasonCRLInvalid)
}

func TestOversizedCRL(t *testing.T) {
	f := newFixture(t)
	revoked := map[*big.Int]revocationtest.Revocation{}
	for i := range 100 {
		revoked[big.NewInt(int64(1000+i))] = revocationtest.Revocation{At: f.clock.Now(), Reason: superseded}
	}
	large := f.crl(revoked)
	f.dp.Publish(large)
	limit := int64(len(large) - 1)
	c := f.checker(Config{MaxCRLBytes: limit})
	wantUnavailable(t, check(c, f.leafDP()), ReasonCRLTooLarge)
	_, err := f.newChecker(Config{MaxCRLBytes: limit, CRLFiles: []string{writeFile(t, "big.crl", large)}})
	if Reason(err) != ReasonCRLTooLarge {
		t.Errorf("oversized CRL file: %v", err)
	}
	// At the limit, it is accepted.
	c = f.checker(Config{MaxCRLBytes: int64(len(large))})
	if err := check(c, f.leafDP()); err != nil {
		t.Error(err)
	}
}

func TestOCSPCache(t *testing.T) {
	f := newFixture(t)
	c := f.checker(Config{})
	l := f.leafOCSP()
	if err := check(c, l); err != nil {
		t.Fatal(err)
	}
	const n = 100
	for range n {
		if err := check(c, l); err != nil {
			t.Fatal(err)
		}
	}
	if h := f.ocsp.Hits(); h != 1 {
		t.Errorf("responder hits = %d after %d checks, want 1", h, n+1)
	}
	if got := counter(t, f.reg, "warden_revocation_cache_lookups_total", map[string]string{"source": "ocsp", "result": "hit"}); got != n {
		t.Errorf("cache hits = %v, want %d", got, n)
	}
	// The cache is keyed by issuer and serial: another certificate is asked for.
	if err := check(c, f.leafOCSP()); err != nil || f.ocsp.Hits() != 2 {
		t.Errorf("second certificate: %v, hits %d", err, f.ocsp.Hits())
	}
	// An answer is cached until min(nextUpdate, fetch + CRLRefresh).
	f.clock.Advance(DefaultCRLRefresh)
	if err := check(c, l); err != nil || f.ocsp.Hits() != 3 {
		t.Errorf("after CRLRefresh: %v, hits %d, want 3", err, f.ocsp.Hits())
	}
	f.ocsp.SetValidity(time.Minute)
	f.clock.Advance(DefaultCRLRefresh)
	_ = check(c, l)
	f.clock.Advance(time.Minute)
	_ = check(c, l)
	if h := f.ocsp.Hits(); h != 5 {
		t.Errorf("hits %d, want 5 (nextUpdate bounds the cache)", h)
	}
}

func TestOCSPCacheBounded(t *testing.T) {
	oc := newOCSPCache(cacheShards * 2)
	now := time.Now()
	for i := range 1000 {
		oc.put(ocspKey([32]byte{}, big.NewInt(int64(i))), &ocspResult{expires: now.Add(time.Hour)}, now)
	}
	if n := oc.len(); n > cacheShards*2 {
		t.Errorf("cache holds %d entries, bound %d", n, cacheShards*2)
	}
}

func TestOCSPSingleflight(t *testing.T) {
	f := newFixture(t)
	c := f.checker(Config{})
	l := f.leafOCSP()
	release := f.ocsp.Hold()
	defer release()
	const n = 50
	key := ocspKey(issuerKey(f.inter.Cert), l.Cert.SerialNumber).String()
	waited := make(chan struct{}, n)
	c.ocspFlight.onWait = func(k string, _ int) {
		if k == key {
			waited <- struct{}{}
		}
	}
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { errs <- check(c, l) })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The first caller's fetch reaches the (held) responder; every other
	// caller joins it instead of fetching.
	if err := f.ocsp.WaitHits(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for i := range n - 1 {
		select {
		case <-waited:
		case <-ctx.Done():
			t.Fatalf("%d of %d callers wait on the first one's fetch", i, n-1)
		}
	}
	if w := c.ocspFlight.waiting(key); w != n-1 {
		t.Fatalf("%d callers wait on the fetch, want %d", w, n-1)
	}
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if h := f.ocsp.Hits(); h != 1 {
		t.Errorf("responder hits = %d for %d concurrent first checks, want 1", h, n)
	}
}

func TestDistributionPointSingleflight(t *testing.T) {
	f := newFixture(t)
	c := f.checker(Config{DisableOCSP: true})
	leaves := make([]*pkitest.Leaf, 20)
	for i := range leaves {
		leaves[i] = f.leafDP()
	}
	var wg sync.WaitGroup
	for _, l := range leaves {
		wg.Go(func() {
			if err := check(c, l); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if h := f.dp.Hits(); h != 1 {
		t.Errorf("distribution point hits = %d, want 1", h)
	}
}

func TestChainIntermediates(t *testing.T) {
	f := newFixture(t)
	l := f.leafOCSP()
	full := append(append([]*x509.Certificate{}, l.Chain...), f.root.Cert)

	// No source for the intermediate: a CA that publishes none is treated
	// as not revocable; its leaf is still checked (good here, by OCSP).
	c := f.checker(Config{})
	if err := c.CheckChain(context.Background(), full); err != nil {
		t.Fatalf("intermediate without a revocation source: %v", err)
	}
	// A leaf without a source is unavailable, never good.
	bare := f.inter.Issue(t, pkitest.Options{CommonName: "no-source"})
	wantUnavailable(t, c.CheckChain(context.Background(), append(bare.Chain, f.root.Cert)), ReasonNoSource)

	// The root's CRL as a file covers the intermediate.
	rootCRL := writeFile(t, "root.crl", revocationtest.NewCRL(t, f.root.Cert, f.root.Key, revocationtest.CRLOptions{ThisUpdate: f.clock.Now()}))
	c = f.checker(Config{CRLFiles: []string{rootCRL}})
	if err := c.CheckChain(context.Background(), full); err != nil {
		t.Fatal(err)
	}

	// A revoked intermediate is reported even when the leaf's status is
	// unavailable: unavailability never hides a revocation.
	revokedRoot := writeFile(t, "root-revoking.crl", revocationtest.NewCRL(t, f.root.Cert, f.root.Key, revocationtest.CRLOptions{
		ThisUpdate: f.clock.Now(), Revoked: map[*big.Int]revocationtest.Revocation{f.inter.Cert.SerialNumber: {At: f.clock.Now(), Reason: 2}},
	}))
	f.ocsp.Close()
	c = f.checker(Config{CRLFiles: []string{revokedRoot}})
	r := wantRevoked(t, c.CheckChain(context.Background(), full), f.inter.Cert.SerialNumber, 2, "crl")
	if r.ReasonText != "cACompromise" {
		t.Errorf("reason text %q", r.ReasonText)
	}
}

func TestReason(t *testing.T) {
	for err, want := range map[error]string{
		nil:                                  "",
		&RevokedError{Serial: big.NewInt(1)}: ReasonRevoked,
		unavailable(ReasonCRLStale, "x"):     ReasonCRLStale,
		errors.New("other"):                  "revocation_error",
		wrapErr(unavailable(ReasonOCSPStale, "")): ReasonOCSPStale,
	} {
		if got := Reason(err); got != want {
			t.Errorf("Reason(%v) = %q, want %q", err, got, want)
		}
	}
	if s := (&RevokedError{Serial: big.NewInt(255), ReasonCode: 1, ReasonText: "keyCompromise", Source: "crl"}).Error(); !strings.Contains(s, "ff") || !strings.Contains(s, "keyCompromise") {
		t.Errorf("RevokedError.Error() = %q", s)
	}
}

func wrapErr(err error) error { return errors.Join(errors.New("context"), err) }

func TestConfigValidate(t *testing.T) {
	err := Config{CRLRefresh: -1, Timeout: -1, StaleGrace: -1, MaxCRLBytes: -1, CRLFiles: []string{""}}.Validate()
	if err == nil || strings.Count(err.Error(), "\n") != 4 {
		t.Errorf("Validate: %v, want 5 problems", err)
	}
	if _, err := New(Config{CRLFiles: []string{"x"}}, nil); err == nil {
		t.Error("CRL files without issuers accepted")
	}
	if _, err := New(Config{Timeout: -1}, nil); err == nil {
		t.Error("invalid config accepted")
	}
}

func TestStartClose(t *testing.T) {
	f := newFixture(t)
	c := f.checker(Config{CRLRefresh: time.Millisecond})
	if err := check(c, f.leafDP()); err != nil {
		t.Fatal(err)
	}
	c.Start(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.dp.WaitHits(ctx, 2); err != nil {
		t.Fatalf("no background refresh: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Close without Start returns at once.
	if err := f.checker(Config{}).Close(); err != nil {
		t.Fatal(err)
	}
}
