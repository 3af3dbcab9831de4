package revocation

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Reasons are stable codes for audit events, metrics and deny responses.
// Reason(err) returns ReasonRevoked for a *RevokedError and the Reason of an
// *UnavailableError, which is one of the others.
const (
	ReasonRevoked  = "revoked"
	ReasonNoSource = "no_revocation_source" // neither a CRL nor an OCSP responder applies

	ReasonCRLUnreachable  = "crl_unreachable"   // distribution point or file could not be read
	ReasonCRLTooLarge     = "crl_too_large"     // over Config.MaxCRLBytes
	ReasonCRLInvalid      = "crl_invalid"       // unparsable, delta, unsupported critical extension, wrong scope
	ReasonCRLBadSignature = "crl_bad_signature" // not issued and signed by the certificate's issuer
	ReasonCRLStale        = "crl_stale"         // past nextUpdate+StaleGrace, or thisUpdate in the future
	ReasonCRLRollback     = "crl_rollback"      // a refresh returned an older CRL than the one held

	ReasonOCSPUnreachable    = "ocsp_unreachable"            // network error, HTTP error, timeout
	ReasonOCSPTooLarge       = "ocsp_too_large"              // response over the size bound
	ReasonOCSPResponderError = "ocsp_responder_error"        // tryLater, unauthorized, internalError, …
	ReasonOCSPInvalid        = "ocsp_invalid"                // unparsable response
	ReasonOCSPWrongCert      = "ocsp_wrong_certificate"      // response about another serial or issuer
	ReasonOCSPBadSignature   = "ocsp_bad_signature"          // signature does not verify
	ReasonOCSPUnauthorized   = "ocsp_unauthorized_responder" // signer is neither the issuer nor its delegate
	ReasonOCSPNotYetValid    = "ocsp_not_yet_valid"          // thisUpdate in the future
	ReasonOCSPStale          = "ocsp_stale"                  // nextUpdate passed
	ReasonOCSPUnknown        = "ocsp_unknown"                // the responder does not know the certificate

	ReasonLocalUnavailable = "local_ca_unavailable" // the gateway's own CA records cannot be read
	ReasonLocalUnknown     = "local_ca_unknown"     // signed by the gateway's own CA, which has no record of it
)

// RevokedError reports a certificate that a CRL or OCSP response says is
// revoked.
type RevokedError struct {
	Serial     *big.Int
	ReasonCode int    // RFC 5280 CRLReason
	ReasonText string // its RFC 5280 name: keyCompromise, …
	RevokedAt  time.Time
	Source     string // "crl", "ocsp" or SourceLocal
}

func (e *RevokedError) Error() string {
	return fmt.Sprintf("certificate serial %s revoked at %s (%s), according to %s",
		e.Serial.Text(16), e.RevokedAt.UTC().Format(time.RFC3339), e.ReasonText, e.Source)
}

// UnavailableError reports that no source could decide whether a
// certificate is revoked. The caller applies its hard- or soft-fail policy.
type UnavailableError struct {
	Reason string // one of the Reason constants
	Cause  error
}

func (e *UnavailableError) Error() string {
	if e.Cause == nil {
		return "revocation status unavailable: " + e.Reason
	}
	return fmt.Sprintf("revocation status unavailable: %s: %v", e.Reason, e.Cause)
}

func (e *UnavailableError) Unwrap() error { return e.Cause }

// Forgivable reports whether a soft-fail check may admit a certificate
// despite err: only when an outside source (a CRL or OCSP server) could
// not answer. Never for a revocation, nor for the gateway's own CA (its
// records are local: unreadable means something is wrong here, and a
// certificate it signed but never recorded means its key was misused),
// nor when the request itself was abandoned.
func Forgivable(err error) bool {
	if err == nil {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) && !isUnavailable(err) {
		return false
	}
	var u *UnavailableError
	if !errors.As(err, &u) {
		return false
	}
	return u.Reason != ReasonLocalUnavailable && u.Reason != ReasonLocalUnknown
}

func isUnavailable(err error) bool {
	var u *UnavailableError
	return errors.As(err, &u)
}

// Reason returns the stable reason code of an error from this package:
// ReasonRevoked, an UnavailableError's Reason, "" for nil, and
// "revocation_error" for anything else.
func Reason(err error) string {
	var rev *RevokedError
	var un *UnavailableError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &rev):
		return ReasonRevoked
	case errors.As(err, &un):
		return un.Reason
	default:
		return "revocation_error"
	}
}

func unavailable(reason string, format string, args ...any) *UnavailableError {
	return &UnavailableError{Reason: reason, Cause: fmt.Errorf(format, args...)}
}

func isRevoked(err error) bool {
	var rev *RevokedError
	return errors.As(err, &rev)
}

// reasonNames are the RFC 5280 §5.3.1 CRLReason names; 7 is unused.
var reasonNames = map[int]string{
	0: "unspecified", 1: "keyCompromise", 2: "cACompromise", 3: "affiliationChanged",
	4: "superseded", 5: "cessationOfOperation", 6: "certificateHold",
	8: "removeFromCRL", 9: "privilegeWithdrawn", 10: "aACompromise",
}

// ReasonText returns the RFC 5280 name of a CRLReason code.
func ReasonText(code int) string {
	if s, ok := reasonNames[code]; ok {
		return s
	}
	return fmt.Sprintf("reason(%d)", code)
}

func revoked(serial *big.Int, code int, at time.Time, source string) *RevokedError {
	return &RevokedError{Serial: serial, ReasonCode: code, ReasonText: ReasonText(code), RevokedAt: at, Source: source}
}
