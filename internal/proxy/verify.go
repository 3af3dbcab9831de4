package proxy

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wardengw/warden/internal/pki"
)

// PinMismatchError is the handshake error when no certificate of the
// upstream's verified chain carries a pinned key. The connection is closed
// before any request byte is sent.
type PinMismatchError struct {
	Upstream  string   // the upstream's name
	Presented []string // SPKI pins of the certificates the upstream presented, leaf first
}

// Error implements error.
func (e *PinMismatchError) Error() string {
	return fmt.Sprintf("upstream %q: no certificate of the verified chain matches a pinned key (presented %s)",
		e.Upstream, strings.Join(e.Presented, ", "))
}

// verifyPins returns the tls.Config.VerifyConnection hook for pins. It
// runs after crypto/tls verified the chain and hostname, and matches only
// certificates of the verified chains: the presented list may hold any
// extra certificate, such as the real upstream's public one, so matching
// it would let any mis-issued chain through.
func verifyPins(upstream string, pins pki.PinSet) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		for _, chain := range cs.VerifiedChains {
			if pins.MatchChain(chain) {
				return nil
			}
		}
		presented := make([]string, len(cs.PeerCertificates))
		for i, c := range cs.PeerCertificates {
			presented[i] = pki.SPKIPin(c).String()
		}
		return &PinMismatchError{Upstream: upstream, Presented: presented}
	}
}

// Verification sub-reasons reported in the verify_reason audit field.
const (
	verifyExpired          = "expired"
	verifyNotYetValid      = "not_yet_valid"
	verifyHostnameMismatch = "hostname_mismatch"
	verifyUnknownAuthority = "unknown_authority" // untrusted root, missing intermediate
	verifySelfSigned       = "self_signed"
	verifyOther            = "other"
)

// verifyReason names why certificate verification failed, or "" if err is
// not a verification failure.
func verifyReason(err error, now time.Time) string {
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return verifyHostnameMismatch
	}
	if e, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		if e.Reason != x509.Expired {
			return verifyOther
		}
		if e.Cert != nil && now.Before(e.Cert.NotBefore) {
			return verifyNotYetValid
		}
		return verifyExpired
	}
	if e, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		if selfSigned(e.Cert) {
			return verifySelfSigned
		}
		return verifyUnknownAuthority
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return verifyOther
	}
	return ""
}

// selfSigned reports whether c is its own issuer and signed by its own key.
func selfSigned(c *x509.Certificate) bool {
	return c != nil && bytes.Equal(c.RawIssuer, c.RawSubject) &&
		c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}
