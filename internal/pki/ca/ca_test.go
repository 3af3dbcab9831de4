package ca

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/store"
	"github.com/wardengw/warden/internal/testkit"
)

func TestInitWritesPrivateKeysAndRefusesOverwrite(t *testing.T) {
	dir := testInit(t, InitOptions{Name: "Acme"})
	for name, want := range map[string]os.FileMode{RootKeyFile: 0o600, IntermediateKeyFile: 0o600, RootCertFile: 0o644, IntermediateCertFile: 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("folder mode %v", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, RootKeyFile)); !bytes.HasPrefix(b, []byte("-----BEGIN PRIVATE KEY-----")) {
		t.Errorf("root key is not PKCS#8 PEM: %.40q", b)
	}
	root, _ := readCert(filepath.Join(dir, RootCertFile))
	inter, _ := readCert(filepath.Join(dir, IntermediateCertFile))
	if !root.IsCA || root.NotAfter.Sub(root.NotBefore) < RootLifetime || root.Subject.CommonName != "Acme Root CA" {
		t.Errorf("root: %+v", root.Subject)
	}
	if !inter.IsCA || !inter.MaxPathLenZero || inter.MaxPathLen != 0 || inter.NotAfter.After(root.NotAfter) ||
		inter.NotAfter.Sub(inter.NotBefore) < IntermediateLifetime || inter.KeyUsage&x509.KeyUsageCRLSign == 0 {
		t.Errorf("intermediate: %+v", inter)
	}
	if _, ok := inter.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("default key type: %T", inter.PublicKey)
	}
	critical := false
	for _, e := range inter.Extensions {
		if e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 30}) {
			critical = e.Critical
		}
	}
	if !critical || !slices.Equal(inter.PermittedDNSDomains, []string{"example.com"}) {
		t.Errorf("name constraints: critical %v, %v", critical, inter.PermittedDNSDomains)
	}
	before, _ := os.ReadFile(filepath.Join(dir, IntermediateKeyFile))
	if err := Init(dir, InitOptions{}); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("second Init: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, IntermediateKeyFile)); !bytes.Equal(before, after) {
		t.Fatal("key overwritten")
	}
	// Bad options are all reported, nothing is written.
	bad := filepath.Join(t.TempDir(), "bad")
	err := Init(bad, InitOptions{KeyType: "dsa", PermittedDNSDomains: []string{"*.x.com"}, PublishURL: "ftp://x", Passphrase: []byte("short")})
	for _, want := range []string{"dsa", "*.x.com", "ftp://x", "passphrase"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if _, err := os.Stat(bad); !errors.Is(err, os.ErrNotExist) {
		t.Error("folder created for invalid options")
	}
}

func TestKeyTypes(t *testing.T) {
	for _, kt := range []KeyType{KeyEd25519, KeyRSA3072} {
		t.Run(string(kt), func(t *testing.T) {
			dir := testInit(t, InitOptions{KeyType: kt})
			c := testLoad(t, dir, nil, Config{})
			csr, _ := makeCSR(t, csrSpec{cn: "a", dns: []string{"a.example.com"}})
			cert, err := c.Issue(context.Background(), IssueRequest{CSR: csr, Profile: ProfileServer})
			if err != nil {
				t.Fatal(err)
			}
			if (kt == KeyEd25519) != (len(cert.OCSPServer) == 0) {
				t.Errorf("OCSP servers %v for %s", cert.OCSPServer, kt)
			}
			if _, _, err := NewPublisher(c, nil).CRL(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestEncryptedKeyRoundTrip(t *testing.T) {
	pass := []byte("correct horse battery staple")
	dir := testInit(t, InitOptions{Passphrase: pass})
	for _, f := range []string{RootKeyFile, IntermediateKeyFile} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		p, _ := pem.Decode(b)
		if p == nil || p.Type != EncryptedKeyPEMType || p.Headers["KDF"] != "scrypt" || len(p.Headers["Salt"]) != 32 {
			t.Fatalf("%s: %+v", f, p)
		}
	}
	if _, err := Load(dir, nil, Config{Records: newMemRecords()}); !errors.Is(err, ErrKeyEncrypted) {
		t.Fatalf("no passphrase: %v", err)
	}
	if _, err := Load(dir, []byte("wrong horse battery staple"), Config{Records: newMemRecords()}); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	c := testLoad(t, dir, pass, Config{})
	csr, _ := makeCSR(t, csrSpec{cn: "a", uris: []string{"spiffe://example.com/svc/a"}})
	if _, err := c.Issue(context.Background(), IssueRequest{CSR: csr, Profile: ProfileClient}); err != nil {
		t.Fatal(err)
	}
	// A changed parameter is detected (authenticated headers).
	path := filepath.Join(dir, IntermediateKeyFile)
	b, _ := os.ReadFile(path)
	p, _ := pem.Decode(b)
	p.Headers["Scrypt-R"] = "9"
	if _, err := decodeKey(pem.EncodeToMemory(p), pass); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("tampered header: %v", err)
	}
	p.Headers["Scrypt-R"], p.Headers["Scrypt-N"] = "8", "1073741824"
	if _, err := decodeKey(pem.EncodeToMemory(p), pass); err == nil || !strings.Contains(err.Error(), "out of bounds") {
		t.Fatalf("huge N: %v", err)
	}
}

func TestIssueClientAndServer(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	clk := testkit.NewClock(time.Now())
	c := testLoad(t, testInit(t, InitOptions{}), nil, Config{Records: s, Now: clk.Now, PublishURL: "https://gw.example.com:8443/pki/"})

	csr, key := makeCSR(t, csrSpec{cn: "billing", uris: []string{"spiffe://example.com/ns/prod/sa/billing"}, emails: []string{"x@y.example"}})
	_, err := c.Issue(ctx, IssueRequest{CSR: csr, Profile: ProfileClient})
	var ne *NameError
	if !errors.As(err, &ne) || ne.SAN != "email:x@y.example" {
		t.Fatalf("email SAN of a CA without email constraints: %v", err)
	}
	csr, key = makeCSR(t, csrSpec{cn: "billing", uris: []string{"spiffe://example.com/ns/prod/sa/billing"}})
	cert, err := c.Issue(ctx, IssueRequest{CSR: csr, Profile: ProfileClient})
	if err != nil {
		t.Fatal(err)
	}
	if !cert.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
		t.Error("not the CSR's key")
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || cert.IsCA ||
		cert.URIs[0].String() != "spiffe://example.com/ns/prod/sa/billing" || cert.Subject.String() != "CN=billing" {
		t.Errorf("client cert: eku %v uris %v subject %s", cert.ExtKeyUsage, cert.URIs, cert.Subject)
	}
	if life := cert.NotAfter.Sub(clk.Now()); life > 24*time.Hour || life < 24*time.Hour-time.Second {
		t.Errorf("client lifetime %v", life)
	}
	if cert.SerialNumber.BitLen() < 100 || cert.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %d bits", cert.SerialNumber.BitLen())
	}
	if !slices.Equal(cert.CRLDistributionPoints, []string{"https://gw.example.com:8443/pki/crl"}) ||
		!slices.Equal(cert.OCSPServer, []string{"https://gw.example.com:8443/pki/ocsp"}) {
		t.Errorf("CDP %v OCSP %v", cert.CRLDistributionPoints, cert.OCSPServer)
	}
	rec, err := s.IssuedCert(ctx, SerialString(cert.SerialNumber))
	if err != nil || rec.Profile != "client" || rec.Issuer != c.IssuerID || !slices.Equal(rec.SANs, []string{"uri:spiffe://example.com/ns/prod/sa/billing"}) ||
		!bytes.Equal(rec.PEM, certPEM(cert)) || !rec.NotAfter.Equal(cert.NotAfter) {
		t.Fatalf("record %+v %v", rec, err)
	}

	csr, _ = makeCSR(t, csrSpec{cn: "api.example.com", dns: []string{"api.example.com", "*.api.example.com"}, ips: []string{"10.1.2.3"}, key: pkitest.RSA2048})
	cert, err = c.Issue(ctx, IssueRequest{CSR: csr, Profile: ProfileServer})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || len(cert.IPAddresses) != 1 {
		t.Errorf("server cert: %v %v", cert.ExtKeyUsage, cert.IPAddresses)
	}
	if life := cert.NotAfter.Sub(clk.Now()); life > 90*24*time.Hour || life < 90*24*time.Hour-time.Second {
		t.Errorf("server lifetime %v", life)
	}
	if err := cert.VerifyHostname("x.api.example.com"); err != nil {
		t.Error(err)
	}
	// Lifetime override, and the cap at the intermediate's NotAfter.
	csr, _ = makeCSR(t, csrSpec{dns: []string{"b.example.com"}, key: pkitest.Ed25519})
	cert, err = c.Issue(ctx, IssueRequest{CSR: csr, Profile: ProfileServer, Lifetime: 20 * 365 * 24 * time.Hour})
	if err != nil || !cert.NotAfter.Equal(c.Intermediate.NotAfter) {
		t.Fatalf("capped: %v %v", cert.NotAfter, err)
	}
	if l, _ := s.ListIssued(ctx, c.IssuerID, 0); len(l) != 3 {
		t.Fatalf("%d records", len(l))
	}
}

func TestIssueRefusesAndRecordsNothing(t *testing.T) {
	ctx := context.Background()
	c := testLoad(t, testInit(t, InitOptions{}), nil, Config{})
	recs := c.cfg.Records.(*memRecords)
	good, _ := makeCSR(t, csrSpec{cn: "a", dns: []string{"a.example.com"}})
	p, _ := pem.Decode(good)
	tampered := bytes.Clone(p.Bytes)
	tampered[len(tampered)-5] ^= 0xff // in the signature
	wrongPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Bytes})
	csr := func(s csrSpec) []byte { b, _ := makeCSR(t, s); return b }

	for _, tc := range []struct {
		name    string
		req     IssueRequest
		wantErr string
		wantSAN string
	}{
		{"garbage", IssueRequest{CSR: []byte("not a CSR"), Profile: ProfileClient}, "malformed CSR", ""},
		{"empty", IssueRequest{Profile: ProfileClient}, "malformed CSR", ""},
		{"bad signature", IssueRequest{CSR: tampered, Profile: ProfileServer}, "", ""},
		{"wrong PEM type", IssueRequest{CSR: wrongPEM, Profile: ProfileServer}, "not a CERTIFICATE REQUEST", ""},
		{"huge", IssueRequest{CSR: make([]byte, MaxCSRBytes+1), Profile: ProfileServer}, "larger than", ""},
		{"bad profile", IssueRequest{CSR: good, Profile: "ca"}, "profile", ""},
		{"dns outside", IssueRequest{CSR: csr(csrSpec{dns: []string{"a.example.com", "evil.com"}}), Profile: ProfileServer}, "permitted DNS domains", "dns:evil.com"},
		{"dns suffix trick", IssueRequest{CSR: csr(csrSpec{dns: []string{"notexample.com"}}), Profile: ProfileServer}, "permitted DNS", "dns:notexample.com"},
		{"uri outside", IssueRequest{CSR: csr(csrSpec{uris: []string{"spiffe://evil.org/a"}}), Profile: ProfileClient}, "permitted URI domains", "uri:spiffe://evil.org/a"},
		{"ip outside", IssueRequest{CSR: csr(csrSpec{dns: []string{"a.example.com"}, ips: []string{"192.168.1.1"}}), Profile: ProfileServer}, "permitted IP", "ip:192.168.1.1"},
		{"cn outside", IssueRequest{CSR: csr(csrSpec{cn: "www.evil.com", dns: []string{"a.example.com"}}), Profile: ProfileServer}, "common name", "cn:www.evil.com"},
		{"wildcard client", IssueRequest{CSR: csr(csrSpec{dns: []string{"*.example.com"}}), Profile: ProfileClient}, "wildcard", "dns:*.example.com"},
		{"spiffe query", IssueRequest{CSR: csr(csrSpec{uris: []string{"spiffe://example.com/a?x=1"}}), Profile: ProfileClient}, "SPIFFE", ""},
		{"server without names", IssueRequest{CSR: csr(csrSpec{cn: "x", uris: []string{"spiffe://example.com/a"}}), Profile: ProfileServer}, "needs a DNS or IP", ""},
		{"rsa-1024", IssueRequest{CSR: csr(csrSpec{dns: []string{"a.example.com"}, key: pkitest.RSA1024}), Profile: ProfileServer}, "RSA-1024 not allowed", ""},
		{"p-224", IssueRequest{CSR: csr(csrSpec{dns: []string{"a.example.com"}, key: pkitest.ECDSAP224}), Profile: ProfileServer}, "P-224 not allowed", ""},
		{"negative lifetime", IssueRequest{CSR: good, Profile: ProfileServer, Lifetime: -time.Hour}, "negative", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert, err := c.Issue(ctx, tc.req)
			if err == nil || cert != nil {
				t.Fatalf("issued: %v", cert)
			}
			var re *RequestError
			var ne *NameError
			if !errors.As(err, &re) && !errors.As(err, &ne) {
				t.Errorf("error %T %v is neither a RequestError nor a NameError", err, err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q lacks %q", err, tc.wantErr)
			}
			if tc.wantSAN != "" && (ne == nil || ne.SAN != tc.wantSAN) {
				t.Errorf("offending SAN %+v, want %s", ne, tc.wantSAN)
			}
			t.Log(err)
		})
	}
	if n := recs.count(); n != 0 {
		t.Fatalf("%d records after refusals", n)
	}
}

func TestNoCertificateWithoutRecord(t *testing.T) {
	dir := testInit(t, InitOptions{})
	c := testLoad(t, dir, nil, Config{Records: failingRecords{newMemRecords()}})
	csr, _ := makeCSR(t, csrSpec{dns: []string{"a.example.com"}})
	cert, err := c.Issue(context.Background(), IssueRequest{CSR: csr, Profile: ProfileServer})
	if cert != nil || err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("%v %v", cert, err)
	}
	// And no publish URL: nothing unrevocable is issued.
	c2, err := Load(dir, nil, Config{Records: newMemRecords()})
	if err != nil {
		t.Fatal(err)
	}
	if cert, err := c2.Issue(context.Background(), IssueRequest{CSR: csr, Profile: ProfileServer}); cert != nil || err == nil {
		t.Fatalf("issued without publish URL: %v", err)
	}
}

func TestUnconstrainedCAAcceptsAnyName(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	if err := Init(dir, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	c := testLoad(t, dir, nil, Config{})
	csr, _ := makeCSR(t, csrSpec{dns: []string{"anything.test"}, emails: []string{"ops@anything.test"}, ips: []string{"192.0.2.1"}})
	if _, err := c.Issue(context.Background(), IssueRequest{CSR: csr, Profile: ProfileServer}); err != nil {
		t.Fatal(err)
	}
}

func TestParseSerialAndReason(t *testing.T) {
	for _, s := range []string{"0a:FF", "0xaff", " aff "} {
		if n, err := ParseSerial(s); err != nil || SerialString(n) != "aff" {
			t.Errorf("%q: %v %v", s, n, err)
		}
	}
	for _, s := range []string{"", "0", "-1", "xyz", strings.Repeat("f", 41)} {
		if _, err := ParseSerial(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	if code, err := ParseReason("keycompromise"); err != nil || code != 1 {
		t.Error(code, err)
	}
	if _, err := ParseReason("certificateHold"); err == nil || !strings.Contains(err.Error(), "superseded") {
		t.Error(err)
	}
}

var _ Records = (*store.Store)(nil)
