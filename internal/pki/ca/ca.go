package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardengw/warden/internal/store"
)

// Defaults for the zero values of Config.
const (
	DefaultClientLifetime = 24 * time.Hour
	DefaultServerLifetime = 90 * 24 * time.Hour
	DefaultCRLValidity    = 24 * time.Hour
	DefaultOCSPValidity   = time.Hour
)

// Bounds of what Issue accepts.
const (
	// MinRSABits and MaxRSABits bound a requester's RSA key (the upper
	// bound caps the cost of verifying the CSR).
	MinRSABits = 2048
	MaxRSABits = 8192
	// MaxCSRBytes bounds a CSR, PEM or DER.
	MaxCSRBytes = 64 << 10
	// MaxSANs bounds the names in one certificate.
	MaxSANs = 100
	// backdate is how far before now a certificate's NotBefore is set, for
	// peers whose clocks lag.
	backdate = 5 * time.Minute
)

// Profile is what an issued certificate is for.
type Profile string

// Profiles.
const (
	ProfileClient Profile = "client" // EKU clientAuth; default lifetime 24h
	ProfileServer Profile = "server" // EKU serverAuth; default lifetime 90 days
)

// Records is where the CA records what it issues and revokes;
// *store.Store satisfies it. Issue returns a certificate only after
// RecordIssued returned nil.
type Records interface {
	RecordIssued(ctx context.Context, c store.IssuedCert) error
	IssuedCert(ctx context.Context, serial string) (store.IssuedCert, error)
	RevokeIssued(ctx context.Context, serial string, reason int, at time.Time) error
	ListIssued(ctx context.Context, issuer string, limit int) ([]store.IssuedCert, error)
	RevokedList(ctx context.Context, issuer string) ([]store.IssuedCert, error)
	NextCRLNumber(ctx context.Context, issuer string) (int64, error)
	RevocationGeneration(ctx context.Context, issuer string) (int64, error)
}

var _ Records = (*store.Store)(nil)

// Config configures a loaded CA. Zero values mean the defaults above.
type Config struct {
	// Records is required.
	Records Records
	// PublishURL is the base URL of the gateway's publishing endpoint
	// (see Publisher.Handler): issued certificates name <PublishURL>/crl
	// as CRL distribution point and <PublishURL>/ocsp as OCSP responder.
	// Empty means the publish_url of ca.json; Issue refuses to issue
	// without one, since such certificates could not be revoked.
	PublishURL string
	// ClientLifetime and ServerLifetime are the default lifetimes of the
	// profiles.
	ClientLifetime time.Duration
	ServerLifetime time.Duration
	// CRLValidity is nextUpdate - thisUpdate of a CRL.
	CRLValidity time.Duration
	// OCSPValidity is nextUpdate - thisUpdate of an OCSP response.
	OCSPValidity time.Duration
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// CA is a loaded intermediate CA, able to issue and revoke. It is safe for
// concurrent use.
type CA struct {
	// Root and Intermediate are the CA certificates.
	Root         *x509.Certificate
	Intermediate *x509.Certificate
	// IssuerID identifies the intermediate in the records: the lowercase
	// hex SHA-256 of its SubjectPublicKeyInfo.
	IssuerID string

	key   crypto.Signer
	cfg   Config
	roots *x509.CertPool
	inter *x509.CertPool

	mu        sync.Mutex
	listeners map[int]func() // called after each revocation (publishers, renewals), by OnRevoke's id
	nextID    int

	revoked  atomic.Pointer[revokedSet] // see CertStatus
	reloadMu sync.Mutex                 // one re-read of the revoked set at a time
	knownMu  sync.RWMutex
	known    map[string]struct{} // serials known to be issued by this CA
}

// Load loads the CA of dir (its certificates, the intermediate's key,
// decrypted with passphrase if encrypted, and ca.json) with cfg.
func Load(dir string, passphrase []byte, cfg Config) (*CA, error) {
	if cfg.Records == nil {
		return nil, errors.New("ca: no records")
	}
	for name, d := range map[string]time.Duration{"client lifetime": cfg.ClientLifetime, "server lifetime": cfg.ServerLifetime,
		"CRL validity": cfg.CRLValidity, "OCSP validity": cfg.OCSPValidity} {
		if d < 0 {
			return nil, fmt.Errorf("ca: %s %v: must not be negative", name, d)
		}
	}
	var fc fileConfig
	if b, err := os.ReadFile(filepath.Join(dir, ConfigFile)); err != nil {
		return nil, fmt.Errorf("ca: %w (is %s a CA folder made by `warden ca init`?)", err, dir)
	} else if err := json.Unmarshal(b, &fc); err != nil {
		return nil, fmt.Errorf("ca: %s: %w", ConfigFile, err)
	}
	if cfg.PublishURL == "" {
		cfg.PublishURL = fc.PublishURL
	}
	cfg.PublishURL = strings.TrimSuffix(cfg.PublishURL, "/")
	if cfg.PublishURL != "" {
		if err := checkPublishURL(cfg.PublishURL); err != nil {
			return nil, fmt.Errorf("ca: %w", err)
		}
	}
	cfg = cfg.withDefaults()
	root, inter, err := LoadCertificates(dir)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, IntermediateKeyFile))
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	key, err := decodeKey(keyPEM, passphrase)
	if err != nil {
		return nil, fmt.Errorf("ca: %s: %w", IntermediateKeyFile, err)
	}
	if !publicKeyEqual(key.Public(), inter.PublicKey) {
		return nil, fmt.Errorf("ca: %s does not match %s", IntermediateKeyFile, IntermediateCertFile)
	}
	c := &CA{Root: root, Intermediate: inter, IssuerID: IssuerID(inter), key: key, cfg: cfg,
		roots: x509.NewCertPool(), inter: x509.NewCertPool(), known: map[string]struct{}{}}
	c.roots.AddCert(root)
	c.inter.AddCert(inter)
	return c, nil
}

func (c Config) withDefaults() Config {
	if c.ClientLifetime == 0 {
		c.ClientLifetime = DefaultClientLifetime
	}
	if c.ServerLifetime == 0 {
		c.ServerLifetime = DefaultServerLifetime
	}
	if c.CRLValidity == 0 {
		c.CRLValidity = DefaultCRLValidity
	}
	if c.OCSPValidity == 0 {
		c.OCSPValidity = DefaultOCSPValidity
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Config returns the CA's configuration, defaults filled in.
func (c *CA) Config() Config { return c.cfg }

// Chain returns the intermediate and the root, PEM: what a client or
// server sends after its own certificate (minus the root) and trusts.
func (c *CA) Chain() []byte { return append(certPEM(c.Intermediate), certPEM(c.Root)...) }

// LoadCertificates reads the root and intermediate certificates of the CA
// in dir (no key), checking that the root signed the intermediate.
func LoadCertificates(dir string) (root, inter *x509.Certificate, err error) {
	if root, err = readCert(filepath.Join(dir, RootCertFile)); err != nil {
		return nil, nil, err
	}
	if inter, err = readCert(filepath.Join(dir, IntermediateCertFile)); err != nil {
		return nil, nil, err
	}
	if err := inter.CheckSignatureFrom(root); err != nil {
		return nil, nil, fmt.Errorf("ca: intermediate not signed by the root: %w", err)
	}
	return root, inter, nil
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	p, _ := pem.Decode(b)
	if p == nil || p.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("ca: %s: no CERTIFICATE PEM block", path)
	}
	cert, err := x509.ParseCertificate(p.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca: %s: %w", path, err)
	}
	return cert, nil
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// IssuerID is how the records name the CA whose certificate is c: the
// lowercase hex SHA-256 of its SubjectPublicKeyInfo.
func IssuerID(c *x509.Certificate) string {
	s := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(s[:])
}

// SerialString is the form of a serial in the records, the CLI and the
// admin API: lowercase hex without leading zeros.
func SerialString(n *big.Int) string { return n.Text(16) }

// ParseSerial parses a serial in hex, with or without colons or a 0x
// prefix, as `openssl x509 -serial` and browsers print them.
func ParseSerial(s string) (*big.Int, error) {
	h := strings.ToLower(strings.NewReplacer(":", "", " ", "").Replace(strings.TrimSpace(s)))
	h = strings.TrimPrefix(h, "0x")
	n, ok := new(big.Int).SetString(h, 16)
	if !ok || n.Sign() <= 0 || n.BitLen() > 160 {
		return nil, fmt.Errorf("serial %q: want a positive hex number of at most 20 bytes", s)
	}
	return n, nil
}

// IssueRequest asks for a certificate.
type IssueRequest struct {
	// CSR is a PKCS#10 request, PEM ("CERTIFICATE REQUEST") or DER. Its
	// SANs and common name are certified; everything else it asks for
	// (extensions, other subject attributes) is ignored.
	CSR []byte
	// Profile is ProfileClient or ProfileServer.
	Profile Profile
	// Lifetime overrides the profile's default; it is capped at the
	// intermediate's NotAfter.
	Lifetime time.Duration
}

// RequestError reports a request the CA refuses (malformed CSR, bad
// signature, forbidden key type, bad profile). Nothing is issued or
// recorded. A *NameError reports a refused name.
type RequestError struct {
	Reason string
	Err    error
}

func (e *RequestError) Error() string {
	if e.Err == nil {
		return "certificate request refused: " + e.Reason
	}
	return fmt.Sprintf("certificate request refused: %s: %v", e.Reason, e.Err)
}

func (e *RequestError) Unwrap() error { return e.Err }

func refuse(reason string, err error) error { return &RequestError{Reason: reason, Err: err} }

// ParseCSR parses a PEM or DER certificate request and checks its
// signature (proof that the requester holds the private key).
func ParseCSR(data []byte) (*x509.CertificateRequest, error) {
	if len(data) > MaxCSRBytes {
		return nil, refuse(fmt.Sprintf("CSR larger than %d bytes", MaxCSRBytes), nil)
	}
	der := data
	if p, _ := pem.Decode(data); p != nil {
		if p.Type != "CERTIFICATE REQUEST" && p.Type != "NEW CERTIFICATE REQUEST" {
			return nil, refuse(fmt.Sprintf("PEM block %q is not a CERTIFICATE REQUEST", p.Type), nil)
		}
		der = p.Bytes
	}
	req, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, refuse("malformed CSR", err)
	}
	if err := checkKey(req.PublicKey); err != nil {
		return nil, err
	}
	if err := req.CheckSignature(); err != nil {
		return nil, refuse("CSR signature does not verify", err)
	}
	return req, nil
}

// checkKey allows ECDSA P-256 and P-384, Ed25519, and RSA of MinRSABits to
// MaxRSABits.
func checkKey(pub any) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return nil
		}
		return refuse(fmt.Sprintf("key type ECDSA %s not allowed (P-256 or P-384)", k.Curve.Params().Name), nil)
	case ed25519.PublicKey:
		return nil
	case *rsa.PublicKey:
		if b := k.N.BitLen(); b < MinRSABits || b > MaxRSABits {
			return refuse(fmt.Sprintf("key type RSA-%d not allowed (%d to %d bits)", b, MinRSABits, MaxRSABits), nil)
		}
		return nil
	}
	return refuse(fmt.Sprintf("key type %T not allowed (ECDSA P-256/P-384, Ed25519, RSA ≥ %d)", pub, MinRSABits), nil)
}

// Issue issues a certificate from req: it checks the CSR, its key type and
// every name against the CA's constraints before signing, signs, verifies
// the result chains to the root under the constraints, records it, and
// only then returns it. An error means nothing was returned or recorded.
func (c *CA) Issue(ctx context.Context, req IssueRequest) (*x509.Certificate, error) {
	var life time.Duration
	var eku x509.ExtKeyUsage
	switch req.Profile {
	case ProfileClient:
		life, eku = c.cfg.ClientLifetime, x509.ExtKeyUsageClientAuth
	case ProfileServer:
		life, eku = c.cfg.ServerLifetime, x509.ExtKeyUsageServerAuth
	default:
		return nil, refuse(fmt.Sprintf("profile %q: want %q or %q", req.Profile, ProfileClient, ProfileServer), nil)
	}
	if req.Lifetime < 0 {
		return nil, refuse("negative lifetime", nil)
	}
	if req.Lifetime > 0 {
		life = req.Lifetime
	}
	if c.cfg.PublishURL == "" {
		return nil, errors.New("ca: no publish URL: certificates would name no CRL or OCSP responder and could not be revoked")
	}
	csr, err := ParseCSR(req.CSR)
	if err != nil {
		return nil, err
	}
	ns, err := checkNames(csr, constraintsOf(c.Intermediate), req.Profile)
	if err != nil {
		return nil, err
	}
	switch {
	case ns.count() > MaxSANs:
		return nil, refuse(fmt.Sprintf("%d names, at most %d", ns.count(), MaxSANs), nil)
	case req.Profile == ProfileServer && len(ns.dns)+len(ns.ips) == 0:
		return nil, refuse("a server certificate needs a DNS or IP name", nil)
	case ns.count() == 0 && csr.Subject.CommonName == "":
		return nil, refuse("no name: neither a SAN nor a common name", nil)
	}
	now := c.cfg.Now()
	notBefore := now.Add(-backdate).Truncate(time.Second)
	if notBefore.Before(c.Intermediate.NotBefore) {
		notBefore = c.Intermediate.NotBefore
	}
	notAfter := now.Add(life).Truncate(time.Second)
	if notAfter.After(c.Intermediate.NotAfter) {
		notAfter = c.Intermediate.NotAfter
	}
	if !notAfter.After(now) {
		return nil, errors.New("ca: the intermediate has expired")
	}
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: csr.Subject.CommonName},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{eku},
		BasicConstraintsValid: true,
		DNSNames:              ns.dns,
		IPAddresses:           ns.ips,
		URIs:                  ns.uris,
		EmailAddresses:        ns.emails,
		CRLDistributionPoints: []string{c.CRLURL()},
	}
	if u := c.OCSPURL(); u != "" {
		tmpl.OCSPServer = []string{u}
	}
	cert, err := sign(tmpl, c.Intermediate, csr.PublicKey, c.key)
	if err != nil {
		return nil, fmt.Errorf("ca: sign: %w", err)
	}
	// Belt and braces: what crypto/x509 would say of it, name constraints
	// included. A certificate that fails is never recorded or returned.
	if _, err := cert.Verify(x509.VerifyOptions{Roots: c.roots, Intermediates: c.inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{eku}}); err != nil {
		return nil, fmt.Errorf("ca: issued certificate does not verify, discarded: %w", err)
	}
	rec := store.IssuedCert{
		Serial: SerialString(cert.SerialNumber), Issuer: c.IssuerID, Subject: cert.Subject.String(), SANs: ns.list(),
		Profile: string(req.Profile), NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, IssuedAt: now, PEM: certPEM(cert),
	}
	if err := c.cfg.Records.RecordIssued(ctx, rec); err != nil {
		return nil, fmt.Errorf("ca: record certificate %s (not issued): %w", rec.Serial, err)
	}
	return cert, nil
}

// CRLURL is the CRL distribution point issued certificates name.
func (c *CA) CRLURL() string { return c.cfg.PublishURL + "/crl" }

// OCSPURL is the OCSP responder issued certificates name; empty for an
// Ed25519 CA, which has no OCSP responder (x/crypto/ocsp cannot sign with
// Ed25519), so that checkers use the CRL.
func (c *CA) OCSPURL() string {
	if _, ok := c.key.Public().(ed25519.PublicKey); ok {
		return ""
	}
	return c.cfg.PublishURL + "/ocsp"
}

// OnRevoke registers f, called when this CA learns of a revocation: one it
// records, or one another process recorded, seen at the next status read.
// f must not block. stop unregisters it.
func (c *CA) OnRevoke(f func()) (stop func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.listeners == nil {
		c.listeners = map[int]func(){}
	}
	c.nextID++
	id := c.nextID
	c.listeners[id] = f
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.listeners, id)
	}
}
