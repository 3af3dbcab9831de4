package tlsserver_test

import (
	"crypto/dsa" //nolint:staticcheck // only to build a refused key
	"crypto/x509"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/tlsserver"
)

func TestCheckCertificate(t *testing.T) {
	leaf := func(kt pkitest.KeyType) *x509.Certificate {
		return pkitest.SelfSigned(t, pkitest.Options{CommonName: string(kt), KeyType: kt}).Cert
	}
	tests := []struct {
		name    string
		cert    *x509.Certificate
		wantErr string
	}{
		{"ECDSA P-256", leaf(pkitest.ECDSAP256), ""},
		{"ECDSA P-384", leaf(pkitest.ECDSAP384), ""},
		{"RSA 2048", leaf(pkitest.RSA2048), ""},
		{"Ed25519", leaf(pkitest.Ed25519), ""},
		{"RSA 1024", leaf(pkitest.RSA1024), "RSA key of 1024 bits is too small (minimum 2048)"},
		{"ECDSA P-224", leaf(pkitest.ECDSAP224), "ECDSA curve P-224 is too weak"},
		{"DSA", &x509.Certificate{PublicKey: &dsa.PublicKey{Y: big.NewInt(1)}}, "DSA keys are not allowed"},
		{"unknown key", &x509.Certificate{PublicKey: "key"}, "unsupported public key type string"},
		{"SHA-1 signature", func() *x509.Certificate {
			c := *leaf(pkitest.ECDSAP256)
			c.SignatureAlgorithm = x509.ECDSAWithSHA1
			return &c
		}(), "ECDSA-SHA1"},
		{"nil", nil, "no certificate"},
	}
	for _, tt := range tests {
		err := tlsserver.CheckCertificate(tt.cert)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: CheckCertificate = %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestLoadCertificates(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	ec, ecKey := p.ecdsaA.WriteFiles(t, dir, "ec")
	rsa, rsaKey := p.rsaA.WriteFiles(t, dir, "rsa")
	weak, weakKey := pkitest.SelfSigned(t, pkitest.Options{CommonName: "weak", KeyType: pkitest.RSA1024}).WriteFiles(t, dir, "weak")
	p224, p224Key := pkitest.SelfSigned(t, pkitest.Options{CommonName: "p224", KeyType: pkitest.ECDSAP224}).WriteFiles(t, dir, "p224")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}

	got, err := tlsserver.LoadCertificates([]tlsserver.CertSource{{ec, ecKey}, {rsa, rsaKey}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Leaf == nil || got[1].Leaf == nil ||
		!got[0].Leaf.Equal(p.ecdsaA.Cert) || len(got[0].Certificate) != 2 {
		t.Fatalf("loaded %d certificates, leaf/chain not as written", len(got))
	}
	for _, tt := range []struct {
		name    string
		src     tlsserver.CertSource
		wantErr []string
	}{
		{"weak RSA", tlsserver.CertSource{weak, weakKey}, []string{weak, "1024 bits"}},
		{"P-224", tlsserver.CertSource{p224, p224Key}, []string{p224, "P-224"}},
		{"missing", tlsserver.CertSource{filepath.Join(dir, "nope.pem"), ecKey}, []string{"nope.pem"}},
		{"garbage", tlsserver.CertSource{garbage, ecKey}, []string{garbage}},
		{"key mismatch", tlsserver.CertSource{ec, rsaKey}, []string{ec, rsaKey}},
	} {
		_, err := tlsserver.LoadCertificates([]tlsserver.CertSource{{ec, ecKey}, tt.src})
		for _, w := range tt.wantErr {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: LoadCertificates error = %v, want it to contain %q", tt.name, err, w)
			}
		}
	}
}
