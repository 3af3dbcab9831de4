package dpop

import (
	"crypto/subtle"
	"math"
	"net/http"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/policy"
)

// EventRejected is the audit event of every refused request: its reason,
// and the proof's alg and key thumbprint when known; never the proof or
// the token.
const EventRejected = "dpop_rejected"

// Method is what the policy appends to Identity.Methods once a proof has
// been verified against a DPoP-bound token.
const Method = "dpop"

// HeaderNonce is the response header carrying a server nonce.
const HeaderNonce = "DPoP-Nonce"

// Policy is the dpop policy: it verifies the request's DPoP proof (RFC
// 9449) and that the access token, verified by an earlier policy, is
// bound to the proof's key.
type Policy struct {
	required  bool
	algs      map[string]bool
	algList   []string
	window    time.Duration
	maxBytes  int
	replay    *replayCache
	nonces    *nonces           // nil: nonces off
	challenge map[string]string // WWW-Authenticate by error code
}

var _ policy.Policy = (*Policy)(nil)

// result is what a verified proof leaves for the response.
type result struct {
	nonceAge time.Duration
	proof    *proof
}

// Wrap implements policy.Policy.
func (p *Policy) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := policy.ExchangeOf(r)
		if x == nil { // outside the gateway: still decide, just without Env
			x = &policy.Exchange{}
			r = r.WithContext(policy.WithExchange(r.Context(), x))
		}
		now := x.Env.Clock()
		res, err := p.check(r, x.Identity.Claims, now)
		if err != nil {
			p.reject(w, r, res, err, now)
			return
		}
		if res != nil {
			x.Identity.Methods = append(x.Identity.Methods, Method)
			if p.nonces != nil && res.nonceAge > p.nonces.lifetime/2 {
				w.Header().Set(HeaderNonce, p.nonces.issue(now)) // RFC 9449 §8.2: renew before it expires
			}
		}
		next.ServeHTTP(w, r)
	})
}

// check decides one request: nil, nil when the request is none of the
// policy's business (required false and no DPoP-bound token); a result
// when a proof was verified; an error, with what was learnt of the
// proof, otherwise.
func (p *Policy) check(r *http.Request, claims map[string]any, now time.Time) (*result, *Error) {
	token, scheme, err := AccessToken(r)
	if err != nil {
		return nil, &Error{Reason: ReasonBadAuthorization, Err: err}
	}
	if x := policy.ExchangeOf(r); x != nil && x.Identity.AccessToken != "" {
		// The token policy before us verified this token (and may have
		// stripped the header): bind to exactly what it verified.
		token, scheme = x.Identity.AccessToken, x.Identity.TokenScheme
	}
	jkt, bound := boundJKT(claims)
	switch {
	case bound && scheme == SchemeBearer:
		return nil, fail(ReasonBoundTokenAsBearer, "the token has cnf.jkt and came with the Bearer scheme")
	case !bound && (p.required || scheme == SchemeDPoP):
		return nil, fail(ReasonTokenNotBound, "no cnf.jkt in the access token's claims (scheme %q)", scheme)
	case !bound:
		return nil, nil
	case scheme != SchemeDPoP:
		return nil, fail(ReasonBadAuthorization, "the token has cnf.jkt but no Authorization: DPoP header carries it")
	}
	vals := r.Header.Values("DPoP")
	switch {
	case len(vals) == 0:
		return nil, fail(ReasonMissing, "no DPoP header")
	case len(vals) > 1:
		return nil, fail(ReasonMultiple, "%d DPoP headers", len(vals))
	}
	pr, e := parseProof(vals[0], p.algs, p.maxBytes)
	if e != nil {
		return nil, e
	}
	res := &result{proof: pr}
	if pr.htm != r.Method {
		return res, fail(ReasonHTMMismatch, "htm %q, request method %q", truncate(pr.htm), r.Method)
	}
	want, ok1 := normalizeURI(requestURI(r))
	got, ok2 := normalizeURI(pr.htu)
	if !ok1 || !ok2 || got != want {
		return res, fail(ReasonHTUMismatch, "htu %q, request URI %q", truncate(pr.htu), truncate(requestURI(r)))
	}
	if skew := pr.iat - float64(now.UnixNano())/1e9; math.Abs(skew) > p.window.Seconds() {
		return res, fail(ReasonIATOutOfWindow, "iat %.0fs from now, window %v", skew, p.window)
	}
	if pr.ath == nil || subtle.ConstantTimeCompare([]byte(*pr.ath), []byte(AccessTokenHash(token))) != 1 {
		return res, fail(ReasonATHMismatch, "ath missing or not the SHA-256 of the access token (present: %v)", pr.ath != nil)
	}
	if subtle.ConstantTimeCompare([]byte(pr.jkt), []byte(jkt)) != 1 {
		return res, fail(ReasonJKTMismatch, "proof key %s, token cnf.jkt %q", pr.jkt, truncate(jkt))
	}
	if p.nonces != nil {
		age, ok := time.Duration(0), false
		if pr.nonce != nil {
			age, ok = p.nonces.check(*pr.nonce, now)
		}
		if !ok {
			return res, fail(ReasonNonceRequired, "nonce missing, unknown or expired (present: %v)", pr.nonce != nil)
		}
		res.nonceAge = age
	}
	if !p.replay.add(replayKey(pr.jkt, pr.jti), pr.iatTime().Add(p.window), now) {
		return res, fail(ReasonReplay, "jti %q already used with key %s, or older than the replay cache can vouch for", truncate(pr.jti), pr.jkt)
	}
	return res, nil
}

// reject answers 401 through the single deny path, with the RFC 9449 §7.1
// challenge and, for a missing nonce, a fresh one.
func (p *Policy) reject(w http.ResponseWriter, r *http.Request, res *result, e *Error, now time.Time) {
	h := http.Header{}
	h.Set("WWW-Authenticate", p.challenge[errorCode(e.Reason)])
	if e.Reason == ReasonNonceRequired {
		h.Set(HeaderNonce, p.nonces.issue(now))
	}
	fields := map[string]any{"policy": Type}
	if res != nil {
		fields["alg"], fields["jkt"] = res.proof.alg, res.proof.jkt
	}
	prob := policy.Problem{
		Status: http.StatusUnauthorized, Reason: e.Reason, Detail: details[e.Reason],
		Event: EventRejected, Cause: e, Fields: fields, Header: h,
	}
	switch e.Reason {
	case ReasonMissing, ReasonNonceRequired:
		prob.Severity = audit.Info // the ordinary first leg of a DPoP exchange
	case ReasonReplay, ReasonJKTMismatch, ReasonBoundTokenAsBearer:
		prob.Severity = audit.Critical // a stolen proof or token in use
	}
	policy.Deny(w, r, prob)
}
