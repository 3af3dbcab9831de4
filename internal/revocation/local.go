package revocation

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"math/big"
	"time"

	"github.com/wardengw/warden/internal/policy"
)

// SourceLocal is the RevokedError.Source of a revocation an Authority
// reported.
const SourceLocal = "local_ca"

// Authority is a revocation source the gateway operates itself (its
// internal CA, *ca.CA): it knows every certificate it issued and every
// revocation as soon as it is recorded.
type Authority interface {
	// Issuer is the CA certificate whose certificates the authority
	// decides; it is matched by SubjectPublicKeyInfo, not by name.
	Issuer() *x509.Certificate
	// CertStatus reports whether the authority issued the certificate
	// with serial and whether (revokedAt non-zero) and why it was
	// revoked, as of now. An error means the status cannot be read.
	CertStatus(ctx context.Context, serial *big.Int) (issued bool, revokedAt time.Time, reason int, err error)
}

// CheckFunc adapts a function to policy.RevocationChecker.
type CheckFunc func(ctx context.Context, chain []*x509.Certificate) error

// CheckChain implements policy.RevocationChecker.
func (f CheckFunc) CheckChain(ctx context.Context, chain []*x509.Certificate) error {
	return f(ctx, chain)
}

// Local is a policy.RevocationChecker that gives the gateway's own CAs the
// last word on their certificates: a certificate of the chain whose issuer
// has the SubjectPublicKeyInfo of an Authority's issuer is decided by that
// authority alone, at every check, with no cache of its own (revoked:
// *RevokedError with Source SourceLocal; not issued by it:
// ReasonLocalUnknown; records unreadable: ReasonLocalUnavailable, which
// hard_fail refuses). Every other certificate of the chain is left to the
// next checker, so certificates of other CAs, even with the same serials
// or issuer names, are not affected.
type Local struct {
	next  policy.RevocationChecker
	auths []localAuthority
}

type localAuthority struct {
	spki []byte
	a    Authority
}

var _ policy.RevocationChecker = (*Local)(nil)

// NewLocal returns a Local consulting auths first and next for the rest.
func NewLocal(next policy.RevocationChecker, auths ...Authority) (*Local, error) {
	if next == nil {
		return nil, errors.New("revocation: local authorities need a next checker")
	}
	l := &Local{next: next}
	for _, a := range auths {
		if a == nil || a.Issuer() == nil {
			return nil, errors.New("revocation: local authority without an issuer certificate")
		}
		l.auths = append(l.auths, localAuthority{spki: a.Issuer().RawSubjectPublicKeyInfo, a: a})
	}
	return l, nil
}

// CheckChain implements policy.RevocationChecker, with the chain rule of
// Checker.CheckChain: chain is verified, leaf first; a revoked certificate
// anywhere wins over an unavailable status elsewhere.
func (l *Local) CheckChain(ctx context.Context, chain []*x509.Certificate) error {
	local := false
	for i := 1; i < len(chain) && !local; i++ {
		local = l.authorityOf(chain[i]) != nil
	}
	if !local {
		return l.next.CheckChain(ctx, chain)
	}
	var firstUnavailable error
	for i := 0; i+1 < len(chain); i++ {
		var err error
		if a := l.authorityOf(chain[i+1]); a != nil {
			err = localStatus(ctx, a, chain[i])
		} else {
			err = l.next.CheckChain(ctx, chain[i:i+2])
		}
		if err != nil && isRevoked(err) {
			return err
		}
		if firstUnavailable == nil {
			firstUnavailable = err
		}
	}
	return firstUnavailable
}

func (l *Local) authorityOf(issuer *x509.Certificate) Authority {
	for _, a := range l.auths {
		if bytes.Equal(a.spki, issuer.RawSubjectPublicKeyInfo) {
			return a.a
		}
	}
	return nil
}

func localStatus(ctx context.Context, a Authority, cert *x509.Certificate) error {
	issued, at, reason, err := a.CertStatus(ctx, cert.SerialNumber)
	switch {
	case err != nil:
		return &UnavailableError{Reason: ReasonLocalUnavailable, Cause: err}
	case !at.IsZero():
		return revoked(cert.SerialNumber, reason, at, SourceLocal)
	case !issued:
		return unavailable(ReasonLocalUnknown, "certificate serial %s: signed by the gateway's own CA %q, which has no record of it",
			cert.SerialNumber.Text(16), a.Issuer().Subject)
	}
	return nil
}
