package mtls_test

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"

	"github.com/wardengw/warden/internal/auth/mtls"
)

func TestSPIFFEMatch(t *testing.T) {
	tests := []struct {
		pattern, id string
		want        bool
	}{
		{"spiffe://acme.example/billing/api", "spiffe://acme.example/billing/api", true},
		{"spiffe://acme.example/billing/api", "spiffe://acme.example/billing/api2", false},
		{"spiffe://acme.example/billing/*", "spiffe://acme.example/billing/api", true},
		{"spiffe://acme.example/billing/*", "spiffe://acme.example/billing", false},
		{"spiffe://acme.example/billing/*", "spiffe://acme.example/billing/api/v2", false},
		{"spiffe://acme.example/*/api", "spiffe://acme.example/billing/api", true},
		{"spiffe://acme.example/billing/**", "spiffe://acme.example/billing/api/v2/x", true},
		{"spiffe://acme.example/billing/**", "spiffe://acme.example/billing", false},
		{"spiffe://acme.example/**", "spiffe://acme.example/x", true},
		{"spiffe://acme.example", "spiffe://acme.example", true},
		{"spiffe://acme.example", "spiffe://acme.example/x", false},
		{"spiffe://acme.example/**", "spiffe://evil.example/x", false},
		{"spiffe://acme.example/**", "spiffe://acme.example.evil/x", false},
		{"spiffe://acme.example/**", "spiffe://ACME.example/x", false},  // not a valid ID
		{"spiffe://acme.example/**", "spiffe://acme.example/x/", false}, // trailing slash
		{"spiffe://acme.example/**", "spiffe://acme.example/../x", false},
		{"spiffe://acme.example/**", "spiffe://acme.example/x?y", false},
		{"spiffe://acme.example/**", "spiffe://user@acme.example/x", false},
		{"spiffe://acme.example/**", "spiffe://acme.example:443/x", false},
		{"spiffe://acme.example/Billing", "spiffe://acme.example/billing", false}, // paths are case-sensitive
	}
	for _, tt := range tests {
		if got, _, _ := mtls.SPIFFEMatch(tt.pattern, tt.id); got != tt.want {
			t.Errorf("%s ~ %s = %v, want %v", tt.pattern, tt.id, got, tt.want)
		}
	}
}

func TestGlobs(t *testing.T) {
	globs := []struct {
		pattern, s string
		want       bool
	}{
		{"svc-*", "svc-a", true}, {"svc-*", "svc-", true}, {"svc-*", "web-a", false},
		{"*", "", true}, {"a*b*c", "abc", true}, {"a*b*c", "axxbyyc", true}, {"a*b*c", "acb", false},
		{"a*a", "a", false}, {"exact", "exact", true}, {"exact", "Exact", false},
	}
	for _, tt := range globs {
		if got := mtls.GlobMatch(tt.pattern, tt.s); got != tt.want {
			t.Errorf("glob %q ~ %q = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
	dns := []struct {
		pattern, name string
		want          bool
	}{
		{"*.acme.example", "api.acme.example", true}, {"*.acme.example", "API.Acme.Example.", true},
		{"*.acme.example", "acme.example", false}, {"*.acme.example", "a.b.acme.example", false},
		{"*.acme.example", "*.acme.example", false}, {"api.acme.example", "api.acme.example", true},
		{"*.acme.example", "api.evilacme.example", false},
	}
	for _, tt := range dns {
		if got, ok := mtls.DNSMatch(tt.pattern, tt.name); !ok || got != tt.want {
			t.Errorf("dns %q ~ %q = %v (ok %v), want %v", tt.pattern, tt.name, got, ok, tt.want)
		}
	}
	emails := []struct {
		pattern, addr string
		want          bool
	}{
		{"*@acme.example", "ops@ACME.example", true}, {"*@acme.example", "ops@evil.example", false},
		{"*@acme.example", "ops@sub.acme.example", false}, {"ops@acme.example", "ops@acme.example", true},
		{"ops@acme.example", "Ops@acme.example", false},
	}
	for _, tt := range emails {
		if got, ok := mtls.EmailMatch(tt.pattern, tt.addr); !ok || got != tt.want {
			t.Errorf("email %q ~ %q = %v (ok %v), want %v", tt.pattern, tt.addr, got, ok, tt.want)
		}
	}
}

// TestIdentityJSON: the identity header stays a valid, parseable header
// value whatever the subject holds.
func TestIdentityJSON(t *testing.T) {
	for _, s := range []string{"plain", "Zoë 🔐", "quote\" back\\slash", "ctl\x00\x1f\x7f", "bad\xffutf8", "\u2028"} {
		b, _ := json.Marshal(map[string]string{"subject": s})
		v := mtls.ASCIIJSON(b)
		if !httpguts.ValidHeaderFieldValue(v) {
			t.Errorf("%q: %q is not a valid header value", s, v)
		}
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 || v[i] >= 0x7f {
				t.Errorf("%q: byte %#x in %q", s, v[i], v)
			}
		}
		var back map[string]string
		if err := json.Unmarshal([]byte(v), &back); err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if want := strings.ToValidUTF8(s, "\ufffd"); back["subject"] != want && utf8.ValidString(s) {
			t.Errorf("round trip %q -> %q", s, back["subject"])
		}
	}
}
