package jwt

import (
	"net/http"
	"strings"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/policy"
)

// Audit event types.
const (
	// EventRejected records every refused request: the reason, and the
	// token's (unverified) iss, kid, alg and sub; never the token.
	EventRejected = "token_rejected"
	// EventJWKSFetchFailed records a failed fetch of an issuer's jwks_url.
	EventJWKSFetchFailed = "jwks_fetch_failed"
	// EventIntrospectionFailed records a failed introspection request.
	EventIntrospectionFailed = "introspection_failed"
)

// Wrap implements policy.Policy.
func (p *Policy) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.rules.strip(r.Header)
		x := policy.ExchangeOf(r)
		if x == nil { // outside the gateway: still decide, just without Env
			x = &policy.Exchange{}
			r = r.WithContext(policy.WithExchange(r.Context(), x))
		}
		t, e := p.authenticate(r, x)
		if e != nil {
			reject(w, r, Type, e, p.rules.scopeText)
			return
		}
		p.rules.apply(x, r, Method, t.Claims)
		p.rules.forward(r.Header, t.header)
		next.ServeHTTP(w, r)
	})
}

// authenticate returns the request's verified, unrevoked, correctly bound
// and authorized token, or why not.
func (p *Policy) authenticate(r *http.Request, x *policy.Exchange) (*Token, *Error) {
	raw, e := bearer(r, p.maxBytes)
	if e != nil {
		return nil, e
	}
	t, e := p.verify(r.Context(), raw, x.Env.Clock(), x.Env)
	if e != nil {
		return nil, e
	}
	if t.ID != "" && p.deny.Load().Contains(t.ID) {
		e = fail(ReasonJTIRevoked, "jti %q is on the deny-list", truncate(t.ID))
	}
	if e == nil {
		e = p.rules.bind(t.Claims, r, x)
	}
	if e == nil && t.authz != nil {
		e = &Error{Reason: t.authz.Reason, Err: t.authz.Err}
	}
	if e != nil {
		e.Issuer, e.KeyID, e.Algorithm, e.Subject = t.Issuer, truncate(t.KeyID), t.Algorithm, truncate(t.Subject)
		return nil, e
	}
	return t, nil
}

// bearer extracts the token of the request's single Authorization header,
// scheme Bearer (RFC 6750 section 2.1) or DPoP (RFC 9449 section 7.1, for
// a dpop policy later in the chain to check). A token in the query string
// (RFC 6750 section 2.3) is refused, not ignored: it has already leaked
// into logs.
func bearer(r *http.Request, maxBytes int) (string, *Error) {
	if r.URL.Query().Has("access_token") {
		return "", fail(ReasonTokenMalformed, "access_token in the query string")
	}
	vals := r.Header.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", fail(ReasonTokenMissing, "no Authorization header")
	case 1:
	default:
		return "", fail(ReasonTokenMalformed, "%d Authorization headers", len(vals))
	}
	scheme, tok, _ := strings.Cut(vals[0], " ")
	if !strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "DPoP") {
		return "", fail(ReasonTokenMissing, "Authorization scheme is not Bearer or DPoP")
	}
	tok = strings.TrimLeft(tok, " ")
	if len(tok) > maxBytes {
		return "", fail(ReasonTokenTooLarge, "token of %d bytes, the limit is %d", len(tok), maxBytes)
	}
	if tok == "" || !isB64Token(tok) {
		return "", fail(ReasonTokenMalformed, "the bearer token is empty or not a b64token")
	}
	return tok, nil
}

// isB64Token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
func isB64Token(s string) bool {
	s = strings.TrimRight(s, "=")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

// critical reasons are attacks rather than mistakes.
var critical = map[string]bool{
	ReasonUntrustedKeyHeader: true, ReasonCnfMismatch: true, ReasonJTIRevoked: true, ReasonDuplicateMember: true,
}

// reject refuses the request through the single deny path, with an RFC
// 6750 challenge.
func reject(w http.ResponseWriter, r *http.Request, typ string, e *Error, scopes string) {
	fields := map[string]any{"policy": typ}
	for k, v := range map[string]string{"iss": e.Issuer, "kid": e.KeyID, "alg": e.Algorithm, "sub": e.Subject} {
		if v != "" {
			fields[k] = v
		}
	}
	h := http.Header{"Www-Authenticate": {challenge(e.Reason, scopes)}}
	st := status(e.Reason)
	if st == http.StatusServiceUnavailable {
		h.Set("Retry-After", "5")
	}
	prob := policy.Problem{Status: st, Reason: e.Reason, Detail: details[e.Reason], Event: EventRejected,
		Cause: e, Fields: fields, Header: h}
	switch {
	case e.Reason == ReasonTokenMissing:
		prob.Severity = audit.Info
	case critical[e.Reason]:
		prob.Severity = audit.Critical
	}
	policy.Deny(w, r, prob)
}

// jwksFailed records a failed key set fetch (it runs after the fetch, off
// the request path).
func jwksFailed(env *policy.Env, iss string, err error) {
	env.Audit.Emit(audit.Event{Type: EventJWKSFetchFailed, Severity: audit.Warning, Reason: ReasonJWKSUnavailable,
		Detail: "fetching the issuer's JWK set failed; the last good set stays in use",
		Fields: map[string]any{"iss": iss, "cause": truncate(err.Error())}})
	if env.Log != nil {
		env.Log.Warn("jwt: JWKS fetch failed", "iss", iss, "err", err)
	}
}
