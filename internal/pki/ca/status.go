package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/wardengw/warden/internal/store"
)

// maxKnownIssued bounds the serials CertStatus remembers as issued by this
// CA (a record never stops being one); past it, half are forgotten and
// looked up again.
const maxKnownIssued = 1 << 16

// revokedSet is the CA's revoked serials as the records held them at one
// revocation generation (store.Store.RevocationGeneration).
type revokedSet struct {
	gen int64
	m   map[string]revokedEntry
}

type revokedEntry struct {
	at     time.Time
	reason int
}

// Issuer returns the certificate that signs what this CA issues: the
// intermediate.
func (c *CA) Issuer() *x509.Certificate { return c.Intermediate }

// CertStatus reports, from the records as they are at this moment, whether
// this CA issued the certificate with serial (issued), and whether and
// when it was revoked (revokedAt zero if not). It reads the records'
// revocation generation on every call (one primary-key lookup) and re-reads
// the revoked serials only when it changed, so a revocation recorded by
// this process or any other sharing the records (`warden ca revoke`) is
// seen by the next call, with no other cache in between. An error means
// the records could not be read: the status is unknown, and callers must
// not take it as good.
func (c *CA) CertStatus(ctx context.Context, serial *big.Int) (issued bool, revokedAt time.Time, reason int, err error) {
	if serial == nil || serial.Sign() <= 0 {
		return false, time.Time{}, 0, nil
	}
	set, err := c.revocations(ctx)
	if err != nil {
		return false, time.Time{}, 0, err
	}
	s := SerialString(serial)
	if r, ok := set.m[s]; ok {
		return true, r.at, r.reason, nil
	}
	c.knownMu.RLock()
	_, known := c.known[s]
	c.knownMu.RUnlock()
	if known {
		return true, time.Time{}, 0, nil
	}
	rec, err := c.cfg.Records.IssuedCert(ctx, s)
	switch {
	case errors.Is(err, store.ErrNotFound), err == nil && rec.Issuer != c.IssuerID:
		return false, time.Time{}, 0, nil
	case err != nil:
		return false, time.Time{}, 0, fmt.Errorf("ca: status of %s: %w", s, err)
	case rec.Revoked(): // revoked since the set was read
		return true, rec.RevokedAt, rec.Reason, nil
	}
	c.knownMu.Lock()
	if len(c.known) >= maxKnownIssued {
		for k := range c.known {
			if len(c.known) < maxKnownIssued/2 {
				break
			}
			delete(c.known, k)
		}
	}
	c.known[s] = struct{}{}
	c.knownMu.Unlock()
	return true, time.Time{}, 0, nil
}

// revocations returns the revoked set at the records' current revocation
// generation, re-reading it (and telling the publishers) when the
// generation moved since the last read.
func (c *CA) revocations(ctx context.Context) (*revokedSet, error) {
	gen, err := c.cfg.Records.RevocationGeneration(ctx, c.IssuerID)
	if err != nil {
		return nil, fmt.Errorf("ca: revocation generation: %w", err)
	}
	if s := c.revoked.Load(); s != nil && s.gen >= gen {
		return s, nil
	}
	c.reloadMu.Lock()
	defer c.reloadMu.Unlock()
	if s := c.revoked.Load(); s != nil && s.gen >= gen {
		return s, nil
	}
	// Read after the generation: the set holds at least what gen counts.
	list, err := c.cfg.Records.RevokedList(ctx, c.IssuerID)
	if err != nil {
		return nil, fmt.Errorf("ca: revoked certificates: %w", err)
	}
	s := &revokedSet{gen: gen, m: make(map[string]revokedEntry, len(list))}
	for _, r := range list {
		s.m[r.Serial] = revokedEntry{at: r.RevokedAt, reason: r.Reason}
	}
	// Listeners first: a publisher answering concurrently must not pair
	// the new set with its old cache generation and serve a cached "good"
	// for a serial just revoked.
	c.notify()
	c.revoked.Store(s)
	return s, nil
}

// notify calls the revocation listeners (the publishers).
func (c *CA) notify() {
	c.mu.Lock()
	ls := make([]func(), 0, len(c.listeners))
	for _, f := range c.listeners {
		ls = append(ls, f)
	}
	c.mu.Unlock()
	for _, f := range ls {
		f()
	}
}
