package jwt

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardengw/warden/internal/policy"
)

// Token is a verified JWT: its signature checked with a key of its
// configured issuer, its times and audience valid when verified. It is
// shared through the cache: treat it as read-only.
type Token struct {
	Issuer    string
	Subject   string // "" if the token has no sub
	ID        string // jti, "" if none
	KeyID     string
	Algorithm string
	Expiry    time.Time // zero if the token has no exp
	// Claims is the decoded payload; numbers are json.Number.
	Claims map[string]any

	authz  *Error // outcome of the scope and claim rules, computed once
	header string // the forward.claims_header value, computed once
}

// Verify verifies a compact JWS token at now, serving it from the cache of
// verified tokens when it is there and unexpired. It checks everything
// that depends on the token alone, not the deny-list, the certificate
// binding or the scope and claim rules, which the policy checks per
// request. A refusal is an *Error.
func (p *Policy) Verify(ctx context.Context, token string, now time.Time) (*Token, error) {
	t, e := p.verify(ctx, token, now, nil)
	if e != nil {
		return nil, e
	}
	return t, nil
}

func (p *Policy) verify(ctx context.Context, raw string, now time.Time, env *policy.Env) (*Token, *Error) {
	if len(raw) > p.maxBytes {
		return nil, fail(ReasonTokenTooLarge, "token of %d bytes, max_token_bytes is %d", len(raw), p.maxBytes)
	}
	k := cacheKey(sha256.Sum256([]byte(raw)))
	if t, ok := p.cache.Get(k, now); ok {
		return t, nil
	}
	t, e := p.verifyUncached(ctx, raw, now, env)
	if e != nil {
		return nil, e
	}
	until := now.Add(CacheTTL)
	if !t.Expiry.IsZero() && t.Expiry.Before(until) {
		until = t.Expiry // never served past exp, whatever the leeway
	}
	p.cache.Put(k, t, until, now)
	return t, nil
}

// keyHeaders name keys or key sources in a JWS header. Warden never uses
// them: an issuer's keys come only from its configured set. A token
// carrying one is refused outright, as an attempt worth an audit event.
var keyHeaders = []string{"jku", "x5u", "jwk"}

var b64 = base64.RawURLEncoding.Strict()

// verifyUncached is the verifier proper, in the order of the checks.
func (p *Policy) verifyUncached(ctx context.Context, raw string, now time.Time, env *policy.Env) (*Token, *Error) {
	// 1. Shape: three base64url segments, a JSON object header and payload
	// without duplicate member names.
	h64, rest, ok1 := strings.Cut(raw, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s64, ".") {
		return nil, fail(ReasonTokenMalformed, "not a compact JWS (three dot-separated parts)")
	}
	hb, err1 := b64.DecodeString(h64)
	pb, err2 := b64.DecodeString(p64)
	_, err3 := b64.DecodeString(s64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, fail(ReasonTokenMalformed, "base64url: %w", err)
	}
	header, err := decodeObject(hb)
	if err != nil {
		return nil, jsonFail("header", err)
	}
	var claims map[string]any // nil until decoded
	// What the token says about itself, unverified, for the audit log.
	info := func(e *Error) *Error {
		e.Algorithm, _ = header["alg"].(string)
		e.KeyID, _ = header["kid"].(string)
		e.Issuer, _ = claims["iss"].(string)
		e.Subject, _ = claims["sub"].(string)
		e.Algorithm, e.KeyID, e.Issuer, e.Subject = truncate(e.Algorithm), truncate(e.KeyID), truncate(e.Issuer), truncate(e.Subject)
		return e
	}
	refuse := func(reason, format string, args ...any) (*Token, *Error) {
		return nil, info(fail(reason, format, args...))
	}

	// 2. Header: no extensions, no key sources, an allowed algorithm.
	alg, ok := header["alg"].(string)
	if !ok {
		return refuse(ReasonTokenMalformed, "header: alg missing or not a string")
	}
	if _, ok := header["crit"]; ok {
		return refuse(ReasonCritUnsupported, "header: crit present; no JWS extension is supported")
	}
	for _, name := range keyHeaders {
		if _, ok := header[name]; ok {
			return refuse(ReasonUntrustedKeyHeader, "header: %s present", name)
		}
	}
	if !p.anyAlg[alg] {
		return refuse(ReasonAlgNotAllowed, "alg %q is not allowed", truncate(alg))
	}
	kid, ok := header["kid"].(string)
	if _, present := header["kid"]; present && (!ok || kid == "") {
		return refuse(ReasonTokenMalformed, "header: kid is not a non-empty string")
	}
	if claims, err = decodeObject(pb); err != nil {
		return nil, info(jsonFail("payload", err))
	}

	// 3. Issuer, then its key for kid and alg.
	iss, _ := claims["iss"].(string)
	is := p.issuers[iss]
	if is == nil {
		return refuse(ReasonIssuerUnknown, "iss %q is not a configured issuer", truncate(iss))
	}
	if !is.algSet[alg] {
		return refuse(ReasonAlgNotAllowed, "alg %q is not allowed for issuer %q", alg, iss)
	}
	var onFail func(error)
	if env != nil {
		onFail = func(err error) { jwksFailed(env, iss, err) }
	}
	keys, e := is.keys.lookup(ctx, kid, now, onFail)
	if e != nil {
		return nil, info(e)
	}
	keys = slices.DeleteFunc(slices.Clone(keys), func(k jose.JSONWebKey) bool { return !keyFits(k, alg) })
	switch {
	case len(keys) == 0 && kid != "":
		return refuse(ReasonAlgNotAllowed, "key %q does not permit alg %s", truncate(kid), alg)
	case len(keys) != 1 && kid == "":
		return refuse(ReasonUnknownKID, "no kid, and %d keys of the issuer fit alg %s", len(keys), alg)
	}

	// 4. Signature.
	p.verifications.Add(1)
	payload, e := verifySignature(raw, is.algs, keys)
	if e != nil {
		return nil, info(e)
	}
	if string(payload) != string(pb) { // cannot happen: go-jose decodes the same segment
		return refuse(ReasonTokenMalformed, "jws: payload differs from the decoded segment")
	}

	// 5. Claims.
	exp, hasExp, err := numericDate(claims, "exp")
	nbf, hasNbf, err2 := numericDate(claims, "nbf")
	iat, hasIat, err3 := numericDate(claims, "iat")
	sub, subOK := claims["sub"].(string)
	jti, jtiOK := claims["jti"].(string)
	switch {
	case errors.Join(err, err2, err3) != nil:
		return refuse(ReasonTokenMalformed, "claims: %w", errors.Join(err, err2, err3))
	case claims["sub"] != nil && !subOK, claims["jti"] != nil && !jtiOK:
		return refuse(ReasonTokenMalformed, "claims: sub or jti is not a string")
	case !hasExp && p.requireExp:
		return refuse(ReasonExpMissing, "no exp")
	case hasExp && !now.Before(exp.Add(is.leeway)):
		return refuse(ReasonExpired, "expired at %s (leeway %v)", exp.UTC().Format(time.RFC3339), is.leeway)
	case hasNbf && now.Add(is.leeway).Before(nbf):
		return refuse(ReasonNotYetValid, "nbf %s is in the future", nbf.UTC().Format(time.RFC3339))
	case hasIat && now.Add(is.leeway).Before(iat):
		return refuse(ReasonNotYetValid, "iat %s is in the future", iat.UTC().Format(time.RFC3339))
	}
	aud, err := audiences(claims["aud"])
	if err != nil {
		return refuse(ReasonTokenMalformed, "claims: %w", err)
	}
	if !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(is.audiences, a) }) {
		return refuse(ReasonAudienceMismatch, "aud %q names none of %q", truncateAll(aud), is.audiences)
	}
	for _, c := range is.required {
		if _, ok := claims[c]; !ok {
			return refuse(ReasonClaimMissing, "required claim %q missing", c)
		}
	}
	t := &Token{Issuer: iss, Subject: sub, ID: jti, KeyID: kid, Algorithm: alg, Claims: claims,
		authz: p.rules.authorize(claims), header: p.rules.claimsValue(claims)}
	if hasExp {
		t.Expiry = exp
	}
	return t, nil
}

// verifySignature verifies a compact JWS with the first of keys that
// verifies it, through go-jose's parser restricted to algs, and returns the
// verified payload.
func verifySignature(raw string, algs []jose.SignatureAlgorithm, keys []jose.JSONWebKey) ([]byte, *Error) {
	jws, err := jose.ParseSignedCompact(raw, algs)
	if _, ok := errors.AsType[*jose.ErrUnexpectedSignatureAlgorithm](err); ok {
		return nil, fail(ReasonAlgNotAllowed, "jws: %w", err)
	}
	if err != nil {
		return nil, fail(ReasonTokenMalformed, "jws: %w", err)
	}
	for _, k := range keys {
		if payload, err := jws.Verify(k.Key); err == nil {
			return payload, nil
		}
	}
	return nil, fail(ReasonBadSignature, "the signature does not verify with the issuer's key")
}

func jsonFail(part string, err error) *Error {
	if errors.Is(err, errDuplicate) {
		return fail(ReasonDuplicateMember, "%s: %w", part, err)
	}
	return fail(ReasonTokenMalformed, "%s: %w", part, err)
}

// numericDate reads an RFC 7519 NumericDate claim: seconds since the
// epoch, possibly fractional, between 0 and year 9999.
func numericDate(claims map[string]any, name string) (time.Time, bool, error) {
	v, ok := claims[name]
	if !ok {
		return time.Time{}, false, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false, fmt.Errorf("%s is not a number", name)
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > 253402300799 {
		return time.Time{}, false, fmt.Errorf("%s is not a date", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// audiences reads aud: a string or an array of strings.
func audiences(v any) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("aud holds a non-string")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errors.New("aud is neither a string nor an array")
}

func truncateAll(ss []string) []string {
	if len(ss) > 8 {
		ss = ss[:8]
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = truncate(s)
	}
	return out
}
