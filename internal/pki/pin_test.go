package pki

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/wardengw/warden/internal/pki/pkitest"
)

func TestParsePin(t *testing.T) {
	ca := pkitest.NewRootCA(t, "CA", pkitest.Options{})
	leaf := ca.Issue(t, pkitest.Options{DNSNames: []string{"a.example"}})
	want := sha256.Sum256(leaf.Cert.RawSubjectPublicKeyInfo)
	s := "sha256/" + base64.StdEncoding.EncodeToString(want[:])
	p, err := ParsePin(s)
	if err != nil {
		t.Fatal(err)
	}
	if p != SPKIPin(leaf.Cert) || p.String() != s {
		t.Fatalf("round trip: got %s want %s", p, s)
	}
	set := PinSet{SPKIPin(ca.Cert)}
	if set.MatchChain(leaf.Chain[:1]) {
		t.Fatal("leaf matched a set holding only the CA pin")
	}
	if !set.MatchChain(append(leaf.Chain, ca.Cert)) {
		t.Fatal("chain with the CA did not match")
	}

	for _, bad := range []struct{ in, why string }{
		{"", "must start with"},
		{"sha1/" + base64.StdEncoding.EncodeToString(want[:20]), "must start with"},
		{"SHA256/" + base64.StdEncoding.EncodeToString(want[:]), "must start with"},
		{"sha256/" + base64.StdEncoding.EncodeToString(want[:31]), "31 bytes"},
		{"sha256/" + base64.RawStdEncoding.EncodeToString(want[:]), "base64"},
		{"sha256/47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=", "base64"},
		{"sha256/" + base64.StdEncoding.EncodeToString(want[:]) + " ", "base64"},
	} {
		if _, err := ParsePin(bad.in); err == nil || !strings.Contains(err.Error(), bad.why) {
			t.Errorf("ParsePin(%q) = %v, want error containing %q", bad.in, err, bad.why)
		}
	}
}

func FuzzParsePin(f *testing.F) {
	f.Add("sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
	f.Add("sha256/")
	f.Add("sha256/====")
	f.Add("sha256/47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU")
	f.Add("sha512/abc")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePin(s)
		if err != nil {
			return
		}
		if p.String() != s {
			t.Fatalf("accepted %q but it prints as %q: two spellings of one pin", s, p.String())
		}
	})
}
