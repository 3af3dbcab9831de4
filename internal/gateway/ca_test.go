package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/pki/ca"
	"github.com/wardengw/warden/internal/pki/enroll"
	"github.com/wardengw/warden/internal/store"
)

// TestInternalCALifecycle: a client certificate issued by the internal CA
// (from a CSR: the key never leaves the client) works for mTLS through the
// gateway; once revoked it is refused (at once, in fact: see
// TestInternalCARevocationByCLIIsImmediate; this test also holds after the
// refresh bound).
func TestInternalCALifecycle(t *testing.T) {
	e := newEnvWith(t, map[string]any{"CA": true}, func(e *env) {
		if err := ca.Init(filepath.Join(e.dir, "ca"), ca.InitOptions{Name: "Test Internal"}); err != nil {
			t.Fatal(err)
		}
	})
	now := time.Now()
	e.clock.Store(&now)
	_, plain, _ := e.g.Addrs()
	records, err := store.Open(filepath.Join(e.dir, "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer records.Close()
	// The CLI's view of the CA: certificates name the gateway's plain-HTTP
	// listener as their CRL and OCSP address.
	publish := (&url.URL{Scheme: "http", Host: plain.String(), Path: "/.well-known/warden/pki"}).String()
	authority, err := ca.Load(filepath.Join(e.dir, "ca"), nil, ca.Config{Records: records, PublishURL: publish, Now: e.now})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "svc-a"}, URIs: []*url.URL{{Scheme: "spiffe", Host: "test.internal", Path: "/svc/a"}}}, key)
	cert, err := authority.Issue(context.Background(), ca.IssueRequest{CSR: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), Profile: ca.ProfileClient})
	if err != nil {
		t.Fatal(err)
	}
	pair := tls.Certificate{Certificate: [][]byte{cert.Raw, authority.Intermediate.Raw}, PrivateKey: key, Leaf: cert}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{pair}}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func() *http.Response {
		t.Helper()
		resp, err := c.Get(e.httpsURL("/internal/x"))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := get()
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("certificate from the internal CA: %d %s; events %+v", resp.StatusCode, body, e.sink.Events())
	}

	if err := authority.Revoke(context.Background(), cert.SerialNumber, "keyCompromise"); err != nil {
		t.Fatal(err)
	}
	if err := e.g.publisher.Refresh(context.Background()); err != nil { // what its 5s loop does
		t.Fatal(err)
	}
	later := now.Add(6 * time.Minute) // past the checker's 5m refresh bound
	e.clock.Store(&later)
	resp = get()
	if p := readProblem(t, resp); resp.StatusCode != 401 || p.Reason != "revoked" {
		t.Fatalf("revoked certificate: %d %s", resp.StatusCode, p.Reason)
	}
}

// TestEnrollmentThroughTheGateway: a one-time token gets a new client its
// first certificate at the gateway, once; the certificate then works for
// mTLS; the token is refused the second time and never accepted over plain
// HTTP.
func TestEnrollmentThroughTheGateway(t *testing.T) {
	// Revocation is off on the route here: the certificate names the
	// config's placeholder publish URL; TestInternalCALifecycle covers it.
	e := newEnvWith(t, map[string]any{"CA": true, "CARevocation": `"off"`}, func(e *env) {
		if err := ca.Init(filepath.Join(e.dir, "ca"), ca.InitOptions{Name: "Test Internal"}); err != nil {
			t.Fatal(err)
		}
	})
	records, err := store.Open(filepath.Join(e.dir, "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer records.Close()
	tok, err := enroll.CreateToken(context.Background(), records, enroll.Constraints{Consumer: "svc-b", CommonName: "svc-b"}, time.Hour, e.now())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "svc-b"}}, key)
	body := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})
	post := func(c *http.Client, url string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	_, plain, _ := e.g.Addrs()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if resp := post(noRedirect, "http://"+plain.String()+"/.well-known/warden/pki/enroll"); resp.StatusCode != http.StatusPermanentRedirect {
		t.Fatalf("enrollment over plain HTTP: %d, want only a redirect", resp.StatusCode)
	}
	resp := post(e.client(), e.httpsURL("/.well-known/warden/pki/enroll"))
	chain, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("enroll: %d %s", resp.StatusCode, chain)
	}
	var certs [][]byte
	for rest := chain; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		certs = append(certs, b.Bytes)
	}
	if p := readProblem(t, post(e.client(), e.httpsURL("/.well-known/warden/pki/enroll"))); p.Reason != "token_used" {
		t.Fatalf("second use of the token: %s", p.Reason)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost",
		Certificates: []tls.Certificate{{Certificate: certs, PrivateKey: key}}}}
	defer tr.CloseIdleConnections()
	r2, err := (&http.Client{Transport: tr}).Get(e.httpsURL("/internal/x"))
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 200 {
		t.Fatalf("enrolled certificate: %d", r2.StatusCode)
	}
}

// TestPKIPathsAreCanonical: a non-canonical path under the publishing
// prefix is refused, not redirected (a 307 would resend an enrollment token
// to wherever the cleaned path leads).
func TestPKIPathsAreCanonical(t *testing.T) {
	e := newEnvWith(t, map[string]any{"CA": true}, func(e *env) {
		if err := ca.Init(filepath.Join(e.dir, "ca"), ca.InitOptions{Name: "Test Internal"}); err != nil {
			t.Fatal(err)
		}
	})
	for _, p := range []string{"/.well-known/warden/pki//enroll", "/.well-known/warden/pki/crl/../enroll"} {
		out := e.rawRequest(t, "POST "+p+" HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if pr := readProblem(t, resp); resp.StatusCode != 400 || pr.Reason != "path_not_normalized" {
			t.Fatalf("%s: %d %s", p, resp.StatusCode, pr.Reason)
		}
	}
}
