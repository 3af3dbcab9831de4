package mtls

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// Stable reason codes. They are sent to the client (problem+json "reason"),
// recorded in audit events and used as the warden_denies_total label.
const (
	ReasonCertificateRequired   = "client_certificate_required" // no certificate on the connection
	ReasonExpired               = "expired"                     // a certificate of the chain is past its NotAfter
	ReasonNotYetValid           = "not_yet_valid"               // a certificate of the chain is before its NotBefore
	ReasonUnknownCA             = "unknown_ca"                  // no chain to the route's trust bundle (another CA, or an intermediate the client did not send)
	ReasonWrongEKU              = "wrong_eku"                   // not valid for client authentication (extended key usage)
	ReasonWrongKeyUsage         = "wrong_key_usage"             // the leaf's key usage lacks digitalSignature
	ReasonWeakKey               = "weak_key"                    // RSA below the minimum, EC below P-256, or an unsupported key
	ReasonSHA1Signature         = "sha1_signature"              // a SHA-1 or MD5 signature below the trust anchor
	ReasonNameConstraint        = "name_constraint"             // a name outside a CA's name constraints
	ReasonChainTooDeep          = "chain_too_deep"              // more certificates than max_chain_depth
	ReasonInvalidChain          = "invalid_chain"               // any other chain failure (e.g. an issuer that is not a CA)
	ReasonRevoked               = "revoked"                     // the revocation checker knows it revoked
	ReasonRevocationUnavailable = "revocation_unavailable"      // status unknown under hard_fail
	ReasonConnectionTooOld      = "connection_too_old"          // the connection is older than max_connection_age
	ReasonConsumerMismatch      = "consumer_mismatch"           // the certificate names another consumer than an earlier credential
	ReasonNotAuthorized         = "client_not_authorized"       // verified, but no allow rule matches (403)
)

// Error is a refused client certificate. Reason is one of the Reason
// constants; Cert is the certificate at fault when known (the leaf, or an
// intermediate); Err is the cause, for the audit log only.
type Error struct {
	Reason string
	Cert   *x509.Certificate
	Err    error
}

// Error describes the refusal with its cause, for logs; clients get only
// the Reason.
func (e *Error) Error() string {
	if e.Err == nil {
		return "client certificate: " + e.Reason
	}
	return "client certificate: " + e.Reason + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func fail(reason string, cert *x509.Certificate, format string, args ...any) *Error {
	return &Error{Reason: reason, Cert: cert, Err: fmt.Errorf(format, args...)}
}

// VerifyOptions are what Verify checks a chain against.
type VerifyOptions struct {
	// Roots is the route's trust bundle. Every certificate in it is a
	// trust anchor.
	Roots *x509.CertPool
	// Now is the verification time.
	Now time.Time
	// MaxChainDepth bounds the certificates of the verified chain, leaf
	// and trust anchor included, and of the chain the client sent.
	MaxChainDepth int
	// MinRSABits is the smallest RSA key accepted in the chain.
	MinRSABits int
}

// Verify verifies the chain a client presented in its handshake (leaf
// first, then whatever intermediates it sent) and returns the verified
// chain, leaf first and trust anchor last. A refusal is an *Error.
//
// crypto/x509 checks signatures, validity, the clientAuth EKU, basic
// constraints and name constraints; Verify adds the chain depth, key
// strength, signature hashes and the leaf's key usage.
func Verify(presented []*x509.Certificate, o VerifyOptions) ([]*x509.Certificate, error) {
	if len(presented) == 0 {
		return nil, fail(ReasonCertificateRequired, nil, "no client certificate presented")
	}
	leaf := presented[0]
	if len(presented) > o.MaxChainDepth {
		return nil, fail(ReasonChainTooDeep, leaf, "the client sent %d certificates, the limit is %d", len(presented), o.MaxChainDepth)
	}
	// x509 refuses SHA-1 too, but reports it as an unknown authority:
	// look first, to name the reason. A self-signed root the client sent
	// along is not part of any chain we build, so its hash does not matter.
	for i, c := range presented {
		if weakSignature(c.SignatureAlgorithm) && (i == 0 || !selfIssued(c)) {
			return nil, fail(ReasonSHA1Signature, c, "%q is signed with %v", c.Subject, c.SignatureAlgorithm)
		}
	}
	intermediates := x509.NewCertPool()
	for _, c := range presented[1:] {
		intermediates.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         o.Roots,
		Intermediates: intermediates,
		CurrentTime:   o.Now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, classify(err, leaf, o.Now)
	}
	var first error
	for _, chain := range chains {
		err := checkChain(chain, o)
		if err == nil {
			return chain, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// checkChain applies the rules crypto/x509 leaves to us to one verified
// chain.
func checkChain(chain []*x509.Certificate, o VerifyOptions) error {
	leaf, anchor := chain[0], chain[len(chain)-1]
	if len(chain) > o.MaxChainDepth {
		return fail(ReasonChainTooDeep, leaf, "the verified chain has %d certificates, the limit is %d", len(chain), o.MaxChainDepth)
	}
	for _, c := range chain {
		if err := checkKey(c.PublicKey, o.MinRSABits); err != nil {
			return &Error{Reason: ReasonWeakKey, Cert: c, Err: fmt.Errorf("%q: %w", c.Subject, err)}
		}
		if c != anchor && weakSignature(c.SignatureAlgorithm) {
			return fail(ReasonSHA1Signature, c, "%q is signed with %v", c.Subject, c.SignatureAlgorithm)
		}
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return fail(ReasonWrongKeyUsage, leaf, "key usage %#x lacks digitalSignature", leaf.KeyUsage)
	}
	return nil
}

// classify turns a crypto/x509 verification error into a reason.
func classify(err error, leaf *x509.Certificate, now time.Time) *Error {
	if e, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		cert := cmpCert(e.Cert, leaf)
		switch e.Reason {
		case x509.Expired:
			if now.Before(cert.NotBefore) {
				return &Error{Reason: ReasonNotYetValid, Cert: cert, Err: err}
			}
			return &Error{Reason: ReasonExpired, Cert: cert, Err: err}
		case x509.IncompatibleUsage, x509.CANotAuthorizedForExtKeyUsage:
			return &Error{Reason: ReasonWrongEKU, Cert: cert, Err: err}
		case x509.CANotAuthorizedForThisName, x509.NameConstraintsWithoutSANs,
			x509.UnconstrainedName, x509.TooManyConstraints:
			return &Error{Reason: ReasonNameConstraint, Cert: cert, Err: err}
		case x509.TooManyIntermediates:
			return &Error{Reason: ReasonChainTooDeep, Cert: cert, Err: err}
		}
		return &Error{Reason: ReasonInvalidChain, Cert: cert, Err: err}
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return &Error{Reason: ReasonUnknownCA, Cert: leaf, Err: err}
	}
	return &Error{Reason: ReasonInvalidChain, Cert: leaf, Err: err}
}

func cmpCert(c, fallback *x509.Certificate) *x509.Certificate {
	if c != nil {
		return c
	}
	return fallback
}

// checkKey refuses RSA keys below minRSABits, elliptic curves below P-256
// and key types crypto/tls cannot use.
func checkKey(pub any, minRSABits int) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < minRSABits {
			return fmt.Errorf("RSA key of %d bits, the minimum is %d", n, minRSABits)
		}
	case *ecdsa.PublicKey:
		if n := k.Curve.Params().BitSize; n < 256 {
			return fmt.Errorf("%s key, the minimum is P-256", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return fmt.Errorf("unsupported public key type %T", pub)
	}
	return nil
}

// weakSignature reports whether a is signed over SHA-1 or MD5 (or MD2).
func weakSignature(a x509.SignatureAlgorithm) bool {
	switch a {
	case x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.DSAWithSHA1, x509.MD5WithRSA, x509.MD2WithRSA:
		return true
	}
	return false
}

// selfIssued reports whether c names itself as its issuer.
func selfIssued(c *x509.Certificate) bool {
	return string(c.RawIssuer) == string(c.RawSubject)
}
