package jwt

import (
	"fmt"
	"net/http"
)

// Reason codes: stable, public, one per way a token can fail. They are
// the problem's "reason" and the audit event's reason.
const (
	ReasonTokenMissing        = "token_missing"             // no Authorization: Bearer header
	ReasonTokenMalformed      = "token_malformed"           // not a compact JWS, bad JSON, token in the query string, several Authorization headers
	ReasonTokenTooLarge       = "token_too_large"           // longer than max_token_bytes
	ReasonAlgNotAllowed       = "alg_not_allowed"           // alg outside the issuer's allow-list ("none" and HS* always), or not the key's alg
	ReasonUntrustedKeyHeader  = "untrusted_key_header"      // the header carries jku, x5u or jwk: keys come only from the configured issuer
	ReasonUnknownKID          = "unknown_kid"               // no key of the issuer's set matches kid
	ReasonBadSignature        = "bad_signature"             // the signature does not verify
	ReasonIssuerUnknown       = "issuer_unknown"            // iss is not a configured issuer
	ReasonAudienceMismatch    = "audience_mismatch"         // aud names none of the issuer's audiences
	ReasonExpired             = "expired"                   // exp (plus leeway) has passed
	ReasonNotYetValid         = "not_yet_valid"             // nbf or iat is in the future (beyond leeway)
	ReasonExpMissing          = "exp_missing"               // no exp while require_exp is true
	ReasonClaimMissing        = "claim_missing"             // a required claim is absent
	ReasonCritUnsupported     = "crit_unsupported"          // the header has crit: Warden understands no JWS extension
	ReasonDuplicateMember     = "duplicate_member"          // a JSON object in the header or payload repeats a member name
	ReasonJTIRevoked          = "jti_revoked"               // jti is on the deny-list
	ReasonCnfMismatch         = "cnf_mismatch"              // cnf.x5t#S256 is not this connection's client certificate (or there is none)
	ReasonCnfRequired         = "cnf_required"              // require_certificate_binding and the token has no cnf.x5t#S256
	ReasonInsufficientScope   = "insufficient_scope"        // a required scope is missing (403)
	ReasonClaimMismatch       = "claim_mismatch"            // a claim rule does not match (403)
	ReasonJWKSUnavailable     = "jwks_unavailable"          // the issuer's key set has never been fetched and the endpoint fails (503)
	ReasonTokenInactive       = "token_inactive"            // introspection: the authorization server says active is not true
	ReasonIntrospectionFailed = "introspection_unavailable" // introspection: the endpoint failed (503)
)

// Error is a refused token: a public reason code, the internal cause, and
// what the token's header and payload said (unverified, truncated:
// attacker-chosen text for the audit log only).
type Error struct {
	Reason    string
	Err       error
	Issuer    string
	KeyID     string
	Algorithm string
	Subject   string
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func fail(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// status is the HTTP status of a reason: 403 for authorization rules, 503
// when the gateway cannot reach what it needs to decide, 401 otherwise.
func status(reason string) int {
	switch reason {
	case ReasonInsufficientScope, ReasonClaimMismatch:
		return http.StatusForbidden
	case ReasonJWKSUnavailable, ReasonIntrospectionFailed:
		return http.StatusServiceUnavailable
	}
	return http.StatusUnauthorized
}

// challenge is the RFC 6750 WWW-Authenticate value for a reason. A request
// without credentials gets no error code (RFC 6750 section 3.1).
func challenge(reason string, scopes string) string {
	switch reason {
	case ReasonTokenMissing:
		return `Bearer`
	case ReasonInsufficientScope, ReasonClaimMismatch:
		if reason == ReasonInsufficientScope && scopes != "" {
			return `Bearer error="insufficient_scope", scope="` + scopes + `"`
		}
		return `Bearer error="insufficient_scope"`
	case ReasonJWKSUnavailable, ReasonIntrospectionFailed:
		return `Bearer`
	}
	return `Bearer error="invalid_token"`
}

// details are the client-facing problem details: what failed, never more.
var details = map[string]string{
	ReasonTokenMissing:        "this route requires a bearer token in the Authorization header",
	ReasonTokenMalformed:      "the bearer token is malformed or was not sent as a single Authorization: Bearer header",
	ReasonTokenTooLarge:       "the bearer token is too large",
	ReasonAlgNotAllowed:       "the token's signature algorithm is not allowed",
	ReasonUntrustedKeyHeader:  "the token names a key source (jku, x5u or jwk) that is never trusted",
	ReasonUnknownKID:          "the token's signing key is unknown",
	ReasonBadSignature:        "the token's signature is invalid",
	ReasonIssuerUnknown:       "the token's issuer is not trusted on this route",
	ReasonAudienceMismatch:    "the token is not intended for this audience",
	ReasonExpired:             "the token has expired",
	ReasonNotYetValid:         "the token is not valid yet",
	ReasonExpMissing:          "the token has no expiry",
	ReasonClaimMissing:        "the token lacks a required claim",
	ReasonCritUnsupported:     "the token requires an unsupported extension",
	ReasonDuplicateMember:     "the token repeats a JSON member name",
	ReasonJTIRevoked:          "the token has been revoked",
	ReasonCnfMismatch:         "the token is bound to another client certificate",
	ReasonCnfRequired:         "this route requires a token bound to the client certificate",
	ReasonInsufficientScope:   "the token lacks a required scope",
	ReasonClaimMismatch:       "the token is not authorized for this route",
	ReasonJWKSUnavailable:     "the token's signing keys cannot be retrieved; retry later",
	ReasonTokenInactive:       "the token is not active",
	ReasonIntrospectionFailed: "the token cannot be checked right now; retry later",
}
