package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// DevPKI is the development PKI of `warden demo`: a CA, a server
// certificate for localhost, a client certificate, and the demo upstream's
// certificate with a spare key for its backup pin. It is created once in a
// folder and reused on later runs; certificates close to expiry are
// re-issued.
type DevPKI struct {
	Dir string

	CA         *x509.Certificate
	caKey      crypto.Signer
	Server     tls.Certificate
	Client     tls.Certificate
	Upstream   tls.Certificate
	BackupPin  Pin // pin of a spare key, as an upstream's backup pin
	CAFile     string
	ServerFile string
	ServerKey  string
	ClientFile string
	ClientKey  string
}

// Names of the files in the demo folder.
const (
	DevCAFile        = "ca.pem"
	DevCAKeyFile     = "ca-key.pem"
	DevServerFile    = "server.pem"
	DevServerKeyFile = "server-key.pem"
	DevClientFile    = "client.pem"
	DevClientKeyFile = "client-key.pem"
	DevUpstreamFile  = "upstream.pem"
	DevUpstreamKey   = "upstream-key.pem"
	DevBackupKeyFile = "upstream-backup-key.pem"
)

// renewBefore is how close to expiry a dev certificate is re-issued.
const renewBefore = 7 * 24 * time.Hour

// LoadOrCreateDevPKI loads the dev PKI from dir, creating what is missing
// or about to expire.
func LoadOrCreateDevPKI(dir string) (*DevPKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create demo folder: %w", err)
	}
	d := &DevPKI{Dir: dir, CAFile: filepath.Join(dir, DevCAFile),
		ServerFile: filepath.Join(dir, DevServerFile), ServerKey: filepath.Join(dir, DevServerKeyFile),
		ClientFile: filepath.Join(dir, DevClientFile), ClientKey: filepath.Join(dir, DevClientKeyFile)}
	if err := d.loadOrCreateCA(); err != nil {
		return nil, err
	}
	var err error
	localhost := []string{"localhost"}
	loopback := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	if d.Server, err = d.leaf(DevServerFile, DevServerKeyFile, leafSpec{cn: "localhost", dns: localhost, ips: loopback,
		eku: x509.ExtKeyUsageServerAuth, life: 90 * 24 * time.Hour}); err != nil {
		return nil, err
	}
	if d.Client, err = d.leaf(DevClientFile, DevClientKeyFile, leafSpec{cn: "demo-client",
		uri: "spiffe://warden.demo/client/demo", eku: x509.ExtKeyUsageClientAuth, life: 90 * 24 * time.Hour}); err != nil {
		return nil, err
	}
	if d.Upstream, err = d.leaf(DevUpstreamFile, DevUpstreamKey, leafSpec{cn: "demo-upstream", dns: localhost, ips: loopback,
		eku: x509.ExtKeyUsageServerAuth, life: 90 * 24 * time.Hour}); err != nil {
		return nil, err
	}
	backup, err := loadOrCreateKey(filepath.Join(dir, DevBackupKeyFile))
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(backup.Public())
	if err != nil {
		return nil, fmt.Errorf("backup key: %w", err)
	}
	d.BackupPin = pinOfSPKI(spki)
	return d, nil
}

func (d *DevPKI) loadOrCreateCA() error {
	certPath, keyPath := filepath.Join(d.Dir, DevCAFile), filepath.Join(d.Dir, DevCAKeyFile)
	cert, key, err := loadPair(certPath, keyPath)
	if err == nil && time.Until(cert.NotAfter) > 30*24*time.Hour {
		d.CA, d.caKey = cert, key
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("load demo CA from %s: %w (delete the folder to start afresh)", d.Dir, err)
	}
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: "Warden Demo CA", Organization: []string{"Warden demo (not for production)"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(5 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		// A dev CA that could sign for any name would be a MITM kit if
		// it leaked into a trust store; it may only sign for local names.
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         []string{"localhost", ".localhost", "warden.demo"},
		PermittedIPRanges: []*net.IPNet{
			{IP: net.IPv4(127, 0, 0, 0).To4(), Mask: net.CIDRMask(8, 32)},
			{IP: net.IPv6loopback, Mask: net.CIDRMask(128, 128)},
		},
		PermittedURIDomains: []string{"warden.demo"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("create demo CA: %w", err)
	}
	if d.CA, err = x509.ParseCertificate(der); err != nil {
		return err
	}
	d.caKey = key
	if err := writeKey(keyPath, key); err != nil {
		return err
	}
	if err := writePEM(certPath, 0o644, d.CA.Raw); err != nil {
		return err
	}
	// Leaves signed by an older CA would not verify: re-issue them all.
	for _, f := range []string{DevServerFile, DevClientFile, DevUpstreamFile} {
		_ = os.Remove(filepath.Join(d.Dir, f))
	}
	return nil
}

type leafSpec struct {
	cn   string
	dns  []string
	ips  []net.IP
	uri  string
	eku  x509.ExtKeyUsage
	life time.Duration
}

func (d *DevPKI) leaf(certName, keyName string, s leafSpec) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(d.Dir, certName), filepath.Join(d.Dir, keyName)
	if cert, key, err := loadPair(certPath, keyPath); err == nil && time.Until(cert.NotAfter) > renewBefore &&
		cert.CheckSignatureFrom(d.CA) == nil {
		return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}, nil
	}
	key, err := loadOrCreateKey(keyPath)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: s.cn, Organization: []string{"Warden demo"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(s.life),
		DNSNames:              s.dns,
		IPAddresses:           s.ips,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{s.eku},
		BasicConstraintsValid: true,
	}
	if s.uri != "" {
		u, err := url.Parse(s.uri)
		if err != nil {
			return tls.Certificate{}, err
		}
		tmpl.URIs = []*url.URL{u}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, d.CA, key.Public(), d.caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issue %s: %w", certName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := writePEM(certPath, 0o644, der); err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, nil
}

func pinOfSPKI(spki []byte) Pin { return sha256.Sum256(spki) }

func randSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n.Add(n, big.NewInt(1))
}

func loadPair(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		if _, statErr := os.Stat(certPath); errors.Is(statErr, fs.ErrNotExist) {
			return nil, nil, statErr
		}
		if _, statErr := os.Stat(keyPath); errors.Is(statErr, fs.ErrNotExist) {
			return nil, nil, statErr
		}
		return nil, nil, err
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("%s: key cannot sign", keyPath)
	}
	return pair.Leaf, signer, nil
}

func loadOrCreateKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		b, _ := pem.Decode(data)
		if b == nil {
			return nil, fmt.Errorf("%s holds no PEM key", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse key %s: %w", path, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: key cannot sign", path)
		}
		return s, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read key: %w", err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return k, writeKey(path, k)
}

func writeKey(path string, k crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return fmt.Errorf("marshal key: %w", err)
	}
	return WriteFileAtomic(path, 0o600, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func writePEM(path string, mode os.FileMode, der []byte) error {
	return WriteFileAtomic(path, mode, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// WriteFileAtomic writes data to path with mode through a synced
// temporary file in the same folder and a rename, so a reader (or a crash)
// never sees half a file; the folder is then synced (best effort), so that
// the rename itself survives a crash.
func WriteFileAtomic(path string, mode os.FileMode, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
