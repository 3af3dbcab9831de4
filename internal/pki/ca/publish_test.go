package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/revocation"
	"github.com/wardengw/warden/internal/store"
	"github.com/wardengw/warden/internal/testkit"
)

// fixture is a CA on a real store, its publisher served over HTTP at the
// publish URL its certificates name.
type fixture struct {
	t   *testing.T
	ca  *CA
	pub *Publisher
	srv *pkiServer
	st  *store.Store
	clk *testkit.Clock
	dir string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, st: openStore(t), clk: testkit.NewClock(time.Now()), srv: newPKIServer(t)}
	f.dir = testInit(t, InitOptions{})
	f.ca = testLoad(t, f.dir, nil, Config{Records: f.st, PublishURL: f.srv.URL, Now: f.clk.Now})
	f.pub = NewPublisher(f.ca, nil)
	f.srv.publish(f.pub)
	return f
}

func (f *fixture) issue(name string) *x509.Certificate {
	f.t.Helper()
	csr, _ := makeCSR(f.t, csrSpec{cn: name, uris: []string{"spiffe://example.com/" + name}})
	c, err := f.ca.Issue(context.Background(), IssueRequest{CSR: csr, Profile: ProfileClient})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// checker is internal/revocation's Checker, as the mtls policy builds it,
// trusting the CA, through one source only.
func (f *fixture) checker(crl, ocsp bool) *revocation.Checker {
	f.t.Helper()
	c, err := revocation.New(revocation.Config{DisableDistributionPoints: !crl, DisableOCSP: !ocsp, Now: f.clk.Now},
		[]*x509.Certificate{f.ca.Root, f.ca.Intermediate})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = c.Close() })
	return c
}

func (f *fixture) check(c *revocation.Checker, cert *x509.Certificate) error {
	return c.CheckChain(context.Background(), []*x509.Certificate{cert, f.ca.Intermediate})
}

func wantRevoked(t *testing.T, err error, serial *big.Int, code int, source string) {
	t.Helper()
	var r *revocation.RevokedError
	if !errors.As(err, &r) || r.Serial.Cmp(serial) != 0 || r.ReasonCode != code || r.Source != source {
		t.Fatalf("got %v, want revoked (%d) by %s", err, code, source)
	}
}

func get(t *testing.T, u string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestRevokedThroughCRLAndOCSP(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	bad, good := f.issue("bad"), f.issue("good")

	// Before: both good, through each source.
	for _, useCRL := range []bool{true, false} {
		c := f.checker(useCRL, !useCRL)
		if err := f.check(c, bad); err != nil {
			t.Fatalf("crl=%v before revocation: %v", useCRL, err)
		}
	}
	_, _, _ = f.pub.CRL(ctx)
	_, before := get(t, f.srv.URL+"/crl", nil)

	if err := f.ca.Revoke(ctx, bad.SerialNumber, "keyCompromise"); err != nil {
		t.Fatal(err)
	}
	if err := f.ca.Revoke(ctx, bad.SerialNumber, "superseded"); !errors.Is(err, store.ErrAlreadyRevoked) {
		t.Fatalf("second revocation: %v", err)
	}
	if err := f.ca.Revoke(ctx, big.NewInt(12345), "superseded"); !errors.Is(err, ErrNotIssued) {
		t.Fatalf("unknown serial: %v", err)
	}

	// The served CRL lists it at once, with its reason.
	resp, der := get(t, f.srv.URL+"/crl", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("%s %v", resp.Status, resp.Header)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := x509.ParseRevocationList(before)
	if crl.Number.Cmp(old.Number) <= 0 || len(crl.RevokedCertificateEntries) != 1 ||
		crl.RevokedCertificateEntries[0].SerialNumber.Cmp(bad.SerialNumber) != 0 || crl.RevokedCertificateEntries[0].ReasonCode != 1 {
		t.Fatalf("CRL %d (was %d): %+v", crl.Number, old.Number, crl.RevokedCertificateEntries)
	}
	if crl.NextUpdate.Sub(crl.ThisUpdate) != DefaultCRLValidity {
		t.Errorf("validity %v", crl.NextUpdate.Sub(crl.ThisUpdate))
	}

	// A fresh checker (as after its refresh bound) refuses it through the
	// CRL distribution point, and through OCSP; the other stays good.
	crlc, ocspc := f.checker(true, false), f.checker(false, true)
	wantRevoked(t, f.check(crlc, bad), bad.SerialNumber, 1, "crl")
	wantRevoked(t, f.check(ocspc, bad), bad.SerialNumber, 1, "ocsp")
	if err := f.check(crlc, good); err != nil {
		t.Fatalf("good via CRL: %v", err)
	}
	if err := f.check(ocspc, good); err != nil {
		t.Fatalf("good via OCSP: %v", err)
	}
	// Both sources at once, as by default (the CRL is consulted first).
	wantRevoked(t, f.check(f.checker(true, true), bad), bad.SerialNumber, 1, "crl")
}

// TestRevocationByAnotherProcessIsNoticed: `warden ca revoke` in another
// process (its own store handle on the file, no CA key) is in the very
// next CRL and OCSP answer, although both were cached, with no Refresh.
func TestRevocationByAnotherProcessIsNoticed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cert := f.issue("a")
	_, crl1, _ := f.pub.CRL(ctx)
	ocspc := f.checker(false, true)
	if err := f.check(ocspc, cert); err != nil { // a signed "good" is now cached
		t.Fatal(err)
	}
	cli, err := store.Open(f.st.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if err := RevokeRecord(ctx, cli, f.ca.IssuerID, cert.SerialNumber, "cessationOfOperation", f.clk.Now()); err != nil {
		t.Fatal(err)
	}
	_, crl2, _ := f.pub.CRL(ctx)
	if len(crl2.RevokedCertificateEntries) != 1 || crl2.Number.Cmp(crl1.Number) <= 0 {
		t.Fatalf("next CRL: %d entries, number %v after %v", len(crl2.RevokedCertificateEntries), crl2.Number, crl1.Number)
	}
	// A fresh checker (nothing cached on its side) gets "revoked" from
	// the responder, whose cached "good" was dropped.
	wantRevoked(t, f.check(f.checker(false, true), cert), cert.SerialNumber, 5, "ocsp")
	// No change: the CRL is kept, and Refresh agrees.
	if err := f.pub.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, crl3, _ := f.pub.CRL(ctx); crl3.Number.Cmp(crl2.Number) != 0 {
		t.Fatal("regenerated without a change")
	}
}

func TestCRLNumberIncreasesAndPersists(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, c1, err := f.pub.CRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, c, _ := f.pub.CRL(ctx); c.Number.Cmp(c1.Number) != 0 {
		t.Fatal("cached CRL not reused")
	}
	// Half its validity later, a new one is signed.
	f.clk.Advance(DefaultCRLValidity/2 + time.Second)
	_, c2, _ := f.pub.CRL(ctx)
	if c2.Number.Cmp(c1.Number) <= 0 || !c2.ThisUpdate.After(c1.ThisUpdate) {
		t.Fatalf("numbers %v then %v", c1.Number, c2.Number)
	}
	// A new process (new CA, new publisher) on the same store continues.
	ca2 := testLoad(t, f.dir, nil, Config{Records: f.st, PublishURL: f.srv.URL, Now: f.clk.Now})
	_, c3, _ := NewPublisher(ca2, nil).CRL(ctx)
	if c3.Number.Cmp(c2.Number) <= 0 {
		t.Fatalf("after restart: %v then %v", c2.Number, c3.Number)
	}
	if err := c3.CheckSignatureFrom(f.ca.Intermediate); err != nil {
		t.Fatal(err)
	}
}

func TestCRLHandlerCaching(t *testing.T) {
	f := newFixture(t)
	resp, der := get(t, f.srv.URL+"/crl", nil)
	etag := resp.Header.Get("ETag")
	if etag == "" || resp.Header.Get("Last-Modified") == "" || resp.Header.Get("Expires") == "" ||
		resp.Header.Get("Cache-Control") != "public, max-age=60, no-transform, must-revalidate" {
		t.Fatalf("headers %v", resp.Header)
	}
	if resp, body := get(t, f.srv.URL+"/crl", map[string]string{"If-None-Match": etag}); resp.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Fatalf("conditional GET: %s", resp.Status)
	}
	f.pub.Invalidate()
	resp, der2 := get(t, f.srv.URL+"/crl", map[string]string{"If-None-Match": etag})
	if resp.StatusCode != 200 || bytes.Equal(der, der2) || resp.Header.Get("ETag") == etag {
		t.Fatalf("after a change: %s", resp.Status)
	}
	r, _ := http.Post(f.srv.URL+"/crl", "text/plain", nil)
	if r.StatusCode != http.StatusMethodNotAllowed {
		t.Fatal(r.Status)
	}
	r.Body.Close()
	if resp, _ := get(t, f.srv.URL+"/nope", nil); resp.StatusCode != 404 {
		t.Fatal(resp.Status)
	}
}

func ocspPost(t *testing.T, u string, req []byte) *ocsp.Response {
	t.Helper()
	resp, err := http.Post(u, "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	der, _ := io.ReadAll(resp.Body)
	r, err := ocsp.ParseResponse(der, nil)
	if err != nil {
		t.Fatalf("parse response: %v", err)
	}
	return r
}

func TestOCSPResponder(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cert := f.issue("a")
	req, _ := ocsp.CreateRequest(cert, f.ca.Intermediate, &ocsp.RequestOptions{Hash: crypto.SHA256})

	// GET (RFC 6960 appendix A: URL-escaped base64) and POST agree.
	u := f.srv.URL + "/ocsp/" + url.PathEscape(base64.StdEncoding.EncodeToString(req))
	resp, der := get(t, u, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/ocsp-response" || resp.Header.Get("ETag") == "" {
		t.Fatalf("%s %v", resp.Status, resp.Header)
	}
	r, err := ocsp.ParseResponseForCert(der, cert, f.ca.Intermediate)
	if err != nil || r.Status != ocsp.Good || r.NextUpdate.Sub(r.ThisUpdate) != DefaultOCSPValidity || r.IssuerHash != crypto.SHA256 {
		t.Fatalf("%+v %v", r, err)
	}
	// Cached: the same signed bytes until a change.
	if _, der2 := get(t, u, nil); !bytes.Equal(der, der2) {
		t.Fatal("not served from the cache")
	}
	if err := f.ca.Revoke(ctx, cert.SerialNumber, "superseded"); err != nil {
		t.Fatal(err)
	}
	r = ocspPost(t, f.srv.URL+"/ocsp", req)
	if r.Status != ocsp.Revoked || r.RevocationReason != ocsp.Superseded || r.RevokedAt.IsZero() {
		t.Fatalf("after revocation: %+v", r)
	}
	// Unknown serial; another issuer; garbage.
	other := pkitest.NewRootCA(t, "Other", pkitest.Options{})
	leaf := other.Issue(t, pkitest.Options{CommonName: "x"})
	unknown, _ := ocsp.CreateRequest(&x509.Certificate{SerialNumber: big.NewInt(777)}, f.ca.Intermediate, nil)
	if r := ocspPost(t, f.srv.URL+"/ocsp", unknown); r.Status != ocsp.Unknown {
		t.Fatalf("unknown serial: %+v", r)
	}
	foreign, _ := ocsp.CreateRequest(leaf.Cert, other.Cert, nil)
	for body, want := range map[string]ocsp.ResponseStatus{string(foreign): ocsp.Unauthorized, "garbage": ocsp.Malformed} {
		resp, err := http.Post(f.srv.URL+"/ocsp", "application/ocsp-request", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		der, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var re ocsp.ResponseError
		if _, err := ocsp.ParseResponse(der, nil); !errors.As(err, &re) || re.Status != want {
			t.Errorf("want %v, got %v", want, err)
		}
	}
	if resp, _ := get(t, f.srv.URL+"/ocsp/AAAA", nil); resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("bad GET: %s", resp.Status)
	}
}

func TestOCSPCacheRefreshesAtHalfValidity(t *testing.T) {
	f := newFixture(t)
	cert := f.issue("a")
	req, _ := ocsp.CreateRequest(cert, f.ca.Intermediate, nil)
	r1 := ocspPost(t, f.srv.URL+"/ocsp", req)
	f.clk.Advance(DefaultOCSPValidity/2 + time.Second)
	r2 := ocspPost(t, f.srv.URL+"/ocsp", req)
	if !r2.ThisUpdate.After(r1.ThisUpdate) {
		t.Fatalf("not refreshed: %v then %v", r1.ThisUpdate, r2.ThisUpdate)
	}
}
