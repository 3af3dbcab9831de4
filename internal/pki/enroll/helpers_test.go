package enroll

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
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/pki/ca"
	"github.com/wardengw/warden/internal/store"
	"github.com/wardengw/warden/internal/testkit"
)

type fixture struct {
	t     testing.TB
	clk   *testkit.Clock
	st    *store.Store
	ca    *ca.CA
	other *ca.CA // another CA, trusted by the listener but not by the handler
	h     *Handler
	srv   *httptest.Server
}

func newCA(t testing.TB, st *store.Store, clk *testkit.Clock) *ca.CA {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	if err := ca.Init(dir, ca.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	c, err := ca.Load(dir, nil, ca.Config{Records: st, PublishURL: "http://127.0.0.1:1/pki", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newFixture serves the handler on a real TLS server on 127.0.0.1 whose
// listener accepts (and verifies) client certificates of both CAs.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, clk: testkit.NewClock(time.Now()), st: openStore(t)}
	f.ca = newCA(t, f.st, f.clk)
	f.other = newCA(t, openStore(t), f.clk)
	h, err := New(Config{CA: f.ca, Store: f.st, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	pool := x509.NewCertPool()
	pool.AddCert(f.ca.Root)
	pool.AddCert(f.other.Root)
	f.srv = httptest.NewUnstartedServer(http.StripPrefix("/pki", h))
	f.srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) token(c Constraints, ttl time.Duration) string {
	f.t.Helper()
	tok, err := CreateToken(context.Background(), f.st, c, ttl, f.clk.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

type csrSpec struct {
	cn   string
	dns  []string
	uris []string
}

func makeCSR(t testing.TB, s csrSpec, key crypto.Signer) ([]byte, crypto.Signer) {
	t.Helper()
	if key == nil {
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: s.cn}, DNSNames: s.dns}
	for _, u := range s.uris {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), key
}

type result struct {
	status int
	reason string
	chain  []*x509.Certificate
}

// post sends body to path over TLS, with the bearer token if not empty
// and the client certificate if not nil.
func (f *fixture) post(path, tok string, body []byte, cert *tls.Certificate) result {
	f.t.Helper()
	tr := f.srv.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/pki"+path, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/pkcs10")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	res := result{status: resp.StatusCode}
	if resp.StatusCode != http.StatusOK {
		var p struct{ Reason string }
		if err := json.Unmarshal(b, &p); err != nil || resp.Header.Get("Content-Type") != "application/problem+json" {
			f.t.Fatalf("%d %s: not a problem document: %q", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		res.reason = p.Reason
		return res
	}
	if ct := resp.Header.Get("Content-Type"); ct != ContentTypeChain {
		f.t.Fatalf("content type %q", ct)
	}
	for rest := b; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			f.t.Fatal(err)
		}
		res.chain = append(res.chain, c)
	}
	if len(res.chain) != 2 || !res.chain[1].Equal(f.ca.Intermediate) {
		f.t.Fatalf("chain of %d certificates, not leaf + intermediate", len(res.chain))
	}
	return res
}

func (f *fixture) want(res result, status int, reason string) {
	f.t.Helper()
	if res.status != status || res.reason != reason {
		f.t.Fatalf("got %d %q, want %d %q", res.status, res.reason, status, reason)
	}
}

func tlsCert(chain []*x509.Certificate, key crypto.Signer) *tls.Certificate {
	c := &tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}
