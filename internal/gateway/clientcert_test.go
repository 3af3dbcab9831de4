package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/pki/pkitest"
)

// TestRequiredClientCertificateIsRevocationChecked: with client_auth
// require, the certificate verified in the handshake becomes the identity
// of requests on routes without an mtls policy (client_certificate, which
// the jwt policy's RFC 8705 binding trusts) only if it is not revoked. A
// certificate on the CRL completes the handshake (it chains to the CA) but
// its request is refused with 401 revoked and never reaches the upstream;
// a certificate whose status no source can tell (issued by an intermediate
// without a CRL) is refused with 401 revocation_unavailable; a good one
// passes.
func TestRequiredClientCertificateIsRevocationChecked(t *testing.T) {
	var revoked, sub *pkitest.Leaf
	e := newEnvWith(t, map[string]any{"ClientAuthMode": "require", "CRL": true}, func(e *env) {
		revoked = e.ca.Issue(t, pkitest.Options{CommonName: "stolen", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		writeCRL(t, e, 0, revoked.Cert.SerialNumber)
		sub = e.ca.NewIntermediate(t, "Sub CA", pkitest.Options{}).Issue(t, pkitest.Options{CommonName: "unknown-status",
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	})
	get := func(cert *pkitest.Leaf) *http.Response {
		t.Helper()
		resp, err := e.clientWith(cert, false).Get(e.httpsURL("/public/x"))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	resp := get(revoked)
	if p := readProblem(t, resp); resp.StatusCode != 401 || p.Reason != "revoked" || !resp.Close {
		t.Fatalf("revoked certificate: %d %s close=%v", resp.StatusCode, p.Reason, resp.Close)
	}
	ev := e.waitEvent(func(ev audit.Event) bool { return ev.Type == "client_cert_rejected" && ev.Reason == "revoked" })
	if ev.Severity != audit.Critical || ev.Route != "public" || ev.Fields["serial"] != revoked.Cert.SerialNumber.Text(16) {
		t.Errorf("event %+v", ev)
	}

	resp = get(sub)
	if p := readProblem(t, resp); resp.StatusCode != 401 || p.Reason != "revocation_unavailable" {
		t.Fatalf("unknown status: %d %s", resp.StatusCode, p.Reason)
	}
	if n := e.hits.Load(); n != 0 {
		t.Fatalf("refused requests reached the upstream %d times", n)
	}

	resp = get(e.clientCert)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || e.hits.Load() != 1 {
		t.Fatalf("good certificate: %d", resp.StatusCode)
	}
}

// TestCertificateBoundTokenWithRevokedCertificate: the RFC 8705 case. A
// token bound (cnf.x5t#S256) to a client certificate that has since been
// revoked is useless to whoever stole both: refused with 401 revoked. The
// same binding to a good certificate passes.
func TestCertificateBoundTokenWithRevokedCertificate(t *testing.T) {
	w := &tokenWorld{}
	var err error
	if w.issuer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &w.issuer.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	var revoked *pkitest.Leaf
	e := newEnvWith(t, map[string]any{"ClientAuthMode": "require", "CRL": true, "JWT": true}, func(e *env) {
		revoked = e.ca.Issue(t, pkitest.Options{CommonName: "stolen", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		writeCRL(t, e, 0, revoked.Cert.SerialNumber)
		if err := os.WriteFile(filepath.Join(e.dir, "jwks.json"), jwks, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	boundTo := func(c *pkitest.Leaf) string {
		sum := sha256.Sum256(c.Cert.Raw)
		return w.token(t, map[string]any{"cnf": map[string]any{"x5t#S256": base64.RawURLEncoding.EncodeToString(sum[:])}})
	}
	call := func(c *pkitest.Leaf, tok string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", e.httpsURL("/token/x"), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := e.clientWith(c, false).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := call(revoked, boundTo(revoked))
	if p := readProblem(t, resp); resp.StatusCode != 401 || p.Reason != "revoked" {
		t.Fatalf("token bound to a revoked certificate: %d %s", resp.StatusCode, p.Reason)
	}
	resp = call(e.clientCert, boundTo(e.clientCert))
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("token bound to a good certificate: %d", resp.StatusCode)
	}
	// and the binding itself is enforced: the good certificate with the
	// stolen token does not pass either
	resp = call(e.clientCert, boundTo(revoked))
	if p := readProblem(t, resp); resp.StatusCode != 401 || p.Reason != "cnf_mismatch" {
		t.Fatalf("token bound to another certificate: %d %s", resp.StatusCode, p.Reason)
	}
}
