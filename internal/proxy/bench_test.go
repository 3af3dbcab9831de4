package proxy

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wardengw/warden/internal/pki"
)

// BenchmarkGET compares a GET through Upstream.ServeHTTP (pinned, with
// forwarding headers) with the same GET from a plain http.Client to the
// same TLS backend; the ratio of the two is the proxy's overhead.
func BenchmarkGET(b *testing.B) {
	p := newPKI(b)
	be := newBackend(b, p.good.TLS(), nil, nil)

	b.Run("direct", func(b *testing.B) {
		tr := &http.Transport{ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 64,
			TLSClientConfig: &tls.Config{RootCAs: p.root.Pool(), ServerName: upstreamName, MinVersion: tls.VersionTLS12}}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr}
		target := be.srv.URL + "/bench"
		b.ReportAllocs()
		for b.Loop() {
			res, err := c.Get(target)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Fatal(res.Status)
			}
		}
	})
	b.Run("proxy", func(b *testing.B) { benchProxy(b, p, be, false) })
	// net/http's transport and ReverseProxy (stdTransport), as with an
	// http2: true upstream; the backend offers HTTP/1.1 only here.
	b.Run("proxy-std", func(b *testing.B) { benchProxy(b, p, be, true) })
}

func benchProxy(b *testing.B, p *testPKI, be *backend, std bool) {
	cfg := p.config(b, be)
	cfg.Pins = pki.PinSet{pinOf(p.good)}
	cfg.HTTP2 = std
	u := mustNew(b, cfg)
	e := newEnv()
	r := e.request("GET", "https://gw.example/bench", "192.0.2.1:1234")
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		u.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code, rec.Body)
		}
	}
}
