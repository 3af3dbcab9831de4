package tlsserver_test

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/tlsserver"
)

// TestTicketRotation: a ticket issued before one rotation still resumes;
// one issued before two rotations does not (full handshake instead).
func TestTicketRotation(t *testing.T) {
	p := newPKI(t)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			h := start(t, tlsserver.Settings{Certificates: certs(p.ecdsaA)}, tlsserver.ListenerOptions{})
			connect := func(cache tls.ClientSessionCache) bool {
				t.Helper()
				cfg := p.clientConfig()
				cfg.MaxVersion = v
				cfg.ClientSessionCache = cache
				c, err := dial(t, h.addr, cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				return c.ConnectionState().DidResume
			}
			once, twice := tls.NewLRUClientSessionCache(4), tls.NewLRUClientSessionCache(4)
			if connect(once) || connect(twice) {
				t.Fatal("first connections resumed")
			}
			if !connect(tls.ClientSessionCache(once)) {
				// Sanity: resumption works at all; the ticket is reused below.
				t.Fatal("no resumption without rotation")
			}
			h.srv.RotateTicketKeys()
			if !connect(once) {
				t.Error("ticket from before one rotation did not resume")
			}
			h.srv.RotateTicketKeys()
			if connect(twice) {
				t.Error("ticket from before two rotations resumed")
			}
		})
	}
}

// TestHotUpdate: Update changes the certificate for new handshakes while an
// open connection keeps working; a bad update changes nothing.
func TestHotUpdate(t *testing.T) {
	p := newPKI(t)
	h := start(t, tlsserver.Settings{Certificates: certs(p.ecdsaA)}, tlsserver.ListenerOptions{})
	old, err := dial(t, h.addr, p.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := h.srv.Update(tlsserver.Settings{Certificates: certs(p.ecdsa2)}); err != nil {
		t.Fatal(err)
	}
	fresh, err := dial(t, h.addr, p.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if got, want := serialOf(fresh), p.ecdsa2.Cert.SerialNumber.String(); got != want {
		t.Errorf("new connection got %s, want reloaded %s", got, want)
	}
	if err := roundTrip(old); err != nil {
		t.Errorf("open connection broken by Update: %v", err)
	}
	if got, want := serialOf(old), p.ecdsaA.Cert.SerialNumber.String(); got != want {
		t.Errorf("open connection changed certificate")
	}

	weak := pkitest.SelfSigned(t, pkitest.Options{DNSNames: []string{"a.example"}, KeyType: pkitest.RSA1024})
	err = h.srv.Update(tlsserver.Settings{Certificates: certs(weak)})
	if err == nil || !strings.Contains(err.Error(), "1024 bits") {
		t.Fatalf("Update(RSA-1024) = %v, want refusal naming the key size", err)
	}
	after, err := dial(t, h.addr, p.clientConfig())
	if err != nil {
		t.Fatalf("after failed Update: %v", err)
	}
	defer after.Close()
	if got, want := serialOf(after), p.ecdsa2.Cert.SerialNumber.String(); got != want {
		t.Errorf("failed Update changed the certificate")
	}
}

func TestSettingsValidate(t *testing.T) {
	p := newPKI(t)
	good := certs(p.ecdsaA)
	weak := pkitest.SelfSigned(t, pkitest.Options{DNSNames: []string{"a.example"}, KeyType: pkitest.RSA1024})
	tests := []struct {
		name string
		s    tlsserver.Settings
		want []string // substrings of the error; none means valid
	}{
		{"defaults", tlsserver.Settings{Certificates: good}, nil},
		{"modern", tlsserver.Settings{Profile: tlsserver.Modern, Certificates: good}, nil},
		{"mTLS", tlsserver.Settings{Certificates: good, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.root.Pool()}, nil},
		{"no certificates", tlsserver.Settings{}, []string{"no certificates"}},
		{"unknown profile", tlsserver.Settings{Profile: "old", Certificates: good}, []string{`unknown TLS profile "old"`}},
		{"CBC suite", tlsserver.Settings{Certificates: good, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}},
			[]string{"CBC mode is not allowed"}},
		{"static RSA suite", tlsserver.Settings{Certificates: good, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}},
			[]string{"no forward secrecy"}},
		{"unknown suite id", tlsserver.Settings{Certificates: good, CipherSuites: []uint16{0xfefe}}, []string{"0xfefe: unknown"}},
		{"suites with modern", tlsserver.Settings{Profile: tlsserver.Modern, Certificates: good,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, []string{"TLS 1.3 only"}},
		{"P-224 curve id", tlsserver.Settings{Certificates: good, Curves: []tls.CurveID{21}}, []string{"not allowed"}},
		{"weak certificate", tlsserver.Settings{Certificates: certs(weak)}, []string{"certificate 0: RSA key of 1024 bits"}},
		{"requested client certs, verified by the route", tlsserver.Settings{Certificates: good, ClientAuth: tls.RequestClientCert}, nil},
		{"unverified client certs", tlsserver.Settings{Certificates: good, ClientAuth: tls.RequireAnyClientCert},
			[]string{"without verifying"}},
		{"verify without CAs", tlsserver.Settings{Certificates: good, ClientAuth: tls.VerifyClientCertIfGiven},
			[]string{"needs client CAs"}},
		{"negative rotation", tlsserver.Settings{Certificates: good, TicketRotation: -time.Second}, []string{"must not be negative"}},
		{"every error at once", tlsserver.Settings{Profile: "x", Curves: []tls.CurveID{21}},
			[]string{"unknown TLS profile", "not allowed", "no certificates"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate = nil, want error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, want it to contain %q", err, w)
				}
			}
			if _, nerr := tlsserver.NewServer(tt.s); nerr == nil {
				t.Error("NewServer accepted settings Validate refused")
			}
		})
	}
}

// TestSettingsCopied: mutating the caller's slices after Update does not
// reach the live config.
func TestSettingsCopied(t *testing.T) {
	p := newPKI(t)
	suites := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
	srv, err := tlsserver.NewServer(tlsserver.Settings{Certificates: certs(p.ecdsaA), CipherSuites: suites})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	suites[0] = tls.TLS_RSA_WITH_AES_128_CBC_SHA
	cfg, err := srv.TLSConfig().GetConfigForClient(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CipherSuites[0] != tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 {
		t.Errorf("live config follows caller's slice: %v", cfg.CipherSuites)
	}
	if cfg.MinVersion != tls.VersionTLS12 || cfg.SessionTicketsDisabled || len(cfg.CurvePreferences) != 3 {
		t.Errorf("config = min %x, tickets disabled %v, curves %v", cfg.MinVersion, cfg.SessionTicketsDisabled, cfg.CurvePreferences)
	}
}
