package jwt

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/wardengw/warden/internal/policy"
)

// rules are the authorization, binding and forwarding rules the jwt and
// introspection policies share; they act on a token's claims, whoever
// vouched for them.
type rules struct {
	scopes         []string
	scopeText      string // for the WWW-Authenticate scope attribute
	claims         map[string][]string
	requireBinding bool
	consumerClaim  string
	claimsHeader   string // canonical; "" for none
	forwardClaims  []string
	stripAuth      bool
}

func compileRules(scopes []string, claims map[string][]string, requireBinding bool, consumerClaim string, fwd Forward) (*rules, error) {
	r := &rules{scopes: scopes, claims: claims, requireBinding: requireBinding, consumerClaim: consumerClaim,
		forwardClaims: fwd.Claims, stripAuth: fwd.StripAuthorization}
	var errs []error
	for i, s := range scopes {
		if s == "" || strings.ContainsAny(s, " \"\\") || !printableASCII(s) {
			errs = append(errs, fmt.Errorf("scopes[%d]: %q is not a scope token (RFC 6749 section 3.3)", i, s))
		}
	}
	r.scopeText = strings.Join(scopes, " ")
	if claims != nil && len(claims) == 0 {
		errs = append(errs, errors.New("claims: an empty mapping; remove it or give rules"))
	}
	for name, vals := range claims {
		if name == "" || len(vals) == 0 {
			errs = append(errs, fmt.Errorf("claims.%s: give a claim name and at least one value", name))
		}
	}
	if r.consumerClaim == "" {
		r.consumerClaim = DefaultConsumerClaim
	}
	if r.forwardClaims == nil {
		r.forwardClaims = DefaultForwardClaims
	}
	if fwd.ClaimsHeader != "" {
		h, err := canonicalHeader(fwd.ClaimsHeader)
		if err != nil {
			errs = append(errs, err)
		}
		r.claimsHeader = h
	} else if fwd.Claims != nil {
		errs = append(errs, errors.New("forward.claims: only used with forward.claims_header"))
	}
	return r, errors.Join(errs...)
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// authorize checks the scope and claim rules against claims; nil means
// allowed.
func (r *rules) authorize(claims map[string]any) *Error {
	if len(r.scopes) > 0 {
		have := tokenScopes(claims)
		for _, s := range r.scopes {
			if !slices.Contains(have, s) {
				return fail(ReasonInsufficientScope, "scope %q missing", s)
			}
		}
	}
	for name, want := range r.claims {
		if !claimMatches(claims[name], want) {
			return fail(ReasonClaimMismatch, "claim %q does not match the rule", name)
		}
	}
	return nil
}

// tokenScopes returns the scopes of the "scope" claim (space-separated)
// and the "scp" claim (an array, or a space-separated string).
func tokenScopes(claims map[string]any) []string {
	var out []string
	for _, name := range []string{"scope", "scp"} {
		switch v := claims[name].(type) {
		case string:
			out = append(out, strings.Fields(v)...)
		case []any:
			for _, e := range v {
				if s, ok := e.(string); ok {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

func claimMatches(v any, want []string) bool {
	if arr, ok := v.([]any); ok {
		return slices.ContainsFunc(arr, func(e any) bool { return scalarMatches(e, want) })
	}
	return scalarMatches(v, want)
}

func scalarMatches(v any, want []string) bool {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case json.Number:
		s = v.String()
	case bool:
		s = fmt.Sprint(v)
	default:
		return false
	}
	return slices.Contains(want, s)
}

// bind enforces RFC 8705 certificate binding: a token with cnf.x5t#S256
// must name the SHA-256 of the DER of this connection's verified client
// certificate: the one an earlier mtls policy verified, else the TLS
// stack's verified peer certificate.
func (r *rules) bind(claims map[string]any, req *http.Request, x *policy.Exchange) *Error {
	cnf, hasCnf := claims["cnf"].(map[string]any)
	thumb, hasThumb := cnf["x5t#S256"]
	if !hasCnf || !hasThumb {
		if r.requireBinding {
			return fail(ReasonCnfRequired, "the token has no cnf.x5t#S256")
		}
		return nil
	}
	s, ok := thumb.(string)
	want, err := base64.RawURLEncoding.DecodeString(s)
	if !ok || err != nil || len(want) != sha256.Size {
		return fail(ReasonCnfMismatch, "cnf.x5t#S256 is not a base64url SHA-256 thumbprint")
	}
	cert := connectionCert(req, x)
	if cert == nil {
		return fail(ReasonCnfMismatch, "the token is certificate-bound and the connection has no verified client certificate")
	}
	got := sha256.Sum256(cert.Raw)
	if subtle.ConstantTimeCompare(got[:], want) != 1 {
		return fail(ReasonCnfMismatch, "cnf.x5t#S256 does not match the connection's client certificate")
	}
	return nil
}

// connectionCert is the request connection's verified client certificate,
// or nil. An unverified certificate (RequestClientCert without an mtls
// policy) never counts.
func connectionCert(req *http.Request, x *policy.Exchange) *x509.Certificate {
	if x != nil && x.Identity.ClientCert != nil {
		return x.Identity.ClientCert
	}
	if req.TLS != nil && len(req.TLS.VerifiedChains) > 0 && len(req.TLS.PeerCertificates) > 0 {
		return req.TLS.PeerCertificates[0]
	}
	return nil
}

// apply records a verified token in the request's identity.
func (r *rules) apply(x *policy.Exchange, req *http.Request, method string, claims map[string]any) {
	id := &x.Identity
	id.Claims = maps.Clone(claims) // the cached map stays ours
	id.Methods = append(id.Methods, method)
	if scheme, tok, ok := strings.Cut(req.Header.Get("Authorization"), " "); ok {
		id.AccessToken, id.TokenScheme = strings.TrimLeft(tok, " "), scheme
		if strings.EqualFold(scheme, "dpop") {
			id.TokenScheme = "DPoP"
		} else {
			id.TokenScheme = "Bearer"
		}
	}
	if id.Consumer == "" {
		if s, ok := claims[r.consumerClaim].(string); ok {
			id.Consumer = s
		}
	}
}

// strip removes what a client must never send to the upstream under the
// policy's names.
func (r *rules) strip(h http.Header) {
	if r.claimsHeader != "" {
		h.Del(r.claimsHeader)
	}
}

// forward sets the headers the upstream reads; value is the precomputed
// claims header.
func (r *rules) forward(h http.Header, value string) {
	if r.stripAuth {
		h.Del("Authorization")
	}
	if r.claimsHeader != "" {
		h[r.claimsHeader] = []string{value}
	}
}

// claimsValue renders the claims header: the selected claims as compact
// JSON, ASCII only, so that it is a valid header value whatever they hold.
func (r *rules) claimsValue(claims map[string]any) string {
	if r.claimsHeader == "" {
		return ""
	}
	sel := make(map[string]any, len(r.forwardClaims))
	for _, c := range r.forwardClaims {
		if v, ok := claims[c]; ok {
			sel[c] = v
		}
	}
	b, err := json.Marshal(sel)
	if err != nil {
		return "{}"
	}
	return policy.ASCIIJSON(b)
}
