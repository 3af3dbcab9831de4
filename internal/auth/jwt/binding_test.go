package jwt_test

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wardengw/warden/internal/auth/jwt"
	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/tlsserver"
)

func thumbprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestCertificateBinding (RFC 8705) through a real TLS listener that
// requires and verifies client certificates: a token bound to certificate
// A is refused over a connection presenting B and accepted over A.
func TestCertificateBinding(t *testing.T) {
	w := newWorld(t, nil)
	clientRoot := pkitest.NewRootCA(t, "Client Root", pkitest.Options{})
	serverRoot := pkitest.NewRootCA(t, "Server Root", pkitest.Options{})
	server := serverRoot.Issue(t, pkitest.Options{DNSNames: []string{"gw.example"}})
	certA := clientRoot.Issue(t, pkitest.Options{CommonName: "a", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	certB := clientRoot.Issue(t, pkitest.Options{CommonName: "b", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})

	tsrv, err := tlsserver.NewServer(tlsserver.Settings{Certificates: []tls.Certificate{server.TLS()},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientRoot.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := tlsserver.NewListener(inner, tsrv, tlsserver.ListenerOptions{Name: "test"})
	var n atomic.Int64
	hs := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		x := &policy.Exchange{ID: "req-" + strconv.FormatInt(n.Add(1), 10), Route: "test", Remote: r.RemoteAddr, Env: w.env}
		w.h.ServeHTTP(rw, r.WithContext(policy.WithExchange(r.Context(), x)))
	})}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close(); _ = tsrv.Close() })
	url := "https://" + ln.Addr().String() + "/orders"

	get := func(leaf *pkitest.Leaf, token string) (int, string) {
		t.Helper()
		cert := leaf.TLS()
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: serverRoot.Pool(), ServerName: "gw.example",
			Certificates: []tls.Certificate{cert}}}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	boundToA := mint(t, w.keys.es256(), w.with("cnf", map[string]any{"x5t#S256": thumbprint(certA.Cert)}), nil)
	if code, body := get(certB, boundToA); code != http.StatusUnauthorized || !strings.Contains(body, jwt.ReasonCnfMismatch) {
		t.Errorf("token bound to A over B: %d %s", code, body)
	}
	if code, body := get(certA, boundToA); code != http.StatusOK {
		t.Errorf("token bound to A over A: %d %s", code, body)
	}
	if code, body := get(certA, mint(t, w.keys.es256(), w.claims(), nil)); code != http.StatusOK {
		t.Errorf("unbound token over A (binding not required): %d %s", code, body)
	}

	// In process: no verified certificate at all, an unverified one (the
	// listener only requested it), an earlier mtls policy's certificate,
	// a malformed thumbprint, and require_certificate_binding.
	r := request(boundToA)
	expect(t, w.serve(r), jwt.ReasonCnfMismatch)
	r = request(boundToA)
	r.TLS = &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{certA.Cert}}
	expect(t, w.serve(r), jwt.ReasonCnfMismatch)
	x := &policy.Exchange{Env: w.env}
	x.Identity.ClientCert = certA.Cert
	expect(t, w.serveX(request(boundToA), x), "")
	x = &policy.Exchange{Env: w.env}
	x.Identity.ClientCert = certB.Cert
	expect(t, w.serveX(request(boundToA), x), jwt.ReasonCnfMismatch)
	x.Identity.ClientCert = certA.Cert
	expect(t, w.serveX(request(mint(t, w.keys.es256(), w.with("cnf", map[string]any{"x5t#S256": "not-a-thumbprint"}), nil)), x), jwt.ReasonCnfMismatch)

	req := newWorld(t, func(c *jwt.Config) { c.RequireCertificateBinding = true })
	x = &policy.Exchange{Env: req.env}
	x.Identity.ClientCert = certA.Cert
	expect(t, req.serveX(request(mint(t, req.keys.es256(), req.claims(), nil)), x), jwt.ReasonCnfRequired)
	x = &policy.Exchange{Env: req.env}
	x.Identity.ClientCert = certA.Cert
	expect(t, req.serveX(request(mint(t, req.keys.es256(), req.with("cnf", map[string]any{"x5t#S256": thumbprint(certA.Cert)}), nil)), x), "")
}
