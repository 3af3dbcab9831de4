package ca

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/wardengw/warden/internal/pki/pkitest"
)

// FuzzIssueCSR: arbitrary CSR bytes never panic, and never yield a
// certificate that violates the CA's constraints or the profile.
func FuzzIssueCSR(f *testing.F) {
	dir := testInit(f, InitOptions{})
	recs := newMemRecords()
	c := testLoad(f, dir, nil, Config{Records: recs})
	for _, s := range []csrSpec{
		{cn: "a", dns: []string{"a.example.com"}},
		{cn: "b", uris: []string{"spiffe://example.com/ns/x"}, ips: []string{"10.0.0.1"}},
		{dns: []string{"evil.com"}},
		{dns: []string{"a.example.com"}, key: pkitest.ECDSAP224},
		{cn: "x.evil.com", dns: []string{"*.example.com"}, key: pkitest.Ed25519},
	} {
		b, _ := makeCSR(f, s)
		f.Add(b, true)
		p, _ := pem.Decode(b)
		f.Add(p.Bytes, false)
	}
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"), true)
	f.Add([]byte{0x30, 0x82, 0xff, 0xff}, false)
	f.Fuzz(func(t *testing.T, data []byte, server bool) {
		profile := ProfileClient
		if server {
			profile = ProfileServer
		}
		before := recs.count()
		cert, err := c.Issue(context.Background(), IssueRequest{CSR: data, Profile: profile})
		if err != nil {
			if cert != nil {
				t.Fatal("certificate with an error")
			}
			if recs.count() != before {
				t.Fatal("refused request recorded")
			}
			return
		}
		if recs.count() != before+1 {
			t.Fatal("issued certificate not recorded")
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: c.roots, Intermediates: c.inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Fatalf("issued certificate does not verify: %v", err)
		}
		for _, d := range cert.DNSNames {
			if !permittedDomain(d, c.Intermediate.PermittedDNSDomains) {
				t.Fatalf("DNS name %q outside the constraints", d)
			}
		}
		for _, ip := range cert.IPAddresses {
			if !permittedIP(ip, c.Intermediate.PermittedIPRanges) {
				t.Fatalf("IP %v outside the constraints", ip)
			}
		}
		for _, u := range cert.URIs {
			if !permittedDomain(u.Hostname(), c.Intermediate.PermittedURIDomains) {
				t.Fatalf("URI %v outside the constraints", u)
			}
		}
		if len(cert.EmailAddresses) > 0 || cert.IsCA || len(cert.ExtKeyUsage) != 1 {
			t.Fatalf("unexpected certificate: emails %v, CA %v, EKU %v", cert.EmailAddresses, cert.IsCA, cert.ExtKeyUsage)
		}
		if cn := cert.Subject.CommonName; strings.Contains(cn, ".") && checkDNSName(strings.ToLower(cn), true) == nil &&
			!permittedDomain(strings.ToLower(cn), c.Intermediate.PermittedDNSDomains) {
			t.Fatalf("common name %q outside the constraints", cn)
		}
	})
}
