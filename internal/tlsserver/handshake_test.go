package tlsserver_test

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/tlsserver"
)

// TestHandshakePolicy runs real clients against a real listener: what the
// policy forbids fails with the right audit reason, what it allows succeeds
// with the expected version, suite and key exchange.
func TestHandshakePolicy(t *testing.T) {
	p := newPKI(t)
	type client func(*tls.Config)
	tls12 := func(suites ...uint16) client {
		return func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12; c.CipherSuites = suites }
	}
	only := func(v uint16) client { return func(c *tls.Config) { c.MinVersion, c.MaxVersion = v, v } }
	tests := []struct {
		name        string
		profile     tlsserver.Profile
		client      client
		wantReason  string // "" means the handshake must succeed
		wantVersion uint16
		wantSuite   uint16
		wantCurve   tls.CurveID
	}{
		{name: "TLS 1.0 refused", client: only(tls.VersionTLS10), wantReason: tlsserver.ReasonProtocolVersion},
		{name: "TLS 1.1 refused", client: only(tls.VersionTLS11), wantReason: tlsserver.ReasonProtocolVersion},
		{name: "TLS 1.2 CBC only refused", client: tls12(
			tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
			tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA),
			wantReason: tlsserver.ReasonNoSharedCipher},
		{name: "TLS 1.2 static RSA refused", client: tls12(
			tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_RSA_WITH_AES_128_CBC_SHA),
			wantReason: tlsserver.ReasonNoSharedCipher},
		{name: "TLS 1.2 3DES refused", client: tls12(
			tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA),
			wantReason: tlsserver.ReasonNoSharedCipher},
		{name: "TLS 1.2 ECDHE-RSA AES-128-GCM", client: tls12(tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
			wantVersion: tls.VersionTLS12, wantSuite: tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256},
		{name: "TLS 1.2 ECDHE-ECDSA AES-256-GCM", client: tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
			wantVersion: tls.VersionTLS12, wantSuite: tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384},
		{name: "TLS 1.2 ECDHE-ECDSA ChaCha20", client: tls12(tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
			wantVersion: tls.VersionTLS12, wantSuite: tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
		{name: "TLS 1.3 default client gets X25519MLKEM768", client: func(*tls.Config) {},
			wantVersion: tls.VersionTLS13, wantCurve: tls.X25519MLKEM768},
		{name: "TLS 1.3 client with only P-384 refused", client: func(c *tls.Config) {
			c.MinVersion = tls.VersionTLS13
			c.CurvePreferences = []tls.CurveID{tls.CurveP384}
		}, wantReason: tlsserver.ReasonNoSharedGroup},
		{name: "modern refuses TLS 1.2", profile: tlsserver.Modern, client: tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
			wantReason: tlsserver.ReasonProtocolVersion},
		{name: "modern accepts TLS 1.3", profile: tlsserver.Modern, client: func(*tls.Config) {},
			wantVersion: tls.VersionTLS13, wantCurve: tls.X25519MLKEM768},
		{name: "ALPN mismatch refused", client: func(c *tls.Config) { c.NextProtos = []string{"spdy/3.1"} },
			wantReason: tlsserver.ReasonNoApplicationProtocol},
	}
	servers := map[tlsserver.Profile]*harness{}
	for _, prof := range []tlsserver.Profile{tlsserver.Intermediate, tlsserver.Modern} {
		servers[prof] = start(t, tlsserver.Settings{Profile: prof, Certificates: certs(p.ecdsaA, p.rsaA)}, tlsserver.ListenerOptions{})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prof := tt.profile
			if prof == "" {
				prof = tlsserver.Intermediate
			}
			h := servers[prof]
			cfg := p.clientConfig()
			tt.client(cfg)
			if tt.wantReason != "" {
				local, err := dialLocal(t, h.addr, cfg)
				if err == nil {
					t.Fatal("handshake succeeded, want failure")
				}
				e := h.waitFailure(t, local)
				if e.Reason != tt.wantReason {
					t.Fatalf("reason = %q (%s), want %q", e.Reason, e.Detail, tt.wantReason)
				}
				if e.Severity != "warning" || e.Fields["sni"] != "a.example" {
					t.Errorf("event = %+v, want severity warning and sni a.example", e)
				}
				return
			}
			c, err := dial(t, h.addr, cfg)
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer c.Close()
			st := c.ConnectionState()
			if st.Version != tt.wantVersion {
				t.Errorf("version = %s, want %s", tls.VersionName(st.Version), tls.VersionName(tt.wantVersion))
			}
			if tt.wantSuite != 0 && st.CipherSuite != tt.wantSuite {
				t.Errorf("suite = %s, want %s", tls.CipherSuiteName(st.CipherSuite), tls.CipherSuiteName(tt.wantSuite))
			}
			if tt.wantCurve != 0 && st.CurveID != tt.wantCurve {
				t.Errorf("curve = %v, want %v", st.CurveID, tt.wantCurve)
			}
			if st.NegotiatedProtocol != "" {
				t.Errorf("ALPN = %q for a client offering none", st.NegotiatedProtocol)
			}
			labels := map[string]string{"version": tlsserver.VersionName(st.Version), "cipher": tlsserver.CipherName(st.CipherSuite), "result": "ok"}
			if n := counter(t, h.metrics, "warden_tls_handshakes_total", labels); n < 1 {
				t.Errorf("handshakes%v = %v, want >= 1", labels, n)
			}
		})
	}
	// Every refusal was counted as failed, labelled with the best version offered.
	if n := counter(t, servers[tlsserver.Intermediate].metrics, "warden_tls_handshakes_total",
		map[string]string{"version": "TLS 1.0", "cipher": "none", "result": "failed"}); n != 1 {
		t.Errorf("failed TLS 1.0 handshakes = %v, want 1", n)
	}
}

// TestGODEBUGControl shows the godebug_test.go directives are in effect: a
// tls.Config that leaves the fields unset accepts what the Server refuses.
// Without this, TestHandshakePolicy could pass only because Go's defaults
// are already strict.
func TestGODEBUGControl(t *testing.T) {
	p := newPKI(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: certs(p.rsaA)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	for _, cfg := range []*tls.Config{
		{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10},
		{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}},
		{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA}},
	} {
		cfg.RootCAs, cfg.ServerName = p.root.Pool(), "a.example"
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), cfg)
		if err != nil {
			t.Fatalf("unrestricted server refused %s/%v: %v; GODEBUG directives not in effect?",
				tls.VersionName(cfg.MaxVersion), cfg.CipherSuites, err)
		}
		c.Close()
	}
}

// TestClientAuth: mTLS failures get distinct reasons.
func TestClientAuth(t *testing.T) {
	p := newPKI(t)
	other := pkitest.NewRootCA(t, "Other Root", pkitest.Options{})
	good := p.root.Issue(t, pkitest.Options{CommonName: "client"})
	expired := p.root.Issue(t, pkitest.Options{CommonName: "old", NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	stranger := other.Issue(t, pkitest.Options{CommonName: "stranger"})
	h := start(t, tlsserver.Settings{
		Certificates: certs(p.ecdsaA),
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.root.Pool(),
	}, tlsserver.ListenerOptions{})
	tests := []struct {
		name       string
		leaf       *pkitest.Leaf
		maxVersion uint16
		wantReason string
	}{
		{"valid", good, 0, ""},
		{"none TLS 1.3", nil, 0, tlsserver.ReasonNoClientCertificate},
		{"none TLS 1.2", nil, tls.VersionTLS12, tlsserver.ReasonNoClientCertificate},
		{"unknown CA", stranger, 0, tlsserver.ReasonUnknownAuthority},
		{"expired", expired, 0, tlsserver.ReasonExpiredCertificate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := p.clientConfig()
			cfg.MaxVersion = tt.maxVersion
			if tt.leaf != nil {
				// Send it even when the server's acceptable CAs don't list its issuer.
				c := tt.leaf.TLS()
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
			}
			local, err := dialLocal(t, h.addr, cfg)
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("valid client refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("handshake succeeded, want failure")
			}
			if e := h.waitFailure(t, local); e.Reason != tt.wantReason {
				t.Fatalf("reason = %q (%s), want %q", e.Reason, e.Detail, tt.wantReason)
			}
		})
	}
}

// TestCertificateSelection: Go's choice among several certificates, by SNI
// and by what the client can verify, whatever the configured order.
func TestCertificateSelection(t *testing.T) {
	p := newPKI(t)
	orders := map[string][]*pkitest.Leaf{
		"RSA first":   {p.rsaA, p.ecdsaA, p.ecdsaB},
		"ECDSA first": {p.ecdsaA, p.rsaA, p.ecdsaB},
	}
	tests := []struct {
		name   string
		client func(*tls.Config)
		want   *pkitest.Leaf
	}{
		{"ECDSA-only TLS 1.2 client gets ECDSA", func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
		}, p.ecdsaA},
		{"RSA-only TLS 1.2 client gets RSA", func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}
		}, p.rsaA},
		{"SNI b.example", func(c *tls.Config) { c.ServerName = "b.example" }, p.ecdsaB},
		{"SNI b.example TLS 1.2", func(c *tls.Config) { c.ServerName = "b.example"; c.MaxVersion = tls.VersionTLS12 }, p.ecdsaB},
	}
	for oname, order := range orders {
		h := start(t, tlsserver.Settings{Certificates: certs(order...)}, tlsserver.ListenerOptions{})
		for _, tt := range tests {
			t.Run(oname+"/"+tt.name, func(t *testing.T) {
				cfg := p.clientConfig()
				tt.client(cfg)
				c, err := dial(t, h.addr, cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if got, want := serialOf(c), tt.want.Cert.SerialNumber.String(); got != want {
					t.Errorf("got certificate %s (%s), want %s", got, c.ConnectionState().PeerCertificates[0].PublicKeyAlgorithm, want)
				}
			})
		}
		t.Run(oname+"/unknown SNI gets the first certificate", func(t *testing.T) {
			cfg := p.clientConfig()
			cfg.ServerName = "unknown.example"
			cfg.InsecureSkipVerify = true // to look at the certificate the client would refuse
			c, err := dial(t, h.addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got, want := serialOf(c), order[0].Cert.SerialNumber.String(); got != want {
				t.Errorf("got certificate %s, want the first one %s", got, want)
			}
		})
	}
}
