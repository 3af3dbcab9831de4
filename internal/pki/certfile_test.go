package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReadChainToleratesKey: ReadChain skips private-key blocks (as
// tls.X509KeyPair recognises them) in a cert_file, ReadCertificates
// refuses them, and both refuse any other block.
func TestReadChainToleratesKey(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "leaf"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	block := func(typ string) string { return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: []byte(typ)})) }
	dir := t.TempDir()
	for _, tt := range []struct {
		name      string
		in        string
		chainErr  string // "" : ReadChain reads one certificate
		strictErr string // "" : ReadCertificates reads one certificate
	}{
		{"certificate only", cert, "", ""},
		{"PKCS#8 key first", block("PRIVATE KEY") + cert, "", `unexpected PEM block "PRIVATE KEY"`},
		{"EC key after", cert + block("EC PRIVATE KEY"), "", `unexpected PEM block "EC PRIVATE KEY"`},
		{"key only", block("PRIVATE KEY"), "holds no PEM certificate", `unexpected PEM block "PRIVATE KEY"`},
		{"a foreign block", block("PRIVATE KEY") + cert + block("CERTIFICATE REQUEST"), `unexpected PEM block "CERTIFICATE REQUEST"`, `unexpected PEM block "PRIVATE KEY"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".pem")
			if err := os.WriteFile(path, []byte(tt.in), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, read := range []struct {
				name    string
				f       func(string) ([]*x509.Certificate, error)
				errWant string
			}{{"ReadChain", ReadChain, tt.chainErr}, {"ReadCertificates", ReadCertificates, tt.strictErr}} {
				certs, err := read.f(path)
				switch {
				case read.errWant == "" && (err != nil || len(certs) != 1):
					t.Errorf("%s: %d certificates, %v; want 1", read.name, len(certs), err)
				case read.errWant != "" && (err == nil || !strings.Contains(err.Error(), read.errWant) || !strings.Contains(err.Error(), path)):
					t.Errorf("%s: %v; want an error naming the file and %q", read.name, err, read.errWant)
				}
			}
		})
	}
}
