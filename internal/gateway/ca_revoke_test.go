package gateway

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/pki/ca"
	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/store"
)

// caEnv is a gateway running an internal CA (constrained to the DNS
// domain internal.test and the SPIFFE trust domain test.internal), with
// the admin API on for the test CA's client certificates (never the
// internal CA's: validate refuses that), and a second store handle on the
// gateway's store: what `warden ca` commands, another process, use.
type caEnv struct {
	*env
	cli   *store.Store
	inter *x509.Certificate // the internal CA's intermediate
	root  *x509.Certificate
}

func newCAEnv(t testing.TB, extra ...map[string]any) *caEnv {
	t.Helper()
	vars := map[string]any{"CA": true, "AdminCA": true, "CRL": true, "Revocation": "hard_fail"}
	for _, m := range extra {
		for k, v := range m {
			vars[k] = v
		}
	}
	e := newEnvWith(t, vars, func(e *env) {
		err := ca.Init(filepath.Join(e.dir, "ca"), ca.InitOptions{Name: "Test Internal",
			PermittedDNSDomains: []string{"internal.test"}, PermittedURIDomains: []string{"test.internal"}})
		if err != nil {
			t.Fatal(err)
		}
		writeCRL(t, e, 0) // the test CA's: it has revoked nothing
	})
	cli, err := store.Open(filepath.Join(e.dir, "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	root, inter, err := ca.LoadCertificates(filepath.Join(e.dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	return &caEnv{env: e, cli: cli, inter: inter, root: root}
}

// newCSR returns a key and a PEM CSR for a client named name.
func newCSR(t testing.TB, name string, dns ...string) (crypto.Signer, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name},
		DNSNames: dns, URIs: []*url.URL{{Scheme: "spiffe", Host: "test.internal", Path: "/svc/" + name}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// issueCLI issues a client certificate as `warden ca issue` does: the CA
// loaded by another process on its own store handle.
func (c *caEnv) issueCLI(t testing.TB, name string) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	authority, err := ca.Load(filepath.Join(c.dir, "ca"), nil, ca.Config{Records: c.cli, PublishURL: "http://localhost/.well-known/warden/pki"})
	if err != nil {
		t.Fatal(err)
	}
	key, csr := newCSR(t, name)
	cert, err := authority.Issue(context.Background(), ca.IssueRequest{CSR: csr, Profile: ca.ProfileClient})
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// keptAlive is an HTTP/1.1 client on one connection, presenting a client
// certificate; each request reports whether it reused the connection.
type keptAlive struct {
	t      testing.TB
	c      *http.Client
	reused bool
	conns  int
}

func (c *caEnv) keptAliveClient(t testing.TB, chain [][]byte, key crypto.Signer, roots *x509.CertPool) *keptAlive {
	tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1,
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost",
			Certificates: []tls.Certificate{{Certificate: chain, PrivateKey: key}}},
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	t.Cleanup(tr.CloseIdleConnections)
	return &keptAlive{t: t, c: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

func (k *keptAlive) do(method, url string, body []byte) *http.Response {
	k.t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		k.t.Fatal(err)
	}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		k.reused = i.Reused
		if !i.Reused {
			k.conns++
		}
	}}))
	resp, err := k.c.Do(req)
	if err != nil {
		k.t.Fatal(err)
	}
	return resp
}

func status(t *testing.T, resp *http.Response) (int, string) {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// wantPublishedRevoked fetches the gateway's CRL and asks its OCSP
// responder, over plain HTTP as relying parties do, and checks both say
// serial is revoked (and, for the CRL, that it is signed by the
// intermediate).
func (c *caEnv) wantPublishedRevoked(t *testing.T, cert *x509.Certificate) {
	t.Helper()
	_, plain, _ := c.g.Addrs()
	base := "http://" + plain.String() + "/.well-known/warden/pki"
	resp, err := http.Get(base + "/crl")
	if err != nil {
		t.Fatal(err)
	}
	der, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("CRL: %v", err)
	}
	if err := crl.CheckSignatureFrom(c.inter); err != nil {
		t.Fatalf("CRL signature: %v", err)
	}
	listed := false
	for _, e := range crl.RevokedCertificateEntries {
		listed = listed || e.SerialNumber.Cmp(cert.SerialNumber) == 0
	}
	if !listed {
		t.Fatalf("CRL number %v does not list serial %x", crl.Number, cert.SerialNumber)
	}
	req, err := ocsp.CreateRequest(cert, c.inter, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.Post(base+"/ocsp", "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	or, err := ocsp.ParseResponseForCert(b, cert, c.inter)
	if err != nil {
		t.Fatalf("OCSP: %v", err)
	}
	if or.Status != ocsp.Revoked {
		t.Fatalf("OCSP status %d, want revoked", or.Status)
	}
}

// TestInternalCARevocationByCLIIsImmediate: a certificate of the
// gateway's internal CA, working for mTLS on a kept-alive connection, is
// revoked by another process (`warden ca revoke`: its own store handle, no
// CA key). The very next request on the same connection is refused 401
// revoked, with no clock advance and no refresh; renewal with it is
// refused; the gateway's CRL lists it and its OCSP responder says revoked,
// though both had answered before. A certificate of another CA with the
// same serial is not affected.
func TestInternalCARevocationByCLIIsImmediate(t *testing.T) {
	c := newCAEnv(t)
	now := time.Now()
	c.clock.Store(&now) // frozen: nothing may depend on time passing
	cert, key := c.issueCLI(t, "svc-a")
	k := c.keptAliveClient(t, [][]byte{cert.Raw, c.inter.Raw}, key, c.ca.Pool())
	if code, body := status(t, k.do("GET", c.httpsURL("/internal/x"), nil)); code != 200 {
		t.Fatalf("before revocation: %d %s", code, body)
	}
	// Warm the publisher's caches with "good" answers.
	_, plain, _ := c.g.Addrs()
	base := "http://" + plain.String() + "/.well-known/warden/pki"
	if resp, err := http.Get(base + "/crl"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("CRL before: %v", err)
	} else {
		resp.Body.Close()
	}
	if req, err := ocsp.CreateRequest(cert, c.inter, nil); err != nil {
		t.Fatal(err)
	} else if resp, err := http.Post(base+"/ocsp", "application/ocsp-request", bytes.NewReader(req)); err != nil || resp.StatusCode != 200 {
		t.Fatalf("OCSP before: %v", err)
	} else {
		resp.Body.Close()
	}
	// The test CA's certificate with the very same serial, on the route
	// trusting the test CA (revocation checked there against its CRL).
	twin := c.ca.Issue(t, pkitest.Options{CommonName: "client-a", SerialNumber: cert.SerialNumber,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if code, body := status(t, mustGet(t, c.clientWith(twin, false), c.httpsURL("/secure/x"))); code != 200 {
		t.Fatalf("other CA's certificate with the same serial, before: %d %s", code, body)
	}

	if err := ca.RevokeRecord(context.Background(), c.cli, ca.IssuerID(c.inter), cert.SerialNumber, "keyCompromise", now); err != nil {
		t.Fatal(err)
	}
	// The publisher notices by itself (first here; the admin API test
	// asks after the mTLS check).
	c.wantPublishedRevoked(t, cert)
	resp := k.do("GET", c.httpsURL("/internal/x"), nil)
	if !k.reused || k.conns != 1 {
		t.Fatalf("second request on a new connection (reused %v, %d connections)", k.reused, k.conns)
	}
	if p := readProblem(t, resp); resp.StatusCode != 401 || p.Reason != "revoked" {
		t.Fatalf("next request after the revocation: %d %s", resp.StatusCode, p.Reason)
	}
	ev := c.waitEvent(func(e audit.Event) bool { return e.Type == "client_cert_rejected" && e.Reason == "revoked" })
	if ev.Fields["revocation_source"] != "local_ca" {
		t.Fatalf("refused by %v, want the local CA", ev.Fields["revocation_source"])
	}
	// Renewal with the revoked certificate (a new connection: the refusal
	// closed the last one).
	_, csr := newCSR(t, "svc-a")
	r2 := c.keptAliveClient(t, [][]byte{cert.Raw, c.inter.Raw}, key, c.ca.Pool())
	if resp := r2.do("POST", c.httpsURL("/.well-known/warden/pki/renew"), csr); resp.StatusCode != 403 {
		t.Fatalf("renewal with the revoked certificate: %d", resp.StatusCode)
	} else if p := readProblem(t, resp); p.Reason != "renew_revoked" {
		t.Fatalf("renewal: %s", p.Reason)
	}
	if code, body := status(t, mustGet(t, c.clientWith(twin, false), c.httpsURL("/secure/x"))); code != 200 {
		t.Fatalf("other CA's certificate with the same serial, after: %d %s", code, body)
	}
}

// mustGet is Get failing the test on a transport error.
func mustGet(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestInternalCARevocationByAdminAPIIsImmediate: a certificate issued
// through the admin API (POST /api/ca/certificates) works for mTLS; revoked
// through the admin API, the next request on the same connection is
// refused, and the CRL and OCSP answers say so. Revoking it again is 409,
// an unknown serial 404, and the listing shows it revoked.
func TestInternalCARevocationByAdminAPIIsImmediate(t *testing.T) {
	c := newCAEnv(t)
	now := time.Now()
	c.clock.Store(&now)
	adm := c.adminClient(t)
	key, csr := newCSR(t, "svc-b")
	resp := adm.post(t, "/api/ca/certificates?profile=client&lifetime=2h", "application/pkcs10", csr)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pem-certificate-chain" {
		t.Fatalf("issue: %d %s", resp.StatusCode, body)
	}
	chain := pemCerts(t, body)
	cert, err := x509.ParseCertificate(chain[0])
	if err != nil || len(chain) != 2 || !bytes.Equal(chain[1], c.inter.Raw) {
		t.Fatalf("issued chain: %d certificates, %v", len(chain), err)
	}
	if life := cert.NotAfter.Sub(now); life > 2*time.Hour || life < 2*time.Hour-time.Minute {
		t.Fatalf("lifetime %v, asked 2h", life)
	}
	k := c.keptAliveClient(t, chain, key, c.ca.Pool())
	if code, body := status(t, k.do("GET", c.httpsURL("/internal/x"), nil)); code != 200 {
		t.Fatalf("issued certificate: %d %s", code, body)
	}
	serial := ca.SerialString(cert.SerialNumber)
	revoke := fmt.Sprintf(`{"serial": %q, "reason": "keyCompromise"}`, serial)
	if code, body := status(t, adm.post(t, "/api/ca/revoke", "application/json", []byte(revoke))); code != 200 || !strings.Contains(body, serial) {
		t.Fatalf("revoke: %d %s", code, body)
	}
	resp = k.do("GET", c.httpsURL("/internal/x"), nil)
	if p := readProblem(t, resp); !k.reused || resp.StatusCode != 401 || p.Reason != "revoked" {
		t.Fatalf("next request after the revocation: reused %v, %d %s", k.reused, resp.StatusCode, p.Reason)
	}
	c.wantPublishedRevoked(t, cert)
	c.waitEvent(func(e audit.Event) bool { return e.Type == "ca_certificate_revoked" && e.Fields["serial"] == serial })

	for _, bad := range []struct {
		body   string
		status int
		reason string
	}{
		{revoke, 409, "already_revoked"},
		{`{"serial": "7e57", "reason": "keyCompromise"}`, 404, "certificate_unknown"},
		{`{"serial": "7e57", "reason": "certificateHold"}`, 400, "bad_request"},
		{`{"serial": "not hex", "reason": "keyCompromise"}`, 400, "bad_request"},
		{`{"serial": "7e57", "reason": "keyCompromise", "extra": 1}`, 400, "bad_request"},
		{`{"serial": "7e57"}`, 400, "bad_request"},
		{``, 400, "bad_request"},
	} {
		resp := adm.post(t, "/api/ca/revoke", "application/json", []byte(bad.body))
		if p := readProblem(t, resp); resp.StatusCode != bad.status || p.Reason != bad.reason {
			t.Errorf("revoke %s: %d %s, want %d %s", bad.body, resp.StatusCode, p.Reason, bad.status, bad.reason)
		}
	}
	resp = adm.get(t, "/api/ca/certificates")
	var list struct {
		Certificates []struct {
			Serial, State, Reason string
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != 200 {
		t.Fatalf("list: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if len(list.Certificates) != 1 || list.Certificates[0].Serial != serial || list.Certificates[0].State != "revoked" ||
		list.Certificates[0].Reason != "keyCompromise" {
		t.Fatalf("list: %+v", list)
	}
}

// adminAPI is an admin API client.
type adminAPI struct {
	c    *http.Client
	base string
}

// adminClient presents the test CA's client certificate, an admin's.
func (c *caEnv) adminClient(t *testing.T) *adminAPI {
	_, _, admin := c.g.Addrs()
	return &adminAPI{c: c.clientWith(c.clientCert, false), base: "https://" + admin.String()}
}

func (a *adminAPI) post(t *testing.T, path, ct string, body []byte) *http.Response {
	t.Helper()
	resp, err := a.c.Post(a.base+path, ct, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (a *adminAPI) get(t *testing.T, path string) *http.Response {
	t.Helper()
	resp, err := a.c.Get(a.base + path)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func pemCerts(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for {
		var p *pem.Block
		if p, b = pem.Decode(b); p == nil {
			return out
		}
		out = append(out, p.Bytes)
	}
}

// BenchmarkInternalCAKeepAlive: a kept-alive mTLS request through the
// whole gateway with a certificate of its internal CA, with revocation off
// on the route and with it on (hard_fail: the CA's own answer, which reads
// the store's revocation generation on every request), in the same run.
func BenchmarkInternalCAKeepAlive(b *testing.B) {
	for _, mode := range []string{"off", "hard_fail"} {
		b.Run("revocation="+mode, func(b *testing.B) {
			c := newCAEnv(b, map[string]any{"CARevocation": mode})
			cert, key := c.issueCLI(b, "bench")
			k := c.keptAliveClient(b, [][]byte{cert.Raw, c.inter.Raw}, key, c.ca.Pool())
			url := c.httpsURL("/internal/bench")
			get := func() {
				resp := k.do("GET", url, nil)
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			get()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				get()
			}
		})
	}
}
