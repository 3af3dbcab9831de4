package mtls_test

import (
	"bytes"
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"

	"github.com/wardengw/warden/internal/auth/mtls"
	"github.com/wardengw/warden/internal/pki/pkitest"
)

// FuzzMatcher: the SPIFFE and glob matchers never panic and keep their
// invariants: an ID matches itself, a pattern without wildcards matches
// only its own text, "*" matches exactly one segment, a final "**" matches
// whatever the same pattern with a final "*" matches and more, and a
// match never crosses trust domains.
func FuzzMatcher(f *testing.F) {
	for _, s := range [][2]string{
		{"spiffe://acme.example/billing/*", "spiffe://acme.example/billing/api"},
		{"spiffe://acme.example/billing/**", "spiffe://acme.example/billing/api/v2"},
		{"spiffe://acme.example/*/api", "spiffe://acme.example/x/api"},
		{"spiffe://acme.example", "spiffe://acme.example"},
		{"spiffe://acme.example/**", "spiffe://acme.example.evil/x"},
		{"spiffe://a/**/b", "spiffe://a/x/b"},
		{"svc-*-prod", "svc-billing-prod"},
		{"a*b*a", "aba"},
		{"*.acme.example", "api.acme.example"},
		{"spiffe://a/./b", "spiffe://a/%2e/b"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, id string) {
		m, pok, iok := mtls.SPIFFEMatch(pattern, id)
		if m && (!pok || !iok) {
			t.Fatal("matched without both parsing")
		}
		if iok {
			if self, _, _ := mtls.SPIFFEMatch(id, id); !self {
				t.Fatalf("ID %q does not match itself", id)
			}
		}
		if pok && iok {
			pSegs, iSegs := segments(pattern), segments(id)
			wild := strings.Contains(pattern, "/*")
			if !wild && m != (pattern == id) {
				t.Fatalf("literal %q ~ %q = %v", pattern, id, m)
			}
			if m && trustDomain(pattern) != trustDomain(id) {
				t.Fatalf("%q matched across trust domains: %q", pattern, id)
			}
			if m && !strings.HasSuffix(pattern, "/**") && len(pSegs) != len(iSegs) {
				t.Fatalf("%q (no **) matched %q with another segment count", pattern, id)
			}
			if m && strings.HasSuffix(pattern, "/**") && len(iSegs) < len(pSegs) {
				t.Fatalf("%q matched %q with too few segments", pattern, id)
			}
			if star, ok := strings.CutSuffix(pattern, "/*"); ok && m {
				if deep, _, _ := mtls.SPIFFEMatch(star+"/**", id); !deep {
					t.Fatalf("%q matches %q but %q does not", pattern, id, star+"/**")
				}
			}
		}

		// Simple globs.
		g := mtls.GlobMatch(pattern, id)
		if !strings.Contains(pattern, "*") && g != (pattern == id) {
			t.Fatalf("glob literal %q ~ %q = %v", pattern, id, g)
		}
		if g && (!mtls.GlobMatch("*"+pattern, id) || !mtls.GlobMatch(pattern+"*", id)) {
			t.Fatalf("glob %q matches %q but a widened pattern does not", pattern, id)
		}
		if !mtls.GlobMatch("*", id) || !mtls.GlobMatch(strings.ReplaceAll(id, "*", ""), strings.ReplaceAll(id, "*", "")) {
			t.Fatalf("glob identities fail for %q", id)
		}
		if d, ok := mtls.DNSMatch(pattern, id); d && (!ok || strings.HasPrefix(pattern, "*.") && strings.Count(strings.TrimSuffix(id, "."), ".") != strings.Count(strings.TrimSuffix(pattern, "."), ".")) {
			t.Fatalf("dns %q matched %q with another label count", pattern, id)
		}
		mtls.EmailMatch(pattern, id)
	})
}

func segments(id string) []string {
	rest := strings.TrimPrefix(id, "spiffe://")
	_, path, ok := strings.Cut(rest, "/")
	if !ok {
		return nil
	}
	return strings.Split(path, "/")
}

func trustDomain(id string) string {
	td, _, _ := strings.Cut(strings.TrimPrefix(id, "spiffe://"), "/")
	return td
}

// FuzzClientCertHeader: the RFC 9440 values are valid header values whose
// structured-field byte sequences parse back to exactly the bytes encoded,
// for the leaf and for each chain member, the anchor left out; and no
// Connection header survives StripIdentityHeaders still naming them.
func FuzzClientCertHeader(f *testing.F) {
	leaf := pkitest.SelfSigned(f, pkitest.Options{CommonName: "seed"})
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	f.Add(leaf.Cert.Raw, []byte{})
	f.Add([]byte{}, []byte{0})
	f.Add(all, []byte{0xff, 0xfe, 0xfd})
	f.Add([]byte(":::"), []byte(", ,"))
	f.Add([]byte{0xfb, 0xff}, []byte{0x3e, 0x3f}) // base64 + and /
	f.Add([]byte("keep-alive, Client-Cert"), []byte(" client-cert-chain ,\tx-client-identity,close"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		certValue, chainValue := mtls.ChainHeaders([][]byte{a, b, a, b}) // leaf a; intermediates b, a; anchor b
		for _, v := range []string{certValue, chainValue} {
			if !httpguts.ValidHeaderFieldValue(v) {
				t.Fatalf("%q is not a valid header value", v)
			}
		}
		got, err := parseSFBinaryField(certValue)
		if err != nil || !bytes.Equal(got, a) {
			t.Fatalf("Client-Cert %q parsed to %x, %v; want %x", certValue, got, err, a)
		}
		chain, err := parseSFListField(chainValue)
		if err != nil || len(chain) != 2 || !bytes.Equal(chain[0], b) || !bytes.Equal(chain[1], a) {
			t.Fatalf("Client-Cert-Chain %q parsed to %x, %v; want [%x %x]", chainValue, chain, err, b, a)
		}
		if v := mtls.SFBinary(a); v != certValue {
			t.Fatalf("SFBinary and ChainHeaders disagree: %q vs %q", v, certValue)
		}
		if _, chainValue := mtls.ChainHeaders([][]byte{a, b}); chainValue != "" {
			t.Fatalf("leaf and anchor only: Client-Cert-Chain %q, want none", chainValue)
		}

		// Whatever a client puts in Connection, none of the identity
		// headers stays named there.
		h := http.Header{"Connection": {string(a), string(b)}}
		mtls.StripIdentityHeaders(h, "X-Client-Identity")
		for _, v := range h["Connection"] {
			for _, tok := range strings.Split(v, ",") {
				tok = textproto.TrimString(tok)
				if strings.EqualFold(tok, "Client-Cert") || strings.EqualFold(tok, "Client-Cert-Chain") || strings.EqualFold(tok, "X-Client-Identity") {
					t.Fatalf("Connection %q still names %q", h["Connection"], tok)
				}
			}
		}
	})
}
