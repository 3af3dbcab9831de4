package ca

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/wardengw/warden/internal/store"
)

// Reasons maps the RFC 5280 §5.3.1 CRLReason names Revoke accepts to their
// codes. certificateHold and removeFromCRL are left out: revocation here
// is final.
var Reasons = map[string]int{
	"unspecified":          0,
	"keyCompromise":        1,
	"cACompromise":         2,
	"affiliationChanged":   3,
	"superseded":           4,
	"cessationOfOperation": 5,
	"privilegeWithdrawn":   9,
	"aACompromise":         10,
}

// ParseReason returns the code of an RFC 5280 reason name (case-insensitive).
func ParseReason(name string) (int, error) {
	for n, code := range Reasons {
		if strings.EqualFold(n, name) {
			return code, nil
		}
	}
	names := make([]string, 0, len(Reasons))
	for n := range Reasons {
		names = append(names, n)
	}
	sort.Strings(names)
	return 0, fmt.Errorf("revocation reason %q: want one of %s", name, strings.Join(names, ", "))
}

// ErrNotIssued is returned when revoking a serial this CA did not issue.
var ErrNotIssued = errors.New("no certificate with this serial was issued by this CA")

// Revoke records the revocation of the certificate with serial, now, for
// reason (a name of Reasons), and tells the CA's publishers to publish a
// new CRL and fresh OCSP answers. It returns store.ErrAlreadyRevoked if
// it was revoked before (the first revocation stands).
func (c *CA) Revoke(ctx context.Context, serial *big.Int, reason string) error {
	if err := RevokeRecord(ctx, c.cfg.Records, c.IssuerID, serial, reason, c.cfg.Now()); err != nil {
		return err
	}
	c.notify()
	return nil
}

// RevokeRecord records the revocation of serial, issued by the CA whose
// IssuerID is issuerID, at time at, without the CA's key: what `warden ca
// revoke` does. Publishers sharing the records see it on their next
// Refresh.
func RevokeRecord(ctx context.Context, recs Records, issuerID string, serial *big.Int, reason string, at time.Time) error {
	code, err := ParseReason(reason)
	if err != nil {
		return err
	}
	s := SerialString(serial)
	rec, err := recs.IssuedCert(ctx, s)
	if errors.Is(err, store.ErrNotFound) || err == nil && rec.Issuer != issuerID {
		return fmt.Errorf("revoke %s: %w", s, ErrNotIssued)
	}
	if err != nil {
		return fmt.Errorf("revoke %s: %w", s, err)
	}
	if err := recs.RevokeIssued(ctx, s, code, at); err != nil {
		return fmt.Errorf("revoke %s: %w", s, err)
	}
	return nil
}

// CRL returns a new complete CRL of the intermediate, DER, listing every
// revoked certificate it issued: thisUpdate now, nextUpdate now +
// CRLValidity, and the next CRL number from the records (strictly
// increasing, persisted). A Publisher caches it.
func (c *CA) CRL(ctx context.Context) (*x509.RevocationList, []byte, error) {
	revoked, err := c.cfg.Records.RevokedList(ctx, c.IssuerID)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: CRL: %w", err)
	}
	return c.signCRL(ctx, revoked)
}

func (c *CA) signCRL(ctx context.Context, revoked []store.IssuedCert) (*x509.RevocationList, []byte, error) {
	num, err := c.cfg.Records.NextCRLNumber(ctx, c.IssuerID)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: CRL number: %w", err)
	}
	now := c.cfg.Now().UTC().Truncate(time.Second)
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(num),
		ThisUpdate: now,
		NextUpdate: now.Add(c.cfg.CRLValidity),
	}
	for _, r := range revoked {
		n, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return nil, nil, fmt.Errorf("ca: CRL: record with serial %q", r.Serial)
		}
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber: n, RevocationTime: r.RevokedAt.UTC(), ReasonCode: r.Reason,
		})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, c.Intermediate, c.key)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: sign CRL: %w", err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, nil, err
	}
	return crl, der, nil
}
