package ca

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Names of the files in a CA folder. The root key is only needed to make a
// new intermediate: it can be moved offline after Init; Load never reads
// it.
const (
	RootCertFile         = "root.pem"
	RootKeyFile          = "root-key.pem"
	IntermediateCertFile = "intermediate.pem"
	IntermediateKeyFile  = "intermediate-key.pem"
	ConfigFile           = "ca.json"
)

// Lifetimes of the CA certificates.
const (
	RootLifetime         = 10 * 365 * 24 * time.Hour
	IntermediateLifetime = 5 * 365 * 24 * time.Hour
)

// MinPassphraseLen is the shortest passphrase Init accepts.
const MinPassphraseLen = 12

// InitOptions describe a new CA. The zero value is an ECDSA P-256 CA named
// "Warden", without name constraints, with keys in the clear.
type InitOptions struct {
	// KeyType of the root and the intermediate; KeyECDSAP256 if empty.
	KeyType KeyType
	// Name prefixes the CAs' common names ("<Name> Root CA", "<Name>
	// Intermediate CA") and is their organization. Default "Warden".
	Name string
	// Name constraints of the intermediate (critical). Empty lists put no
	// constraint on that name type; if any list is set, Issue refuses a
	// SAN of a type whose list is empty (a constrained CA issues only the
	// names it was constrained to). A domain "example.com" permits it and
	// its subdomains, ".example.com" only its subdomains (RFC 5280).
	PermittedDNSDomains     []string
	PermittedURIDomains     []string
	PermittedIPRanges       []*net.IPNet
	PermittedEmailAddresses []string
	// PublishURL is the default base URL of the gateway's CRL and OCSP
	// publishing endpoint, recorded in ca.json (see Config.PublishURL).
	PublishURL string
	// Passphrase, if not empty, encrypts both keys (see
	// EncryptedKeyPEMType). At least MinPassphraseLen bytes.
	Passphrase []byte
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// fileConfig is ca.json.
type fileConfig struct {
	PublishURL string    `json:"publish_url,omitempty"`
	KeyType    KeyType   `json:"key_type"`
	Created    time.Time `json:"created"`
	Encrypted  bool      `json:"encrypted"`
}

// Validate reports every problem with o in one error.
func (o InitOptions) Validate() error {
	var errs []error
	if _, err := generateKeyCheck(o.KeyType); err != nil {
		errs = append(errs, err)
	}
	for _, d := range o.PermittedDNSDomains {
		if err := checkDomainConstraint(d); err != nil {
			errs = append(errs, fmt.Errorf("permitted DNS domain %q: %w", d, err))
		}
	}
	for _, d := range o.PermittedURIDomains {
		if err := checkDomainConstraint(d); err != nil {
			errs = append(errs, fmt.Errorf("permitted URI domain %q: %w", d, err))
		}
	}
	for _, e := range o.PermittedEmailAddresses {
		if err := checkEmailConstraint(e); err != nil {
			errs = append(errs, fmt.Errorf("permitted email %q: %w", e, err))
		}
	}
	for _, n := range o.PermittedIPRanges {
		if n == nil || (len(n.IP) != net.IPv4len && len(n.IP) != net.IPv6len) || len(n.IP) != len(n.Mask) {
			errs = append(errs, fmt.Errorf("permitted IP range %v: want an IPv4 or IPv6 CIDR", n))
		}
	}
	if o.PublishURL != "" {
		if err := checkPublishURL(o.PublishURL); err != nil {
			errs = append(errs, err)
		}
	}
	if len(o.Passphrase) > 0 && len(o.Passphrase) < MinPassphraseLen {
		errs = append(errs, fmt.Errorf("passphrase: %d bytes, want at least %d", len(o.Passphrase), MinPassphraseLen))
	}
	return errors.Join(errs...)
}

func generateKeyCheck(kt KeyType) (KeyType, error) {
	switch kt {
	case "", KeyECDSAP256:
		return KeyECDSAP256, nil
	case KeyEd25519, KeyRSA3072:
		return kt, nil
	}
	return "", fmt.Errorf("key type %q: want %s, %s or %s", kt, KeyECDSAP256, KeyEd25519, KeyRSA3072)
}

func checkPublishURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("publish URL %q: want an absolute http(s) URL without user, query or fragment", s)
	}
	return nil
}

// Init creates a CA in dir: a self-signed root (RootLifetime) and an
// intermediate it signs (IntermediateLifetime, path length zero, the name
// constraints of opts), their keys (PKCS#8 PEM, mode 0600, encrypted if
// opts has a passphrase) and ca.json. It refuses to touch a folder that
// already holds any CA file.
func Init(dir string, opts InitOptions) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	kt, _ := generateKeyCheck(opts.KeyType)
	if opts.Name == "" {
		opts.Name = "Warden"
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create CA folder: %w", err)
	}
	for _, f := range []string{RootCertFile, RootKeyFile, IntermediateCertFile, IntermediateKeyFile, ConfigFile} {
		if _, err := os.Lstat(filepath.Join(dir, f)); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s already holds a CA (%s): refusing to overwrite it", dir, f)
		}
	}
	t := now().UTC().Truncate(time.Second)
	rootKey, err := generateKey(kt)
	if err != nil {
		return fmt.Errorf("generate root key: %w", err)
	}
	interKey, err := generateKey(kt)
	if err != nil {
		return fmt.Errorf("generate intermediate key: %w", err)
	}
	org := []string{opts.Name}
	rootTmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: opts.Name + " Root CA", Organization: org},
		NotBefore:             t.Add(-time.Hour),
		NotAfter:              t.Add(RootLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            1,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	root, err := sign(rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return fmt.Errorf("create root: %w", err)
	}
	interTmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: opts.Name + " Intermediate CA", Organization: org},
		NotBefore:             t.Add(-time.Hour),
		NotAfter:              t.Add(IntermediateLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		// DigitalSignature: it signs OCSP responses itself.
		KeyUsage:                    x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         lower(opts.PermittedDNSDomains),
		PermittedURIDomains:         lower(opts.PermittedURIDomains),
		PermittedIPRanges:           opts.PermittedIPRanges,
		PermittedEmailAddresses:     opts.PermittedEmailAddresses,
	}
	inter, err := sign(interTmpl, root, interKey.Public(), rootKey)
	if err != nil {
		return fmt.Errorf("create intermediate: %w", err)
	}
	rootPEM, err := encodeKey(rootKey, opts.Passphrase)
	if err != nil {
		return err
	}
	interPEM, err := encodeKey(interKey, opts.Passphrase)
	if err != nil {
		return err
	}
	cfg, err := json.MarshalIndent(fileConfig{PublishURL: opts.PublishURL, KeyType: kt, Created: t, Encrypted: len(opts.Passphrase) > 0}, "", "  ")
	if err != nil {
		return err
	}
	// Keys first, certificates after, ca.json last: a folder with
	// ca.json is complete.
	for _, f := range []struct {
		name string
		mode os.FileMode
		data []byte
	}{
		{RootKeyFile, 0o600, rootPEM},
		{IntermediateKeyFile, 0o600, interPEM},
		{RootCertFile, 0o644, certPEM(root)},
		{IntermediateCertFile, 0o644, certPEM(inter)},
		{ConfigFile, 0o644, append(cfg, '\n')},
	} {
		if err := writeFileExcl(filepath.Join(dir, f.name), f.mode, f.data); err != nil {
			return err
		}
	}
	return nil
}

func sign(tmpl, parent *x509.Certificate, pub any, key crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// newSerial returns a random positive 128-bit serial number.
func newSerial() *big.Int {
	b := make([]byte, 16)
	for {
		_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
		if n := new(big.Int).SetBytes(b); n.Sign() > 0 {
			return n
		}
	}
}

func lower(ss []string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}
