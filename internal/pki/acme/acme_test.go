package acme_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/pki"
	"github.com/wardengw/warden/internal/pki/acme"
)

// TestObtain gets certificates from Pebble with one challenge type at a
// time, the other one made impossible (Pebble's VA is pointed at a closed
// port for it), and checks that the gateway then serves them, chained to
// Pebble's issuing root.
func TestObtain(t *testing.T) {
	names := []string{"app." + testDomain, "api." + testDomain}
	tests := []struct {
		challenge acme.Challenge
	}{
		{acme.HTTP01},
		{acme.TLSALPN01},
	}
	for _, tt := range tests {
		t.Run(string(tt.challenge), func(t *testing.T) {
			g := listen(t)
			closed := closedPort(t)
			httpPort, tlsPort := port(g.httpLn), closed
			if tt.challenge == acme.TLSALPN01 {
				httpPort, tlsPort = closed, port(g.tlsLn)
			}
			p := startPebble(t, httpPort, tlsPort, 0)
			cfg := g.config(t, p, names...)
			cfg.Challenges = []acme.Challenge{tt.challenge}
			g.serve(t, cfg)

			t0 := time.Now()
			if err := g.m.Start(startCtx(t)); err != nil {
				t.Fatalf("Start: %v", err)
			}
			t.Logf("%s: %d certificates obtained in %v (%v per certificate)", tt.challenge, len(names),
				time.Since(t0), time.Since(t0)/time.Duration(len(names)))

			for _, n := range names {
				leaf := g.handshake(t, n, p.IssuingRoots()) // verified against Pebble's root
				if err := leaf.VerifyHostname(n); err != nil {
					t.Errorf("served certificate for %s: %v", n, err)
				}
				if _, ok := g.m.Certificate(n); !ok {
					t.Errorf("Certificate(%s) missing", n)
				}
				// CertificateFile names the chain as storage holds it (what `warden certs` reads).
				stored, err := pki.ReadCertificates(acme.CertificateFile(cfg.StorageDir, cfg.DirectoryURL, n))
				if err != nil || stored[0].SerialNumber.Cmp(leaf.SerialNumber) != 0 {
					t.Errorf("CertificateFile(%s): %v", n, err)
				}
			}
			if got := len(g.m.Certificates()); got != len(names) {
				t.Errorf("Certificates() = %d, want %d", got, len(names))
			}
			if got := p.Orders(); got != int64(len(names)) {
				t.Errorf("orders = %d, want %d", got, len(names))
			}
			acmeHandshakes := counter(t, g, "acme_challenge")
			switch tt.challenge {
			case acme.HTTP01:
				if n := g.http01Served(); n < len(names) {
					t.Errorf("http-01 answered %d times, want at least %d", n, len(names))
				}
				if acmeHandshakes != 0 {
					t.Errorf("%v tls-alpn-01 handshakes with http-01 only", acmeHandshakes)
				}
			case acme.TLSALPN01:
				if acmeHandshakes < float64(len(names)) {
					t.Errorf("tls-alpn-01 answered %v times, want at least %d", acmeHandshakes, len(names))
				}
				if n := g.http01Served(); n != 0 {
					t.Errorf("http-01 answered %d times with tls-alpn-01 only", n)
				}
			}
			obtained := 0
			for _, e := range g.sink.Events() {
				if e.Type == acme.EventObtained {
					obtained++
				}
			}
			if obtained != len(names) {
				t.Errorf("%d %s audit events, want %d", obtained, acme.EventObtained, len(names))
			}
		})
	}
}

// TestNoUnrequestedChallenges: challenge requests that match nothing
// pending are refused, other plain-HTTP requests still redirect, and
// neither a foreign SNI nor an acme-tls/1 ClientHello makes the gateway
// order anything.
func TestNoUnrequestedChallenges(t *testing.T) {
	name := "app." + testDomain
	g := listen(t)
	p := startPebble(t, port(g.httpLn), port(g.tlsLn), 0)
	g.serve(t, g.config(t, p, name))
	if err := g.m.Start(startCtx(t)); err != nil {
		t.Fatalf("Start: %v", err)
	}
	orders := p.Orders()

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	httpTests := []struct {
		host, path string
		want       int
	}{
		{name, "/.well-known/acme-challenge/unknown-token", http.StatusNotFound},
		{"other." + testDomain, "/.well-known/acme-challenge/unknown-token", http.StatusNotFound},
		{name, "/.well-known/acme-challenge/", http.StatusNotFound},
		{name, "/some/page", http.StatusPermanentRedirect},
	}
	for _, tt := range httpTests {
		req, _ := http.NewRequest(http.MethodGet, "http://"+g.httpLn.Addr().String()+tt.path, nil)
		req.Host = tt.host
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("GET %s%s = %d, want %d", tt.host, tt.path, resp.StatusCode, tt.want)
		}
	}

	tlsTests := []struct {
		sni     string
		protos  []string
		wantErr bool
	}{
		{name, []string{acme.ACMETLS1}, true},                  // no pending challenge
		{"other." + testDomain, []string{acme.ACMETLS1}, true}, // not configured
		{"other." + testDomain, nil, false},                    // foreign SNI: the default certificate, no order
	}
	for _, tt := range tlsTests {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", g.tlsLn.Addr().String(),
			&tls.Config{ServerName: tt.sni, NextProtos: tt.protos, RootCAs: p.IssuingRoots(), InsecureSkipVerify: tt.sni != name}) //nolint:gosec // the foreign SNI gets the configured name's certificate
		if (err != nil) != tt.wantErr {
			t.Errorf("handshake sni=%s alpn=%v: err = %v, want error %v", tt.sni, tt.protos, err, tt.wantErr)
		}
		if err == nil {
			c.Close()
		}
	}
	if got := p.Orders(); got != orders {
		t.Fatalf("orders went from %d to %d without any configured name needing one", orders, got)
	}
}

// TestStartErrors: Start fails with a clear error, and no certificate,
// when the CA is unreachable, cannot be verified, or refuses the name.
func TestStartErrors(t *testing.T) {
	name := "app." + testDomain
	tests := []struct {
		name    string
		mutate  func(*testing.T, *acme.Config, *pebble)
		wantErr string
	}{
		{name: "unreachable", mutate: func(t *testing.T, c *acme.Config, _ *pebble) {
			c.DirectoryURL = "https://127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/dir"
		}, wantErr: "connection refused"},
		{name: "directory not verified", mutate: func(_ *testing.T, c *acme.Config, _ *pebble) { c.CARoots = nil },
			wantErr: "certificate signed by unknown authority"},
		{name: "CA refuses the name", mutate: func(_ *testing.T, _ *acme.Config, p *pebble) {
			p.Block(name)
		}, wantErr: "forbidden by policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := listen(t)
			p := startPebble(t, port(g.httpLn), port(g.tlsLn), 0)
			cfg := g.config(t, p, name)
			tt.mutate(t, &cfg, p)
			g.serve(t, cfg)
			err := g.m.Start(startCtx(t))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), name) {
				t.Fatalf("Start = %v, want an error naming %s and containing %q", err, name, tt.wantErr)
			}
			if _, ok := g.m.Certificate(name); ok {
				t.Fatal("a certificate is in use after a failed Start")
			}
		})
	}
}

// TestStartFailingNameDoesNotBlockOthers: with a name the CA refuses
// listed first, Start still obtains the certificate of the name after it,
// and its error names only the refused one; a second Start (the gateway's
// retry) orders only the name that failed.
func TestStartFailingNameDoesNotBlockOthers(t *testing.T) {
	bad, good := "bad."+testDomain, "good."+testDomain
	g := listen(t)
	p := startPebble(t, port(g.httpLn), port(g.tlsLn), 0)
	p.Block(bad)
	cfg := g.config(t, p, bad, good)
	g.serve(t, cfg)
	err := g.m.Start(startCtx(t))
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "forbidden by policy") || strings.Contains(err.Error(), good) {
		t.Fatalf("Start = %v, want an error naming %s only", err, bad)
	}
	if _, ok := g.m.Certificate(bad); ok {
		t.Error("a certificate for the refused name")
	}
	if _, ok := g.m.Certificate(good); !ok {
		t.Fatalf("no certificate for %s after %s was refused", good, bad)
	}
	if leaf := g.handshake(t, good, p.IssuingRoots()); leaf.VerifyHostname(good) != nil {
		t.Errorf("served certificate for %s: %v", good, leaf.DNSNames)
	}
	orders := p.Orders()
	if err := g.m.Start(startCtx(t)); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("second Start = %v, want the refusal of %s again", err, bad)
	}
	if got := p.Orders() - orders; got > 1 {
		t.Errorf("the retry placed %d orders, want at most 1 (for %s only)", got, bad)
	}
}

// TestRenewalFailureKeepsCertificate: with the CA gone, a forced renewal
// fails, says so in the audit log, and the old certificate keeps being
// served.
func TestRenewalFailureKeepsCertificate(t *testing.T) {
	name := "app." + testDomain
	g := listen(t)
	p := startPebble(t, port(g.httpLn), port(g.tlsLn), 0)
	g.serve(t, g.config(t, p, name))
	if err := g.m.Start(startCtx(t)); err != nil {
		t.Fatalf("Start: %v", err)
	}
	before := g.handshake(t, name, p.IssuingRoots())
	roots := p.IssuingRoots()
	p.Stop()

	err := g.m.RenewNow(startCtx(t))
	if err == nil || !strings.Contains(err.Error(), name) {
		t.Fatalf("RenewNow with the CA down = %v, want an error naming %s", err, name)
	}
	after := g.handshake(t, name, roots)
	if after.SerialNumber.Cmp(before.SerialNumber) != 0 {
		t.Fatalf("served serial changed from %x to %x after a failed renewal", before.SerialNumber, after.SerialNumber)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := g.sink.Wait(ctx, func(e audit.Event) bool { return e.Type == acme.EventFailed }); err != nil {
		t.Fatalf("no %s audit event: %v", acme.EventFailed, err)
	}
}

// TestConfigValidate covers the refusals of bad configurations.
func TestConfigValidate(t *testing.T) {
	good := acme.Config{
		DirectoryURL: "https://acme.example/dir", Email: "ops@example.org", AgreeTerms: true,
		StorageDir: "/var/lib/warden/acme", Names: []string{"api.example.org"},
		HTTPAddress: "0.0.0.0:80", TLSAddress: "0.0.0.0:443",
	}
	tests := []struct {
		name    string
		mutate  func(*acme.Config)
		wantErr string
	}{
		{"valid", func(*acme.Config) {}, ""},
		{"http directory", func(c *acme.Config) { c.DirectoryURL = "http://acme.example/dir" }, "must be an https:// URL"},
		{"no email", func(c *acme.Config) { c.Email = "" }, "email: required"},
		{"bad email", func(c *acme.Config) { c.Email = "Ops <ops@example.org>" }, "not a plain e-mail address"},
		{"terms not agreed", func(c *acme.Config) { c.AgreeTerms = false }, "agree_terms"},
		{"bad roots", func(c *acme.Config) { c.CARoots = []byte("junk") }, "no PEM certificate"},
		{"no names", func(c *acme.Config) { c.Names = nil }, "at least one name"},
		{"wildcard", func(c *acme.Config) { c.Names = []string{"*.example.org"} }, "dns-01"},
		{"IP", func(c *acme.Config) { c.Names = []string{"192.0.2.1"} }, "IP addresses"},
		{"uppercase", func(c *acme.Config) { c.Names = []string{"API.example.org"} }, "not a lowercase DNS label"},
		{"empty label", func(c *acme.Config) { c.Names = []string{"a..example"} }, "not a lowercase DNS label"},
		{"unknown challenge", func(c *acme.Config) { c.Challenges = []acme.Challenge{"dns-01"} }, "not one of"},
		{"http-01 without listener", func(c *acme.Config) { c.HTTPAddress = "" }, "http-01 needs"},
		{"tls-alpn-01 only needs no HTTP listener", func(c *acme.Config) {
			c.HTTPAddress, c.Challenges = "", []acme.Challenge{acme.TLSALPN01}
		}, ""},
		{"bad key type", func(c *acme.Config) { c.KeyType = "ed25519" }, "key type"},
		{"bad ratio", func(c *acme.Config) { c.RenewalRatio = 1 }, "renewal ratio"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return p
}

// counter returns warden_tls_handshakes_total{result=result}.
func counter(t *testing.T, g *gateway, result string) float64 {
	t.Helper()
	mfs, err := g.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != "warden_tls_handshakes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// TestBackgroundRenewal: certmagic's maintenance renews a certificate that
// entered its renewal window, without being asked, and the new one is
// served. Pebble issues 30-second certificates; with a renewal ratio of
// 0.9 they are due 3 seconds after issuance.
func TestBackgroundRenewal(t *testing.T) {
	name := "app." + testDomain
	g := listen(t)
	p := startPebble(t, port(g.httpLn), port(g.tlsLn), 30*time.Second)
	cfg := g.config(t, p, name)
	cfg.RenewalRatio = 0.9
	g.serve(t, acme.WithRenewCheckInterval(cfg, 100*time.Millisecond))
	ctx := startCtx(t)
	if err := g.m.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	first := g.handshake(t, name, p.IssuingRoots())
	for changes := 0; changes < 2; { // the obtain at Start, then a renewal
		select {
		case <-g.changes:
			changes++
		case <-ctx.Done():
			t.Fatalf("no renewal by maintenance (orders: %d)", p.Orders())
		}
	}
	if got := g.handshake(t, name, p.IssuingRoots()); got.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("still serving the first certificate after a renewal")
	}
}

// TestListenHost: both challenges need the two listeners on one host;
// every interface counts as one host however it is spelled.
func TestListenHost(t *testing.T) {
	for _, tt := range []struct {
		http, tls, want string
		ok              bool
	}{
		{"127.0.0.1:80", "127.0.0.1:443", "127.0.0.1", true},
		{":80", "0.0.0.0:443", "", true},
		{"[::]:80", ":443", "", true},
		{"127.0.0.1:80", "0.0.0.0:443", "", false},
		{"10.0.0.1:80", "10.0.0.2:443", "", false},
		{"no-port", ":443", "", false},
	} {
		got, err := acme.ListenHost(tt.http, tt.tls)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ListenHost(%q, %q) = %q, %v; want %q, ok %v", tt.http, tt.tls, got, err, tt.want, tt.ok)
		}
	}
}
