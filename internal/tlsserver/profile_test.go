package tlsserver_test

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"

	"github.com/wardengw/warden/internal/tlsserver"
)

func TestParseProfile(t *testing.T) {
	for in, want := range map[string]tlsserver.Profile{
		"": tlsserver.Intermediate, "modern": tlsserver.Modern, " Intermediate ": tlsserver.Intermediate,
	} {
		if got, err := tlsserver.ParseProfile(in); err != nil || got != want {
			t.Errorf("ParseProfile(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := tlsserver.ParseProfile("old"); err == nil {
		t.Error(`ParseProfile("old") succeeded`)
	}
	if tlsserver.Modern.MinVersion() != tls.VersionTLS13 || tlsserver.Intermediate.MinVersion() != tls.VersionTLS12 {
		t.Error("MinVersion mismatch")
	}
}

func TestCipherSuiteByName(t *testing.T) {
	tests := []struct {
		name    string
		want    uint16
		wantErr string
	}{
		{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, ""},
		{"tls_ecdhe_rsa_with_aes_256_gcm_sha384", tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, ""},
		{"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, ""},
		{"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, ""}, // Go's legacy name
		{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 0, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: CBC mode is not allowed (no AEAD)"},
		{"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", 0, "CBC mode is not allowed"},
		{"TLS_RSA_WITH_AES_128_GCM_SHA256", 0, "TLS_RSA_WITH_AES_128_GCM_SHA256: static RSA key exchange has no forward secrecy"},
		{"TLS_RSA_WITH_AES_128_CBC_SHA", 0, "no forward secrecy; CBC mode"},
		{"TLS_ECDHE_RSA_WITH_RC4_128_SHA", 0, "RC4 is broken"},
		{"TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", 0, "3DES"},
		{"TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", 0, "ECDHE only"},
		{"TLS_ECDHE_ECDSA_WITH_NULL_SHA", 0, "NULL cipher"},
		{"TLS_DH_anon_WITH_AES_128_GCM_SHA256", 0, "anonymous"},
		{"TLS_AES_128_GCM_SHA256", 0, "fixed by the protocol"},
		{"TLS_CHACHA20_POLY1305_SHA256", 0, "fixed by the protocol"},
		{"ECDHE-ECDSA-AES128-GCM-SHA256", 0, "unknown cipher suite"},
		{"", 0, "unknown cipher suite"},
	}
	for _, tt := range tests {
		got, err := tlsserver.CipherSuiteByName(tt.name)
		if tt.wantErr == "" {
			if err != nil || got != tt.want {
				t.Errorf("CipherSuiteByName(%q) = %#04x, %v; want %#04x", tt.name, got, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("CipherSuiteByName(%q) error = %v, want it to contain %q", tt.name, err, tt.wantErr)
		}
	}
	// Every suite Go knows is either allowed or refused with a reason.
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		_, err := tlsserver.CipherSuiteByName(s.Name)
		if err != nil && strings.Contains(err.Error(), "unknown") {
			t.Errorf("%s refused without a reason: %v", s.Name, err)
		}
	}
}

func FuzzCipherSuiteByName(f *testing.F) {
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		f.Add(s.Name)
	}
	for _, s := range []string{"", "TLS_", "TLS__WITH_", "TLS_RSA_WITH_", "_WITH_CBC_", "tls_ecdhe_rsa_with_aes_128_gcm_sha256 ", "\x00", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		id, err := tlsserver.CipherSuiteByName(name)
		if err != nil {
			if id != 0 || err.Error() == "" {
				t.Fatalf("error %v with id %#04x", err, id)
			}
			return
		}
		if !slices.Contains(tlsserver.DefaultCipherSuites(), id) {
			t.Fatalf("%q accepted as %#04x, which the policy does not allow", name, id)
		}
		if back, err := tlsserver.CipherSuiteByName(tlsserver.CipherName(id)); err != nil || back != id {
			t.Fatalf("round trip of %#04x: %#04x, %v", id, back, err)
		}
	})
}

func TestCurveByName(t *testing.T) {
	for name, want := range map[string]tls.CurveID{
		"X25519MLKEM768": tls.X25519MLKEM768, "x25519": tls.X25519, "P-256": tls.CurveP256, "P256": tls.CurveP256,
		"secp256r1": tls.CurveP256, "P-384": tls.CurveP384, "SecP256r1MLKEM768": tls.SecP256r1MLKEM768,
	} {
		if got, err := tlsserver.CurveByName(name); err != nil || got != want {
			t.Errorf("CurveByName(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	for name, wantErr := range map[string]string{
		"P-224": "less than 128-bit", "secp224r1": "less than 128-bit", "ffdhe2048": "finite-field",
		"X448": "not supported", "brainpoolP256r1": "unknown",
	} {
		if _, err := tlsserver.CurveByName(name); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("CurveByName(%q) error = %v, want %q", name, err, wantErr)
		}
	}
	for _, c := range tlsserver.DefaultCurves() {
		if _, err := tlsserver.CurveByName(c.String()); err != nil && c != tls.CurveP256 {
			t.Errorf("default curve %v not accepted by name: %v", c, err)
		}
	}
}

func TestNames(t *testing.T) {
	if got := tlsserver.VersionName(tls.VersionTLS13); got != "TLS 1.3" {
		t.Errorf("VersionName(1.3) = %q", got)
	}
	if got := tlsserver.VersionName(0x0a0a); got != "unknown" { // GREASE must not create label values
		t.Errorf("VersionName(GREASE) = %q", got)
	}
	if got := tlsserver.CipherName(tls.TLS_AES_128_GCM_SHA256); got != "TLS_AES_128_GCM_SHA256" {
		t.Errorf("CipherName = %q", got)
	}
	if got := tlsserver.CipherName(tls.TLS_RSA_WITH_RC4_128_SHA); got != "TLS_RSA_WITH_RC4_128_SHA" {
		t.Errorf("CipherName(insecure) = %q", got)
	}
	if got := tlsserver.CipherName(0xbeef); got != "unknown" {
		t.Errorf("CipherName(0xbeef) = %q", got)
	}
}
