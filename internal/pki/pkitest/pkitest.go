// Package pkitest builds throw-away PKIs for tests: root and intermediate
// CAs and leaf certificates generated at test time, so that no checked-in key
// ever expires and breaks the build.
package pkitest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// KeyType names a key algorithm and size.
type KeyType string

// Key types a test may ask for.
const (
	ECDSAP256 KeyType = "ecdsa-p256"
	ECDSAP384 KeyType = "ecdsa-p384"
	ECDSAP224 KeyType = "ecdsa-p224"
	RSA2048   KeyType = "rsa-2048"
	RSA1024   KeyType = "rsa-1024"
	Ed25519   KeyType = "ed25519"
)

// Options describe a certificate to issue. Zero values give a valid,
// 24-hour, ECDSA P-256 certificate usable for server and client auth.
type Options struct {
	CommonName  string
	DNSNames    []string
	IPs         []net.IP
	URIs        []string
	Emails      []string
	NotBefore   time.Time
	NotAfter    time.Time
	KeyType     KeyType
	Key         crypto.Signer // reuse this key instead of generating one
	ExtKeyUsage []x509.ExtKeyUsage
	KeyUsage    x509.KeyUsage
	// CRLDistributionPoints and OCSPServer are copied into the certificate.
	CRLDistributionPoints []string
	OCSPServer            []string
	// PermittedDNSDomains puts a name constraint on a CA.
	PermittedDNSDomains []string
	MaxPathLen          int
	SerialNumber        *big.Int
}

// CA is a certificate authority usable for issuing test certificates.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	Parents []*x509.Certificate // intermediates between this CA and the root, nearest first; empty for a root
}

// Leaf is an issued end-entity certificate with its key and chain.
type Leaf struct {
	Cert  *x509.Certificate
	Key   crypto.Signer
	Chain []*x509.Certificate // leaf first, then intermediates (never the root)
}

// GenerateKey returns a fresh key of the given type (ECDSA P-256 if empty).
func GenerateKey(t testing.TB, kt KeyType) crypto.Signer {
	t.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch kt {
	case "", ECDSAP256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case ECDSAP224:
		k, err = ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	case RSA2048:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case RSA1024:
		k, err = rsa.GenerateKey(rand.Reader, 1024)
	case Ed25519:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("pkitest: unknown key type %q", kt)
	}
	if err != nil {
		t.Fatalf("pkitest: generate %s key: %v", kt, err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatalf("pkitest: serial: %v", err)
	}
	return n.Add(n, big.NewInt(1))
}

func template(t testing.TB, o Options) *x509.Certificate {
	t.Helper()
	now := time.Now()
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = now.Add(24 * time.Hour)
	}
	sn := o.SerialNumber
	if sn == nil {
		sn = serial(t)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: o.CommonName, Organization: []string{"Warden Test"}},
		NotBefore:             o.NotBefore,
		NotAfter:              o.NotAfter,
		DNSNames:              o.DNSNames,
		IPAddresses:           o.IPs,
		EmailAddresses:        o.Emails,
		CRLDistributionPoints: o.CRLDistributionPoints,
		OCSPServer:            o.OCSPServer,
		PermittedDNSDomains:   o.PermittedDNSDomains,
	}
	for _, s := range o.URIs {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("pkitest: URI SAN %q: %v", s, err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	return tmpl
}

func create(t testing.TB, tmpl, parent *x509.Certificate, pub any, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatalf("pkitest: create certificate %q: %v", tmpl.Subject.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("pkitest: parse certificate: %v", err)
	}
	return c
}

// NewRootCA returns a self-signed root CA.
func NewRootCA(t testing.TB, name string, o Options) *CA {
	t.Helper()
	if o.CommonName == "" {
		o.CommonName = name
	}
	key := o.Key
	if key == nil {
		key = GenerateKey(t, o.KeyType)
	}
	tmpl := template(t, o)
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	if o.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(10 * 24 * time.Hour)
	}
	return &CA{Cert: create(t, tmpl, tmpl, key.Public(), key), Key: key}
}

// NewIntermediate returns a CA signed by ca.
func (ca *CA) NewIntermediate(t testing.TB, name string, o Options) *CA {
	t.Helper()
	if o.CommonName == "" {
		o.CommonName = name
	}
	key := o.Key
	if key == nil {
		key = GenerateKey(t, o.KeyType)
	}
	tmpl := template(t, o)
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.MaxPathLen = o.MaxPathLen
	tmpl.MaxPathLenZero = o.MaxPathLen == 0
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	if o.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(5 * 24 * time.Hour)
	}
	inter := &CA{Cert: create(t, tmpl, ca.Cert, key.Public(), ca.Key), Key: key}
	inter.Parents = append([]*x509.Certificate{ca.Cert}, ca.Parents...)
	return inter
}

// Issue returns a leaf certificate signed by ca. Without ExtKeyUsage it is
// valid for both server and client authentication.
func (ca *CA) Issue(t testing.TB, o Options) *Leaf {
	t.Helper()
	key := o.Key
	if key == nil {
		key = GenerateKey(t, o.KeyType)
	}
	if o.CommonName == "" && len(o.DNSNames) > 0 {
		o.CommonName = o.DNSNames[0]
	}
	tmpl := template(t, o)
	tmpl.KeyUsage = o.KeyUsage
	if tmpl.KeyUsage == 0 {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		if _, ok := key.(*rsa.PrivateKey); ok {
			tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
		}
	}
	tmpl.ExtKeyUsage = o.ExtKeyUsage
	if tmpl.ExtKeyUsage == nil {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	tmpl.BasicConstraintsValid = true
	leaf := create(t, tmpl, ca.Cert, key.Public(), ca.Key)
	chain := []*x509.Certificate{leaf}
	if len(ca.Parents) > 0 { // ca is an intermediate: send it, and any above it but the root
		chain = append(chain, ca.Cert)
		chain = append(chain, ca.Parents[:len(ca.Parents)-1]...)
	}
	return &Leaf{Cert: leaf, Key: key, Chain: chain}
}

// SelfSigned returns a self-signed leaf (its own issuer, not a CA).
func SelfSigned(t testing.TB, o Options) *Leaf {
	t.Helper()
	key := o.Key
	if key == nil {
		key = GenerateKey(t, o.KeyType)
	}
	if o.CommonName == "" && len(o.DNSNames) > 0 {
		o.CommonName = o.DNSNames[0]
	}
	tmpl := template(t, o)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	tmpl.BasicConstraintsValid = true
	c := create(t, tmpl, tmpl, key.Public(), key)
	return &Leaf{Cert: c, Key: key, Chain: []*x509.Certificate{c}}
}

// Pool returns a cert pool holding the CA's certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// PEM returns the CA certificate in PEM form.
func (ca *CA) PEM() []byte { return CertPEM(ca.Cert) }

// WriteCert writes the CA certificate to dir/name and returns the path.
func (ca *CA) WriteCert(t testing.TB, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	writeFile(t, p, ca.PEM(), 0o644)
	return p
}

// TLS returns the leaf as a tls.Certificate (chain included).
func (l *Leaf) TLS() tls.Certificate {
	c := tls.Certificate{PrivateKey: l.Key, Leaf: l.Cert}
	for _, x := range l.Chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}

// CertPEM returns the leaf and its intermediates as PEM.
func (l *Leaf) CertPEM() []byte { return CertPEM(l.Chain...) }

// KeyPEM returns the private key as PKCS#8 PEM.
func (l *Leaf) KeyPEM(t testing.TB) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(l.Key)
	if err != nil {
		t.Fatalf("pkitest: marshal key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// WriteFiles writes dir/<name>.pem (chain) and dir/<name>-key.pem and
// returns their paths.
func (l *Leaf) WriteFiles(t testing.TB, dir, name string) (certPath, keyPath string) {
	t.Helper()
	certPath = filepath.Join(dir, name+".pem")
	keyPath = filepath.Join(dir, name+"-key.pem")
	writeFile(t, certPath, l.CertPEM(), 0o644)
	writeFile(t, keyPath, l.KeyPEM(t), 0o600)
	return certPath, keyPath
}

// CertPEM encodes certificates as concatenated PEM blocks.
func CertPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func writeFile(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		t.Fatalf("pkitest: write %s: %v", path, err)
	}
	if err := os.Rename(tmp, path); err != nil { // atomic, as a deploy tool would
		t.Fatalf("pkitest: rename %s: %v", path, err)
	}
}
