package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/pki"
	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/testkit"
)

func TestNewValidates(t *testing.T) {
	https, _ := url.Parse("https://api.internal:8443/base")
	plain, _ := url.Parse("http://api.internal:8080")
	noHost, _ := url.Parse("https:///x")
	ftp, _ := url.Parse("ftp://api.internal")
	creds, _ := url.Parse("https://user:pw@api.internal")
	pin := pki.PinSet{{1}}
	tests := []struct {
		name    string
		cfg     UpstreamConfig
		wantErr string // "" means valid
	}{
		{"https", UpstreamConfig{Name: "a", URL: https}, ""},
		{"plaintext allowed", UpstreamConfig{Name: "a", URL: plain, AllowPlaintext: true}, ""},
		{"plaintext refused", UpstreamConfig{Name: "a", URL: plain}, "insecure_plaintext_upstream"},
		{"plaintext with pins", UpstreamConfig{Name: "a", URL: plain, AllowPlaintext: true, Pins: pin}, "need an https:// url"},
		{"no name", UpstreamConfig{URL: https}, "name is required"},
		{"no url", UpstreamConfig{Name: "a"}, "url is required"},
		{"no host", UpstreamConfig{Name: "a", URL: noHost}, "host is required"},
		{"bad scheme", UpstreamConfig{Name: "a", URL: ftp}, "scheme must be https"},
		{"credentials", UpstreamConfig{Name: "a", URL: creds}, "credentials"},
		{"invalid trusted proxy", UpstreamConfig{Name: "a", URL: https, TrustedProxies: []netip.Prefix{{}}}, "trusted proxy #1"},
		{"negative timeout", UpstreamConfig{Name: "a", URL: https, DialTimeout: -1}, "dial timeout -1ns is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				u.CloseIdleConnections()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewReportsEveryError(t *testing.T) {
	ftp, _ := url.Parse("ftp://")
	_, err := New(UpstreamConfig{URL: ftp, DialTimeout: -1})
	for _, want := range []string{"name is required", "scheme must be https", "host is required", "dial timeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
}

func TestTransportSettings(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p.good.TLS(), nil, nil)
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http2=%v", h2), func(t *testing.T) {
			cfg := p.config(t, b)
			cfg.Pins = pki.PinSet{pinOf(p.good)}
			cfg.HTTP2 = h2
			u := mustNew(t, cfg)
			tr := u.transport
			if tr.Proxy != nil || tr.ForceAttemptHTTP2 != h2 || tr.TLSHandshakeTimeout != DefaultTLSHandshakeTimeout ||
				tr.ResponseHeaderTimeout != DefaultResponseHeaderTimeout || tr.IdleConnTimeout != DefaultIdleConnTimeout ||
				tr.MaxIdleConnsPerHost != DefaultMaxIdleConnsPerHost || tr.MaxConnsPerHost != 0 {
				t.Errorf("transport = %+v", tr)
			}
			c := tr.TLSClientConfig
			if c.InsecureSkipVerify || c.MinVersion != tls.VersionTLS12 || c.ServerName != upstreamName || c.VerifyConnection == nil {
				t.Errorf("TLS config: skip=%v min=%x sni=%q pinning=%v", c.InsecureSkipVerify, c.MinVersion, c.ServerName, c.VerifyConnection != nil)
			}
			// HTTP/1.1, the default, goes through the lean path, with the
			// same TLS policy (the very tls.Config) and limits.
			if h2 {
				if u.h1 != nil {
					t.Error("HTTP/2 upstream has the HTTP/1.1 lean path")
				}
				return
			}
			h := u.h1
			if h == nil || h.tlsConfig != c || h.fallback != (stdTransport{tr}) || h.handshakeTimeout != DefaultTLSHandshakeTimeout ||
				h.headerTimeout != DefaultResponseHeaderTimeout || h.idleTimeout != DefaultIdleConnTimeout ||
				h.maxIdle != DefaultMaxIdleConnsPerHost || h.dialer.Timeout != DefaultDialTimeout {
				t.Errorf("lean transport = %+v", h)
			}
		})
	}
}

// TestMITM is the attack matrix: every upstream that is not the verified,
// pinned one is refused at the handshake, before any request byte reaches
// it, and the client gets a 502 problem with the reason.
func TestMITM(t *testing.T) {
	p := newPKI(t)
	now := time.Now()
	issue := func(o pkitest.Options) tls.Certificate {
		if o.DNSNames == nil {
			o.DNSNames = []string{upstreamName}
		}
		return p.inter.Issue(t, o).TLS()
	}
	otherRoot := pkitest.NewRootCA(t, "Attacker Root", pkitest.Options{})
	// A CA the upstream trusts but did not pin, mis-issuing for the name:
	// the attacker appends the real (pinned) intermediate to look legitimate.
	rogue := p.root.NewIntermediate(t, "Rogue Intermediate", pkitest.Options{})
	misissued := rogue.Issue(t, pkitest.Options{DNSNames: []string{upstreamName}}).TLS()
	misissued.Certificate = append(misissued.Certificate, p.inter.Cert.Raw)

	tests := []struct {
		name       string
		cert       tls.Certificate
		pins       pki.PinSet
		wantReason string
		wantVerify string
	}{
		{"expired", issue(pkitest.Options{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)}), nil, ReasonTLSVerifyFailed, "expired"},
		{"not yet valid", issue(pkitest.Options{NotBefore: now.Add(time.Hour), NotAfter: now.Add(48 * time.Hour)}), nil, ReasonTLSVerifyFailed, "not_yet_valid"},
		{"wrong hostname", issue(pkitest.Options{DNSNames: []string{"evil.test"}}), nil, ReasonTLSVerifyFailed, "hostname_mismatch"},
		{"self-signed", pkitest.SelfSigned(t, pkitest.Options{DNSNames: []string{upstreamName}}).TLS(), nil, ReasonTLSVerifyFailed, "self_signed"},
		{"untrusted root", otherRoot.NewIntermediate(t, "Attacker Intermediate", pkitest.Options{}).Issue(t, pkitest.Options{DNSNames: []string{upstreamName}}).TLS(), nil, ReasonTLSVerifyFailed, "unknown_authority"},
		{"missing intermediate", onlyLeaf(p.good), nil, ReasonTLSVerifyFailed, "unknown_authority"},
		{"unpinned key", p.good.TLS(), pki.PinSet{pki.SPKIPin(otherRoot.Cert)}, ReasonPinMismatch, ""},
		{"pinned cert appended to a mis-issued chain", misissued, pki.PinSet{pki.SPKIPin(p.inter.Cert)}, ReasonPinMismatch, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, tt.cert, nil, nil)
			cfg := p.config(t, b)
			cfg.Pins = tt.pins
			u := mustNew(t, cfg)
			e := newEnv()
			rec := httptest.NewRecorder()
			u.ServeHTTP(rec, e.request("GET", "https://gw.example/api/orders", ""))

			wantProblem(t, rec, http.StatusBadGateway, tt.wantReason)
			if n := b.hits.Load(); n != 0 {
				t.Fatalf("upstream handler saw %d requests", n)
			}
			ev := e.onlyEvent(t, tt.wantReason)
			if ev.Severity != audit.Critical || ev.Reason != tt.wantReason || ev.Fields["upstream"] != "api" ||
				ev.Fields["path"] != "/api/orders" || ev.RequestID != "req-1" {
				t.Errorf("event = %+v", ev)
			}
			if got := ev.Fields["verify_reason"]; tt.wantVerify != "" && got != tt.wantVerify {
				t.Errorf("verify_reason = %v, want %q (cause %v)", got, tt.wantVerify, ev.Fields["cause"])
			}
			if tt.wantReason == ReasonPinMismatch {
				var want []string
				for _, der := range tt.cert.Certificate {
					want = append(want, pinOfDER(t, der))
				}
				if got, _ := ev.Fields["presented_pins"].([]string); !slices.Equal(got, want) {
					t.Errorf("presented_pins = %v, want %v", got, want)
				}
			}
			if n := e.upstreamErrors(t, "api", tt.wantReason); n != 1 {
				t.Errorf("upstream error metric = %v, want 1", n)
			}
		})
	}
}

func TestPinMismatchErrorTyped(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p.good.TLS(), nil, nil)
	c := &tls.Config{RootCAs: p.root.Pool(), ServerName: upstreamName,
		VerifyConnection: verifyPins("api", pki.PinSet{{7}})}
	_, err := tls.Dial("tcp", b.srv.Listener.Addr().String(), c)
	pm, ok := err.(*PinMismatchError)
	if !ok || pm.Upstream != "api" || len(pm.Presented) != 2 || pm.Presented[0] != pinOf(p.good).String() {
		t.Fatalf("Dial error = %#v, want *PinMismatchError with the presented chain", err)
	}
}

// TestGoodUpstream: a verified upstream, with or without pins, answers;
// the gateway's Host and headers reach it and its HSTS does not come back.
func TestGoodUpstream(t *testing.T) {
	p := newPKI(t)
	tests := []struct {
		name string
		pins pki.PinSet
	}{
		{"no pins", nil},
		{"leaf pin", pki.PinSet{pinOf(p.good)}},
		{"backup pin second in list", pki.PinSet{{9, 9, 9}, pinOf(p.good)}},
		{"backup pin on a second key", pki.PinSet{pki.SPKIPin(p.inter.Issue(t, pkitest.Options{}).Cert), pinOf(p.good)}},
		{"intermediate CA pin", pki.PinSet{{9}, pki.SPKIPin(p.inter.Cert)}},
		{"root CA pin", pki.PinSet{pki.SPKIPin(p.root.Cert)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, p.good.TLS(), nil, nil)
			cfg := p.config(t, b)
			cfg.URL = cfg.URL.JoinPath("/base")
			cfg.Pins = tt.pins
			u := mustNew(t, cfg)
			e := newEnv()
			rec := httptest.NewRecorder()
			u.ServeHTTP(rec, e.request("GET", "https://gw.example/api/orders?x=1", ""))
			if rec.Code != http.StatusOK || rec.Body.String() != "hello from /base/api/orders" {
				t.Fatalf("got %d %q", rec.Code, rec.Body)
			}
			if rec.Header().Get("X-Upstream") != "yes" || rec.Header().Get("Strict-Transport-Security") != "" ||
				rec.Header().Get("Alt-Svc") != "" {
				t.Errorf("response headers = %v", rec.Header())
			}
			if _, host, _ := b.last(); host != b.url(t).Host {
				t.Errorf("upstream saw Host %q, want %q", host, b.url(t).Host)
			}
			if evs := e.sink.Events(); len(evs) != 0 {
				t.Errorf("audit events = %+v", evs)
			}
		})
	}
}

func TestUpstreamMTLS(t *testing.T) {
	p := newPKI(t)
	client := p.inter.Issue(t, pkitest.Options{CommonName: "warden-gateway", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	b := newBackend(t, p.good.TLS(), func(s *httptest.Server) {
		s.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		s.TLS.ClientCAs = p.root.Pool()
	}, nil)

	t.Run("with client certificate", func(t *testing.T) {
		cfg := p.config(t, b)
		cert := client.TLS()
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
		u := mustNew(t, cfg)
		rec := httptest.NewRecorder()
		u.ServeHTTP(rec, newEnv().request("GET", "https://gw.example/x", ""))
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
	t.Run("without", func(t *testing.T) {
		before := b.hits.Load()
		u := mustNew(t, p.config(t, b))
		e := newEnv()
		rec := httptest.NewRecorder()
		u.ServeHTTP(rec, e.request("GET", "https://gw.example/x", ""))
		wantProblem(t, rec, http.StatusBadGateway, ReasonTLSHandshakeFailed)
		e.onlyEvent(t, ReasonTLSHandshakeFailed)
		if b.hits.Load() != before {
			t.Fatal("upstream handler saw the request")
		}
	})
}

// TestKeepAlive: the verified handshake is paid once for many requests,
// over HTTP/1.1 (the default, even when the upstream offers h2) and over
// HTTP/2 when enabled.
func TestKeepAlive(t *testing.T) {
	p := newPKI(t)
	for _, tt := range []struct {
		offerH2, enableH2 bool
		wantProto         int
	}{{false, false, 1}, {true, false, 1}, {true, true, 2}} {
		t.Run(fmt.Sprintf("offered=%v,enabled=%v", tt.offerH2, tt.enableH2), func(t *testing.T) {
			b := newBackend(t, p.good.TLS(), func(s *httptest.Server) { s.EnableHTTP2 = tt.offerH2 }, nil)
			cfg := p.config(t, b)
			cfg.Pins = pki.PinSet{pinOf(p.good)}
			cfg.HTTP2 = tt.enableH2
			u := mustNew(t, cfg)
			e := newEnv()
			for i := range 50 {
				rec := httptest.NewRecorder()
				u.ServeHTTP(rec, e.request("GET", "https://gw.example/k", ""))
				if rec.Code != http.StatusOK {
					t.Fatalf("request %d: %d %s", i, rec.Code, rec.Body)
				}
			}
			if h, n := b.handshakes.Load(), b.hits.Load(); h != 1 || n != 50 {
				t.Fatalf("%d handshakes for %d requests, want 1 for 50", h, n)
			}
			if _, _, proto := b.last(); proto != tt.wantProto {
				t.Fatalf("upstream saw HTTP/%d, want HTTP/%d", proto, tt.wantProto)
			}
		})
	}
}

func TestUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	u := mustNew(t, UpstreamConfig{Name: "down", URL: &url.URL{Scheme: "https", Host: addr}, DialTimeout: time.Second})
	e := newEnv()
	rec := httptest.NewRecorder()
	start := time.Now()
	u.ServeHTTP(rec, e.request("GET", "https://gw.example/x", ""))
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v, want under the dial timeout", d)
	}
	wantProblem(t, rec, http.StatusBadGateway, ReasonUnavailable)
	e.onlyEvent(t, ReasonUnavailable)
	if n := e.upstreamErrors(t, "down", ReasonUnavailable); n != 1 {
		t.Errorf("metric = %v", n)
	}
}

func TestTimeouts(t *testing.T) {
	p := newPKI(t)
	release := make(chan struct{})
	block := func(http.ResponseWriter, *http.Request) { <-release }
	silent := newBackend(t, p.good.TLS(), nil, block)
	silentH2 := newBackend(t, p.good.TLS(), func(s *httptest.Server) { s.EnableHTTP2 = true }, block)
	t.Cleanup(func() { close(release) }) // runs before the server's Close

	// A peer that accepts the connection and never speaks TLS.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan struct{})
	testkit.Serve(t, ln, func(c net.Conn) {
		<-held
		c.Close()
	})
	t.Cleanup(func() { close(held) }) // runs before Serve's cleanup waits

	tests := []struct {
		name  string
		url   *url.URL
		http2 bool
	}{
		{"response header timeout", silent.url(t), false},
		{"response header timeout HTTP/2", silentH2.url(t), true},
		{"TLS handshake timeout", &url.URL{Scheme: "https", Host: ln.Addr().String()}, false},
		{"TLS handshake timeout, standard transport", &url.URL{Scheme: "https", Host: ln.Addr().String()}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := UpstreamConfig{Name: "slow", URL: tt.url, ServerName: upstreamName, RootCAs: p.root.Pool(),
				TLSHandshakeTimeout: 200 * time.Millisecond, ResponseHeaderTimeout: 200 * time.Millisecond, HTTP2: tt.http2}
			u := mustNew(t, cfg)
			e := newEnv()
			rec := httptest.NewRecorder()
			start := time.Now()
			u.ServeHTTP(rec, e.request("GET", "https://gw.example/x", ""))
			if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
				t.Errorf("took %v, want about 200ms", d)
			}
			wantProblem(t, rec, http.StatusGatewayTimeout, ReasonTimeout)
			e.onlyEvent(t, ReasonTimeout)
		})
	}
}

// TestClientCanceled: a request the client abandoned is not answered nor
// counted as an upstream failure.
func TestClientCanceled(t *testing.T) {
	p := newPKI(t)
	arrived, release := make(chan struct{}), make(chan struct{})
	b := newBackend(t, p.good.TLS(), nil, func(http.ResponseWriter, *http.Request) {
		close(arrived)
		<-release
	})
	t.Cleanup(func() { close(release) })
	u := mustNew(t, p.config(t, b))
	e := newEnv()
	r := e.request("GET", "https://gw.example/x", "")
	ctx, cancel := context.WithCancel(r.Context())
	r = r.WithContext(ctx)
	go func() { <-arrived; cancel() }()
	rec := httptest.NewRecorder()
	u.ServeHTTP(rec, r)
	if rec.Body.Len() != 0 || len(e.sink.Events()) != 0 {
		t.Fatalf("answered an abandoned request: %d %q, events %+v", rec.Code, rec.Body, e.sink.Events())
	}
}

func TestPlaintextUpstream(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get("X-Forwarded-Proto"))
	}))
	t.Cleanup(srv.Close)
	target, _ := url.Parse(srv.URL)
	u := mustNew(t, UpstreamConfig{Name: "legacy", URL: target, AllowPlaintext: true})
	rec := httptest.NewRecorder()
	u.ServeHTTP(rec, newEnv().request("GET", "https://gw.example/x", ""))
	if rec.Code != http.StatusOK || rec.Body.String() != "https" {
		t.Fatalf("got %d %q", rec.Code, rec.Body)
	}
}

func pinOfDER(t testing.TB, der []byte) string {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return pki.SPKIPin(c).String()
}
