package gateway

import (
	"bytes"
	"context"
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
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/pki"
	"github.com/wardengw/warden/internal/pki/ca"
	"github.com/wardengw/warden/internal/tlsserver"
)

// ManagedCertDir is the folder, next to the record store, where the
// gateway keeps the certificates and keys it manages (mode 0700, files
// 0600), so that a restart reuses a certificate still valid.
const ManagedCertDir = config.ManagedCertDir

// Renewal schedule of managed certificates.
const (
	renewRetryMin = time.Minute // first retry after a failed renewal, doubling…
	renewRetryMax = time.Hour   // …up to this
	// renewMaxWait bounds one wait of the renewal loop, so that it reads
	// the clock again at least this often (wall-clock jumps, suspend).
	renewMaxWait = time.Hour
)

// renewAt is when a certificate is renewed: at two thirds of its lifetime.
func renewAt(c *x509.Certificate) time.Time {
	return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) * 2 / 3)
}

// internalCASource is a ManagedCertificate from the internal CA: a key
// generated in the gateway (it never leaves it), a CSR, a certificate
// issued with the server profile and recorded by the CA, kept on disk
// (0600) for restarts and renewed with a new key at two thirds of its
// lifetime.
type internalCASource struct {
	ca    *ca.CA
	spec  config.InternalCACertificate
	path  string // the persisted key and chain
	now   func() time.Time
	log   *slog.Logger
	audit *audit.Logger

	cur atomic.Pointer[tls.Certificate]
	// check asks Run to evaluate its schedule now (the clock may have
	// moved); Run closes the channel it receives once done, a renewal
	// included. Tests drive renewals with it instead of waiting.
	check chan chan struct{}
	// revoked wakes Run when the CA learns of a revocation (buffered: a
	// wake-up is never lost, never blocks the CA).
	revoked chan struct{}
	// failIssues makes the next that many calls of issue fail (tests
	// inject a failed renewal with it).
	failIssues atomic.Int32
}

var _ ManagedCertificate = (*internalCASource)(nil)

// newInternalCASource makes the source of an internal_ca entry and
// obtains its first certificate: the persisted one if it is still good and
// not yet due for renewal, else a new one from the CA.
func (g *Gateway) newInternalCASource(c *config.Config, spec *config.InternalCACertificate) (*internalCASource, error) {
	if g.authority == nil {
		return nil, errors.New("internal_ca certificate: no internal CA loaded (the ca block)")
	}
	now := g.env0Now
	if now == nil {
		now = time.Now
	}
	s := &internalCASource{
		ca: g.authority, spec: *spec, now: now, log: g.log.With("certificate", "internal_ca", "names", spec.Names), audit: g.audit,
		path:  c.InternalCACertPath(g.authority.IssuerID, *spec),
		check: make(chan chan struct{}), revoked: make(chan struct{}, 1),
	}
	stale, err := s.load(g.ctx)
	switch {
	case err == nil && s.now().Before(renewAt(stale.Leaf)):
		s.cur.Store(stale)
		s.log.Info("reusing the persisted certificate", "serial", ca.SerialString(stale.Leaf.SerialNumber), "not_after", stale.Leaf.NotAfter)
		return s, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		s.log.Warn("persisted certificate unusable; a new one is issued", "file", s.path, "err", err)
		stale = nil
	}
	cert, err := s.issue(g.ctx)
	if err != nil {
		if stale == nil {
			return nil, fmt.Errorf("internal_ca certificate for %v: %w", spec.Names, err)
		}
		// Due for renewal but still valid: it serves while Run retries.
		s.log.Warn("renewal at start failed; the persisted certificate serves until it succeeds", "err", err)
		s.cur.Store(stale)
		return s, nil
	}
	s.cur.Store(cert)
	return s, nil
}

// Certificate implements ManagedCertificate.
func (s *internalCASource) Certificate() *tls.Certificate { return s.cur.Load() }

// Run implements ManagedCertificate: it renews at two thirds of the current
// certificate's lifetime; after a failure it retries after renewRetryMin,
// doubling up to renewRetryMax, while the current certificate serves.
// Attempts are at least renewRetryMin apart, so that a certificate cut
// short (by the intermediate's expiry) cannot make it issue in a loop.
func (s *internalCASource) Run(ctx context.Context, renewed func()) {
	// Woken when the CA learns of a revocation, while this source runs
	// (a source a failed reload built never runs, and registers nothing;
	// a revocation before Run is seen by its first status read).
	defer s.ca.OnRevoke(func() {
		select {
		case s.revoked <- struct{}{}:
		default:
		}
	})()
	var failures int
	var notBefore time.Time // no attempt before: back-off, spacing
	var ack chan struct{}
	for {
		cur := s.cur.Load()
		due := renewAt(cur.Leaf)
		if notBefore.After(due) {
			due = notBefore
		}
		now := s.now()
		revokedAt := s.revokedAt(ctx, cur)
		if !revokedAt.IsZero() {
			// A revoked certificate is due now, whatever the spacing, until
			// it is replaced: after a failed attempt, when the back-off ends.
			due = now
			if failures > 0 {
				due = notBefore
			}
		}
		if !now.Before(due) {
			next, err := s.issue(ctx)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				failures++
				wait := min(renewRetryMin<<min(failures-1, 10), renewRetryMax)
				notBefore = now.Add(wait)
				s.failed(cur, err, failures, wait, revokedAt)
			} else {
				failures, notBefore = 0, now.Add(renewRetryMin)
				s.cur.Store(next)
				renewed()
				s.renewed(cur, next, revokedAt)
			}
			continue // the next due time is ahead now
		}
		if ack != nil {
			close(ack)
			ack = nil
		}
		t := time.NewTimer(min(due.Sub(now), renewMaxWait))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case ack = <-s.check:
			t.Stop()
		case <-s.revoked: // perhaps ours: revokedAt will tell
			t.Stop()
		}
	}
}

// checkNow has Run evaluate its schedule at once and returns when it has
// (a due renewal done and served); false if Run is not running.
func (s *internalCASource) checkNow(ctx context.Context) bool {
	ack := make(chan struct{})
	select {
	case s.check <- ack:
	case <-ctx.Done():
		return false
	}
	select {
	case <-ack:
		return true
	case <-ctx.Done():
		return false
	}
}

// revokedAt returns when the CA's records say cur was revoked, zero if it
// is not (or if the records cannot be read: the status is unknown, and the
// schedule goes on; the next check asks again). CertStatus reads the
// records' revocation counter, so a revocation by another process (`warden
// ca revoke`) is seen at the next check.
func (s *internalCASource) revokedAt(ctx context.Context, cur *tls.Certificate) time.Time {
	_, at, _, err := s.ca.CertStatus(ctx, cur.Leaf.SerialNumber)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("revocation status of the served certificate unknown", "serial", ca.SerialString(cur.Leaf.SerialNumber), "err", err)
		}
		return time.Time{}
	}
	return at
}

// renewed says that next replaced old; revokedAt, if not zero, is when old
// was revoked, which is why it was replaced before its time.
func (s *internalCASource) renewed(old, next *tls.Certificate, revokedAt time.Time) {
	serial := ca.SerialString(next.Leaf.SerialNumber)
	ev := audit.Event{Type: "certificate_renewed", Severity: audit.Info, Fields: map[string]any{
		"source": "internal_ca", "names": s.spec.Names, "serial": serial,
		"previous_serial": ca.SerialString(old.Leaf.SerialNumber), "not_after": next.Leaf.NotAfter}}
	if !revokedAt.IsZero() {
		ev.Severity, ev.Reason = audit.Warning, "revoked"
		ev.Detail = "the certificate served was revoked; replaced at once with a new key"
		ev.Fields["revoked_at"] = revokedAt
		s.log.Warn("the served certificate was revoked; renewed with a new key", "serial", serial,
			"previous_serial", ev.Fields["previous_serial"], "revoked_at", revokedAt)
	} else {
		s.log.Info("certificate renewed", "serial", serial, "not_after", next.Leaf.NotAfter)
	}
	s.audit.Emit(ev)
}

// failed says that a renewal failed; revokedAt, if not zero, is when the
// certificate still served was revoked.
func (s *internalCASource) failed(cur *tls.Certificate, err error, failures int, retry time.Duration, revokedAt time.Time) {
	sev := audit.Warning
	if !s.now().Before(cur.Leaf.NotAfter) || !revokedAt.IsZero() {
		sev = audit.Critical // nothing valid is left to serve
	}
	s.log.Error("certificate renewal failed; the current certificate keeps serving", "err", err, "attempt", failures, "retry_in", retry,
		"not_after", cur.Leaf.NotAfter)
	ev := audit.Event{Type: "certificate_renewal_failed", Severity: sev, Reason: "issue_failed", Detail: err.Error(), Fields: map[string]any{
		"source": "internal_ca", "names": s.spec.Names, "serial": ca.SerialString(cur.Leaf.SerialNumber),
		"not_after": cur.Leaf.NotAfter, "attempt": failures, "retry_in": retry.String()}}
	if !revokedAt.IsZero() {
		ev.Fields["revoked_at"] = revokedAt
	}
	s.audit.Emit(ev)
}

// issue generates a key, has the CA issue a server certificate for it
// from a CSR, and persists both (a failure to persist is only logged: the
// certificate serves, a restart issues another).
func (s *internalCASource) issue(ctx context.Context) (*tls.Certificate, error) {
	if n := s.failIssues.Load(); n > 0 && s.failIssues.CompareAndSwap(n, n-1) {
		return nil, errors.New("issue: failure injected by a test")
	}
	key, err := generateManagedKey(s.spec.KeyType)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.CertificateRequest{}
	for _, n := range s.spec.Names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, strings.ToLower(n))
		}
	}
	if len(tmpl.DNSNames) > 0 {
		tmpl.Subject = pkix.Name{CommonName: tmpl.DNSNames[0]}
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	leaf, err := s.ca.Issue(ctx, ca.IssueRequest{CSR: csr, Profile: ca.ProfileServer, Lifetime: s.spec.Lifetime})
	if err != nil {
		return nil, err
	}
	cert := &tls.Certificate{Certificate: [][]byte{leaf.Raw, s.ca.Intermediate.Raw}, PrivateKey: key, Leaf: leaf}
	if err := tlsserver.CheckCertificate(leaf); err != nil {
		return nil, fmt.Errorf("issued certificate: %w", err)
	}
	if err := s.persist(cert); err != nil {
		s.log.Warn("certificate not persisted: a restart will issue another", "file", s.path, "err", err)
	}
	return cert, nil
}

func generateManagedKey(keyType string) (crypto.Signer, error) {
	switch keyType {
	case config.KeyTypeECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case config.KeyTypeEd25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case config.KeyTypeRSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	}
	return nil, fmt.Errorf("key type %q: want %s, %s or %s", keyType, config.KeyTypeECDSAP256, config.KeyTypeEd25519, config.KeyTypeRSA3072)
}

// persist writes the key and the chain to s.path, mode 0600, atomically
// (a reader sees the old file or the new one, never a mix).
func (s *internalCASource) persist(cert *tls.Certificate) error {
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return fmt.Errorf("managed certificate key: %w", err)
	}
	var b bytes.Buffer
	_ = pem.Encode(&b, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	for _, c := range cert.Certificate {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c})
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("managed certificate folder: %w", err)
	}
	return pki.WriteFileAtomic(s.path, 0o600, b.Bytes())
}

// load reads the persisted certificate and checks that it can still be
// served for this entry, as issue would have demanded it: private file,
// key matching, issued by this CA with the server profile (EKU serverAuth
// only, not a CA) for exactly these names with this key type, acceptable
// to tlsserver.CheckCertificate, recorded and not revoked, and valid now.
// Any doubt is an error: a new certificate is issued.
func (s *internalCASource) load(ctx context.Context) (*tls.Certificate, error) {
	fi, err := os.Stat(s.path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("mode %v: the key may have been read by others", fi.Mode().Perm())
	}
	data, err := pki.ReadPEMFile(s.path)
	if err != nil {
		return nil, err
	}
	// SplitManaged refuses any block but the key and certificates, so
	// that X509KeyPair, given the whole file for both, reads exactly them.
	key, chain, err := pki.SplitManaged(data)
	if err != nil {
		return nil, err
	}
	if key == nil || len(chain) == 0 {
		return nil, errors.New("no private key or no certificate")
	}
	cert, err := tls.X509KeyPair(data, data)
	if err != nil {
		return nil, err
	}
	leaf := cert.Leaf
	if leaf == nil { // GODEBUG x509keypairleaf=0
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, err
		}
	}
	if err := leaf.CheckSignatureFrom(s.ca.Intermediate); err != nil {
		return nil, fmt.Errorf("not issued by the internal CA: %w", err)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || len(leaf.UnknownExtKeyUsage) > 0 || leaf.IsCA {
		return nil, fmt.Errorf("not a server certificate (extended key usages %v, CA %v)", leaf.ExtKeyUsage, leaf.IsCA)
	}
	if err := tlsserver.CheckCertificate(leaf); err != nil {
		return nil, err
	}
	// The chain served is the CA's, whatever else the file holds.
	cert.Certificate, cert.Leaf = [][]byte{leaf.Raw, s.ca.Intermediate.Raw}, leaf
	names := slices.Clone(leaf.DNSNames)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	want := make([]string, 0, len(s.spec.Names))
	for _, n := range s.spec.Names {
		if ip := net.ParseIP(n); ip != nil {
			n = ip.String()
		}
		want = append(want, strings.ToLower(n))
	}
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		return nil, fmt.Errorf("names %v, want %v", names, want)
	}
	if kt, ok := keyTypeOf(cert.PrivateKey); !ok || kt != s.spec.KeyType {
		return nil, fmt.Errorf("key type %q, want %q", kt, s.spec.KeyType)
	}
	if now := s.now(); now.Before(leaf.NotBefore) || !now.Before(leaf.NotAfter) {
		return nil, fmt.Errorf("not valid now (%v to %v)", leaf.NotBefore, leaf.NotAfter)
	}
	rec, err := s.ca.Config().Records.IssuedCert(ctx, ca.SerialString(leaf.SerialNumber))
	if err != nil {
		return nil, fmt.Errorf("not in the CA's records: %w", err)
	}
	if rec.Revoked() {
		return nil, errors.New("revoked")
	}
	return &cert, nil
}

func keyTypeOf(k crypto.PrivateKey) (string, bool) {
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		return config.KeyTypeECDSAP256, k.Curve == elliptic.P256()
	case ed25519.PrivateKey:
		return config.KeyTypeEd25519, true
	case *rsa.PrivateKey:
		return config.KeyTypeRSA3072, k.N.BitLen() == 3072
	}
	return "", false
}
