package dpop

import "fmt"

// Reasons: the stable, public codes of refusals (problem+json "reason",
// audit event reason, metric label).
const (
	ReasonMissing            = "dpop_missing"               // the request has no DPoP header
	ReasonMultiple           = "dpop_multiple"              // more than one DPoP header
	ReasonMalformed          = "dpop_malformed"             // not a compact JWS, bad JSON, missing or ill-typed claims, too large
	ReasonBadTyp             = "dpop_bad_typ"               // typ is not dpop+jwt
	ReasonAlgNotAllowed      = "dpop_alg_not_allowed"       // alg not in the allow-list (none and HS* never are)
	ReasonBadKey             = "dpop_bad_key"               // jwk missing, private, invalid, too weak or not for alg
	ReasonBadSignature       = "dpop_bad_signature"         // the signature does not verify with jwk
	ReasonReplay             = "dpop_replay"                // this jti was already used with this key
	ReasonHTMMismatch        = "dpop_htm_mismatch"          // htm is not the request method
	ReasonHTUMismatch        = "dpop_htu_mismatch"          // htu is not the request URI
	ReasonIATOutOfWindow     = "dpop_iat_out_of_window"     // iat too old or in the future
	ReasonATHMismatch        = "dpop_ath_mismatch"          // ath missing or not the access token's hash
	ReasonJKTMismatch        = "dpop_jkt_mismatch"          // the proof key is not the token's cnf.jkt
	ReasonNonceRequired      = "dpop_nonce_required"        // nonce missing, unknown or expired (401 use_dpop_nonce)
	ReasonBoundTokenAsBearer = "dpop_bound_token_as_bearer" // a token with cnf.jkt sent as Authorization: Bearer
	ReasonTokenNotBound      = "dpop_token_not_bound"       // a DPoP-bound token is required, or the DPoP scheme carried one without cnf.jkt
	ReasonBadAuthorization   = "dpop_bad_authorization"     // several Authorization headers, or a bound token not in Authorization: DPoP
)

// Error is a refused request: a public Reason and the internal cause,
// which never holds the proof or the token.
type Error struct {
	Reason string
	Err    error
}

// Error returns the reason and the cause, for logs.
func (e *Error) Error() string { return e.Reason + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func fail(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// details are the client-facing problem details: what failed, never more.
var details = map[string]string{
	ReasonMissing:            "this request needs a DPoP proof in one DPoP header",
	ReasonMultiple:           "the request carries more than one DPoP header",
	ReasonMalformed:          "the DPoP proof is malformed",
	ReasonBadTyp:             `the DPoP proof's typ is not "dpop+jwt"`,
	ReasonAlgNotAllowed:      "the DPoP proof's algorithm is not allowed on this route",
	ReasonBadKey:             "the DPoP proof's jwk is not an acceptable public key",
	ReasonBadSignature:       "the DPoP proof's signature does not verify",
	ReasonReplay:             "the DPoP proof was already used",
	ReasonHTMMismatch:        "the DPoP proof's htm is not this request's method",
	ReasonHTUMismatch:        "the DPoP proof's htu is not this request's URI",
	ReasonIATOutOfWindow:     "the DPoP proof's iat is too old or in the future",
	ReasonATHMismatch:        "the DPoP proof's ath does not match the access token",
	ReasonJKTMismatch:        "the DPoP proof is not signed by the key the access token is bound to",
	ReasonNonceRequired:      "the DPoP proof needs the nonce in the DPoP-Nonce response header",
	ReasonBoundTokenAsBearer: "a DPoP-bound access token must be sent as Authorization: DPoP, not Bearer",
	ReasonTokenNotBound:      "this request needs a DPoP-bound access token (cnf.jkt)",
	ReasonBadAuthorization:   "the access token must be sent in a single Authorization: DPoP header",
}

// errorCode is the RFC 6750 / RFC 9449 error of the WWW-Authenticate
// challenge for a reason: "" for a request without DPoP credentials.
func errorCode(reason string) string {
	switch reason {
	case ReasonMissing:
		return ""
	case ReasonNonceRequired:
		return "use_dpop_nonce"
	case ReasonBoundTokenAsBearer, ReasonTokenNotBound, ReasonBadAuthorization:
		return "invalid_token"
	}
	return "invalid_dpop_proof"
}
