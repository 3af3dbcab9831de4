package dpop_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardengw/warden/internal/auth/dpop"
)

// Well-formed proofs are accepted for every default algorithm, and the
// request's identity records the method.
func TestAcceptsEachAlgorithm(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.PS256} {
		t.Run(string(alg), func(t *testing.T) {
			e := newEnv(t, dpop.Config{})
			c := newClient(t, alg)
			o := e.serve(t, request(c.proof(t, claims(e.clock.Now()))), bound(c))
			if o.status != http.StatusOK {
				t.Fatalf("status %d %s, want 200", o.status, o.body)
			}
			if !contains(o.methods, dpop.Method) {
				t.Fatalf("methods %v lack %q", o.methods, dpop.Method)
			}
		})
	}
}

// Each case changes one thing of an otherwise valid request; every one is
// refused with its reason, a DPoP challenge and an audit event that holds
// neither the proof nor the token.
func TestRefusals(t *testing.T) {
	keys(t)
	es := newClient(t, jose.ES256)
	other := newClientKey(t, jose.ES256, otherKey)
	now := t0
	with := func(k string, v any) map[string]any {
		cl := claims(now)
		if v == nil {
			delete(cl, k)
		} else {
			cl[k] = v
		}
		return cl
	}
	header := func(extra map[string]any) string {
		h := map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": es.publicJWK(t)}
		for k, v := range extra {
			if v == nil {
				delete(h, k)
			} else {
				h[k] = v
			}
		}
		return mustJSON(t, h)
	}
	privJWK, _ := json.Marshal(jose.JSONWebKey{Key: ecKey})
	hs256 := func(input []byte) []byte {
		m := hmac.New(sha256.New, es.publicJWK(t)) // RS/ES-to-HS confusion: the public key as secret
		m.Write(input)
		return m.Sum(nil)
	}
	valid := func() string { return es.proof(t, claims(now)) }

	tests := []struct {
		name   string
		req    func() *http.Request
		claims map[string]any // the token's; default bound(es)
		cfg    dpop.Config
		reason string
		code   string // expected error= of the challenge; "-" for none
	}{
		{name: "no DPoP header", req: func() *http.Request { return request() }, reason: dpop.ReasonMissing, code: "-"},
		{name: "two DPoP headers", req: func() *http.Request { return request(valid(), valid()) }, reason: dpop.ReasonMultiple},
		{name: "not a JWS", req: func() *http.Request { return request("not-a-jws") }, reason: dpop.ReasonMalformed},
		{name: "JWS JSON serialization", req: func() *http.Request { return request(`{"payload":"e30","signatures":[]}`) }, reason: dpop.ReasonMalformed},
		{name: "too large", req: func() *http.Request {
			return request(es.proof(t, with("pad", strings.Repeat("x", 5000))))
		}, reason: dpop.ReasonMalformed},
		{name: "typ jwt", req: func() *http.Request {
			return request(es.proof(t, claims(now), func(o *jose.SignerOptions) { o.WithType("JWT") }))
		}, reason: dpop.ReasonBadTyp},
		{name: "typ missing", req: func() *http.Request {
			return request(rawProof(header(map[string]any{"typ": nil}), mustJSON(t, claims(now)), es256(ecKey)))
		}, reason: dpop.ReasonBadTyp},
		{name: "alg none", req: func() *http.Request {
			return request(rawProof(header(map[string]any{"alg": "none"}), mustJSON(t, claims(now)), nil))
		}, reason: dpop.ReasonAlgNotAllowed},
		{name: "alg NONE", req: func() *http.Request {
			return request(rawProof(header(map[string]any{"alg": "NONE"}), mustJSON(t, claims(now)), nil))
		}, reason: dpop.ReasonAlgNotAllowed},
		{name: "alg HS256 with the public key as secret", req: func() *http.Request {
			return request(rawProof(header(map[string]any{"alg": "HS256"}), mustJSON(t, claims(now)), hs256))
		}, reason: dpop.ReasonAlgNotAllowed},
		{name: "alg allowed but not configured", cfg: dpop.Config{Algorithms: []string{"EdDSA"}}, req: func() *http.Request {
			return request(valid())
		}, reason: dpop.ReasonAlgNotAllowed},
		{name: "private key in jwk", req: func() *http.Request {
			return request(es.proof(t, claims(now), func(o *jose.SignerOptions) {
				o.EmbedJWK = false
				o.WithHeader("jwk", json.RawMessage(privJWK))
			}))
		}, reason: dpop.ReasonBadKey},
		{name: "symmetric jwk", req: func() *http.Request {
			return request(rawProof(header(map[string]any{"jwk": map[string]any{"kty": "oct", "k": "c2VjcmV0"}}), mustJSON(t, claims(now)), es256(ecKey)))
		}, reason: dpop.ReasonBadKey},
		{name: "no jwk", req: func() *http.Request {
			return request(rawProof(header(map[string]any{"jwk": nil}), mustJSON(t, claims(now)), es256(ecKey)))
		}, reason: dpop.ReasonBadKey},
		{name: "P-384 key for ES256", req: func() *http.Request {
			p384 := newClient(t, jose.ES384)
			return request(rawProof(header(map[string]any{"jwk": p384.publicJWK(t)}), mustJSON(t, claims(now)), es256(ecKey)))
		}, reason: dpop.ReasonBadKey},
		{name: "crit header", req: func() *http.Request {
			return request(rawProof(header(map[string]any{"crit": []string{"exp"}, "exp": 1}), mustJSON(t, claims(now)), es256(ecKey)))
		}, reason: dpop.ReasonMalformed},
		{name: "duplicate header member", req: func() *http.Request {
			h := strings.TrimSuffix(header(nil), "}") + `,"typ":"jwt"}`
			return request(rawProof(h, mustJSON(t, claims(now)), es256(ecKey)))
		}, reason: dpop.ReasonMalformed},
		{name: "duplicate claim", req: func() *http.Request {
			cl := strings.TrimSuffix(mustJSON(t, claims(now)), "}") + `,"htm":"POST"}`
			return request(rawProof(header(nil), cl, es256(ecKey)))
		}, reason: dpop.ReasonMalformed},
		{name: "signature by another key", req: func() *http.Request {
			return request(rawProof(header(nil), mustJSON(t, claims(now)), es256(otherKey)))
		}, reason: dpop.ReasonBadSignature},
		{name: "stripped signature", req: func() *http.Request {
			return request(rawProof(header(nil), mustJSON(t, claims(now)), nil))
		}, reason: dpop.ReasonBadSignature},
		{name: "tampered payload", req: func() *http.Request {
			p := strings.Split(valid(), ".")
			evil := strings.Split(es.proof(t, with("htm", "DELETE")), ".")
			return request(p[0] + "." + evil[1] + "." + p[2])
		}, reason: dpop.ReasonBadSignature},
		{name: "jti missing", req: func() *http.Request { return request(es.proof(t, with("jti", nil))) }, reason: dpop.ReasonMalformed},
		{name: "iat a string", req: func() *http.Request {
			return request(es.proof(t, with("iat", fmt.Sprint(now.Unix()))))
		}, reason: dpop.ReasonMalformed},
		{name: "htm mismatch", req: func() *http.Request { return request(es.proof(t, with("htm", "POST"))) }, reason: dpop.ReasonHTMMismatch},
		{name: "htm lower case", req: func() *http.Request { return request(es.proof(t, with("htm", "get"))) }, reason: dpop.ReasonHTMMismatch},
		{name: "htu other path", req: func() *http.Request {
			return request(es.proof(t, with("htu", "https://gw.example/api/admin")))
		}, reason: dpop.ReasonHTUMismatch},
		{name: "htu other host", req: func() *http.Request {
			return request(es.proof(t, with("htu", "https://evil.example/api/items")))
		}, reason: dpop.ReasonHTUMismatch},
		{name: "htu http scheme", req: func() *http.Request {
			return request(es.proof(t, with("htu", "http://gw.example/api/items")))
		}, reason: dpop.ReasonHTUMismatch},
		{name: "htu other port", req: func() *http.Request {
			return request(es.proof(t, with("htu", "https://gw.example:8443/api/items")))
		}, reason: dpop.ReasonHTUMismatch},
		{name: "htu relative", req: func() *http.Request { return request(es.proof(t, with("htu", testPath))) }, reason: dpop.ReasonHTUMismatch},
		{name: "htu with user info", req: func() *http.Request {
			return request(es.proof(t, with("htu", "https://user@gw.example/api/items")))
		}, reason: dpop.ReasonHTUMismatch},
		{name: "iat stale", req: func() *http.Request {
			return request(es.proof(t, with("iat", now.Add(-61*time.Second).Unix())))
		}, reason: dpop.ReasonIATOutOfWindow},
		{name: "iat future", req: func() *http.Request {
			return request(es.proof(t, with("iat", now.Add(61*time.Second).Unix())))
		}, reason: dpop.ReasonIATOutOfWindow},
		{name: "ath of another token", req: func() *http.Request {
			return request(es.proof(t, with("ath", dpop.AccessTokenHash("another-token"))))
		}, reason: dpop.ReasonATHMismatch},
		{name: "ath missing", req: func() *http.Request { return request(es.proof(t, with("ath", nil))) }, reason: dpop.ReasonATHMismatch},
		{name: "proof by another key than cnf.jkt", req: func() *http.Request {
			return request(other.proof(t, claims(now)))
		}, reason: dpop.ReasonJKTMismatch},
		{name: "cnf.jkt not a string", claims: map[string]any{"cnf": map[string]any{"jkt": 42}}, req: func() *http.Request {
			return request(valid())
		}, reason: dpop.ReasonJKTMismatch},
		{name: "bound token as Bearer", req: func() *http.Request {
			r := request(valid())
			r.Header.Set("Authorization", "Bearer "+testToken)
			return r
		}, reason: dpop.ReasonBoundTokenAsBearer, code: "invalid_token"},
		{name: "bound token without Authorization", req: func() *http.Request {
			r := request(valid())
			r.Header.Del("Authorization")
			return r
		}, reason: dpop.ReasonBadAuthorization, code: "invalid_token"},
		{name: "two Authorization headers", req: func() *http.Request {
			r := request(valid())
			r.Header.Add("Authorization", "DPoP other")
			return r
		}, reason: dpop.ReasonBadAuthorization, code: "invalid_token"},
		{name: "unbound token, required", claims: map[string]any{"sub": "alice"}, req: func() *http.Request {
			return request(valid())
		}, reason: dpop.ReasonTokenNotBound, code: "invalid_token"},
		{name: "certificate-bound token, required", claims: map[string]any{"cnf": map[string]any{"x5t#S256": "abc"}}, req: func() *http.Request {
			return request(valid())
		}, reason: dpop.ReasonTokenNotBound, code: "invalid_token"},
		{name: "unbound token with DPoP scheme, not required", cfg: dpop.Config{Required: new(false)}, claims: map[string]any{"sub": "alice"},
			req: func() *http.Request { return request(valid()) }, reason: dpop.ReasonTokenNotBound, code: "invalid_token"},
		{name: "bound token, not required, no proof", cfg: dpop.Config{Required: new(false)}, req: func() *http.Request {
			return request()
		}, reason: dpop.ReasonMissing, code: "-"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			cl := tc.claims
			if cl == nil {
				cl = bound(es)
			}
			r := tc.req()
			o := e.serve(t, r, cl)
			if o.status != http.StatusUnauthorized || o.reason != tc.reason {
				t.Fatalf("got %d %q, want 401 %q (%s)", o.status, o.reason, tc.reason, o.body)
			}
			checkChallenge(t, o, e.pol, tc.code)
			ev := e.lastEvent(t)
			t.Logf("cause: %v", ev.Fields["cause"])
			if ev.Type != dpop.EventRejected || ev.Reason != tc.reason || ev.Status != http.StatusUnauthorized {
				t.Fatalf("audit event %+v", ev)
			}
			b, _ := json.Marshal(ev)
			for _, secret := range append(r.Header.Values("DPoP"), testToken) {
				if secret != "" && strings.Contains(string(b), secret) {
					t.Fatalf("audit event leaks a proof or the token: %s", b)
				}
			}
			if o.header.Get(dpop.HeaderNonce) != "" {
				t.Fatal("a DPoP-Nonce without nonces enabled")
			}
		})
	}
}

// checkChallenge checks the RFC 9449 §7.1 challenge: the DPoP scheme, the
// error code (code "-": none; "": invalid_dpop_proof) and the algs.
func checkChallenge(t *testing.T, o outcome, p *dpop.Policy, code string) {
	t.Helper()
	ch := o.header.Get("WWW-Authenticate")
	if !strings.HasPrefix(ch, "DPoP ") {
		t.Fatalf("challenge %q is not DPoP", ch)
	}
	switch code {
	case "-":
		if strings.Contains(ch, "error=") {
			t.Fatalf("challenge %q has an error for a request without credentials", ch)
		}
	case "":
		code = "invalid_dpop_proof"
		fallthrough
	default:
		if !strings.Contains(ch, `error="`+code+`"`) {
			t.Fatalf("challenge %q, want error=%q", ch, code)
		}
	}
	if want := `algs="` + strings.Join(p.Algorithms(), " ") + `"`; !strings.Contains(ch, want) {
		t.Fatalf("challenge %q lacks %s", ch, want)
	}
}

// What is accepted beyond the canonical request: the htu normalizations
// of RFC 9449 §4.3 and the iat window's edges.
func TestAccepted(t *testing.T) {
	es := newClient(t, jose.ES256)
	tests := []struct {
		name   string
		target string // request URL; default testHTU
		method string
		edit   func(map[string]any)
		cfg    dpop.Config
		claims map[string]any
	}{
		{name: "query on the request ignored", target: testHTU + "?page=2&sort=asc"},
		{name: "query and fragment in htu ignored", edit: func(c map[string]any) { c["htu"] = testHTU + "?other=1#frag" }},
		{name: "htu scheme and host case, default port", edit: func(c map[string]any) { c["htu"] = "HTTPS://GW.Example:443/api/items" }},
		{name: "request Host with default port", target: "https://gw.example:443/api/items"},
		{name: "percent-encoded unreserved in htu", edit: func(c map[string]any) { c["htu"] = "https://gw.example/%61pi/items" }},
		{name: "dot segments in htu", edit: func(c map[string]any) { c["htu"] = "https://gw.example/api/x/../items" }},
		{name: "non-default port", target: "https://gw.example:8443/api/items",
			edit: func(c map[string]any) { c["htu"] = "https://gw.example:8443/api/items" }},
		{name: "POST", method: http.MethodPost, edit: func(c map[string]any) { c["htm"] = http.MethodPost }},
		{name: "iat at the window's old edge", edit: func(c map[string]any) { c["iat"] = t0.Add(-60 * time.Second).Unix() }},
		{name: "iat at the window's future edge", edit: func(c map[string]any) { c["iat"] = t0.Add(60 * time.Second).Unix() }},
		{name: "fractional iat", edit: func(c map[string]any) { c["iat"] = float64(t0.Unix()) + 0.5 }},
		{name: "typ with application/ prefix", edit: nil},
		{name: "unbound Bearer token, not required", cfg: dpop.Config{Required: new(false)}, claims: map[string]any{"sub": "bob"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			cl := claims(t0)
			if tc.edit != nil {
				tc.edit(cl)
			}
			target, method := tc.target, tc.method
			if target == "" {
				target = testHTU
			}
			if method == "" {
				method = http.MethodGet
			}
			r := request(es.proof(t, cl))
			r.Method, r.Host = method, strings.SplitN(strings.TrimPrefix(target, "https://"), "/", 2)[0]
			r.URL, _ = r.URL.Parse(target)
			tokenClaims, wantMethod := bound(es), true
			if tc.claims != nil {
				tokenClaims, wantMethod = tc.claims, false
				r.Header.Set("Authorization", "Bearer "+testToken)
				r.Header.Del("DPoP")
			}
			o := e.serve(t, r, tokenClaims)
			if o.status != http.StatusOK {
				t.Fatalf("status %d %s", o.status, o.body)
			}
			if contains(o.methods, dpop.Method) != wantMethod {
				t.Fatalf("methods %v", o.methods)
			}
		})
	}
	t.Run("typ application/dpop+jwt", func(t *testing.T) {
		e := newEnv(t, dpop.Config{})
		p := es.proof(t, claims(t0), func(o *jose.SignerOptions) { o.WithType("application/dpop+jwt") })
		if o := e.serve(t, request(p), bound(es)); o.status != http.StatusOK {
			t.Fatalf("status %d %s", o.status, o.body)
		}
	})
}

// A proof works once: the same proof (or another with the same jti and
// key) is refused; the same jti under another key is another proof.
func TestReplay(t *testing.T) {
	e := newEnv(t, dpop.Config{})
	es := newClient(t, jose.ES256)
	cl := claims(t0)
	p := es.proof(t, cl)
	if o := e.serve(t, request(p), bound(es)); o.status != http.StatusOK {
		t.Fatalf("first use: %d %s", o.status, o.body)
	}
	e.clock.Advance(10 * time.Second)
	if o := e.serve(t, request(p), bound(es)); o.reason != dpop.ReasonReplay {
		t.Fatalf("replay: %d %q", o.status, o.reason)
	}
	if ev := e.lastEvent(t); ev.Severity != "critical" || ev.Fields["jkt"] != es.jkt {
		t.Fatalf("replay event %+v", ev)
	}
	// Re-signed (a new signature, the same jti): still a replay.
	if o := e.serve(t, request(es.proof(t, cl)), bound(es)); o.reason != dpop.ReasonReplay {
		t.Fatalf("re-signed replay: %d %q", o.status, o.reason)
	}
	other := newClient(t, jose.EdDSA)
	if o := e.serve(t, request(other.proof(t, cl)), bound(other)); o.status != http.StatusOK {
		t.Fatalf("same jti, other key: %d %s", o.status, o.body)
	}
	if n := dpop.ReplayLen(e.pol); n != 2 {
		t.Fatalf("replay cache holds %d, want 2", n)
	}
	// Past the window the entry is forgotten, and the proof is stale anyway.
	e.clock.Advance(2 * time.Minute)
	if o := e.serve(t, request(p), bound(es)); o.reason != dpop.ReasonIATOutOfWindow {
		t.Fatalf("stale replay: %d %q", o.status, o.reason)
	}
}

// Refused proofs do not enter the replay cache: a client can fix its
// request and reuse the jti.
func TestRefusedProofNotRemembered(t *testing.T) {
	e := newEnv(t, dpop.Config{})
	es := newClient(t, jose.ES256)
	cl := claims(t0)
	cl["htm"] = http.MethodPost
	if o := e.serve(t, request(es.proof(t, cl)), bound(es)); o.reason != dpop.ReasonHTMMismatch {
		t.Fatalf("got %q", o.reason)
	}
	cl["htm"] = http.MethodGet
	if o := e.serve(t, request(es.proof(t, cl)), bound(es)); o.status != http.StatusOK {
		t.Fatalf("got %d %s", o.status, o.body)
	}
}

// Server nonces: a proof without one gets 401 use_dpop_nonce and a fresh
// nonce; the retry with it passes; a nonce past its lifetime, forged, or
// from another policy is refused; one past half its lifetime is renewed.
func TestNonceFlow(t *testing.T) {
	cfg := dpop.Config{Nonce: dpop.NonceConfig{Enabled: true, Lifetime: time.Minute}}
	e := newEnv(t, cfg)
	es := newClient(t, jose.ES256)

	o := e.serve(t, request(es.proof(t, claims(e.clock.Now()))), bound(es))
	nonce := o.header.Get(dpop.HeaderNonce)
	if o.reason != dpop.ReasonNonceRequired || nonce == "" {
		t.Fatalf("first request: %d %q nonce %q", o.status, o.reason, nonce)
	}
	checkChallenge(t, o, e.pol, "use_dpop_nonce")
	if ev := e.lastEvent(t); ev.Severity != "info" {
		t.Fatalf("nonce event severity %q", ev.Severity)
	}

	withNonce := func(n string) map[string]any {
		cl := claims(e.clock.Now())
		cl["nonce"] = n
		return cl
	}
	if o := e.serve(t, request(es.proof(t, withNonce(nonce))), bound(es)); o.status != http.StatusOK || o.header.Get(dpop.HeaderNonce) != "" {
		t.Fatalf("retry with the nonce: %d %s, nonce %q", o.status, o.body, o.header.Get(dpop.HeaderNonce))
	}
	// Past half its lifetime: accepted, and a new nonce comes with the response.
	e.clock.Advance(40 * time.Second)
	o = e.serve(t, request(es.proof(t, withNonce(nonce))), bound(es))
	renewed := o.header.Get(dpop.HeaderNonce)
	if o.status != http.StatusOK || renewed == "" || renewed == nonce {
		t.Fatalf("aging nonce: %d %s, renewed %q", o.status, o.body, renewed)
	}
	// Past its lifetime: refused, with a fresh one.
	e.clock.Advance(21 * time.Second)
	o = e.serve(t, request(es.proof(t, withNonce(nonce))), bound(es))
	if o.reason != dpop.ReasonNonceRequired || o.header.Get(dpop.HeaderNonce) == "" {
		t.Fatalf("stale nonce: %d %q", o.status, o.reason)
	}
	if o := e.serve(t, request(es.proof(t, withNonce(renewed))), bound(es)); o.status != http.StatusOK {
		t.Fatalf("renewed nonce: %d %s", o.status, o.body)
	}
	// A nonce is the policy's own: forged or from another policy, refused.
	other := newEnv(t, cfg)
	other.clock.Set(e.clock.Now())
	foreign := other.serve(t, request(es.proof(t, claims(other.clock.Now()))), bound(es)).header.Get(dpop.HeaderNonce)
	for _, n := range []string{foreign, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "", strings.Repeat("x", 300)} {
		if o := e.serve(t, request(es.proof(t, withNonce(n))), bound(es)); o.reason != dpop.ReasonNonceRequired {
			t.Fatalf("nonce %q: %d %q", n, o.status, o.reason)
		}
	}
	// Long after (key rotated twice): refused even within the age check's reach.
	e.clock.Advance(5 * time.Minute)
	if _, ok := dpop.NonceAge(e.pol, renewed, e.clock.Now()); ok {
		t.Fatal("a nonce outlived its keys")
	}
}

// The replay cache is bounded: a flood of unique jtis never grows it past
// max_entries, and evicting live entries never opens a replay.
func TestReplayCacheBounded(t *testing.T) {
	const max = 64
	e := newEnv(t, dpop.Config{ReplayCache: dpop.ReplayCacheConfig{MaxEntries: max}})
	es := newClient(t, jose.ES256)
	first := es.proof(t, claims(e.clock.Now()))
	if o := e.serve(t, request(first), bound(es)); o.status != http.StatusOK {
		t.Fatalf("first: %d %s", o.status, o.body)
	}
	accepted := 1
	for i := range 2000 {
		if i%100 == 0 {
			e.clock.Advance(time.Second) // later iats: these outlive the evicted ones
		}
		if o := e.serve(t, request(es.proof(t, claims(e.clock.Now()))), bound(es)); o.status == http.StatusOK {
			accepted++
		}
		if n := dpop.ReplayLen(e.pol); n > max {
			t.Fatalf("replay cache holds %d > %d", n, max)
		}
	}
	if accepted < 20*max/2 {
		t.Fatalf("only %d of 2001 accepted: eviction refuses too much", accepted)
	}
	// The first proof was evicted long ago, and is still in its window: a
	// replay must still be refused.
	if o := e.serve(t, request(first), bound(es)); o.reason != dpop.ReasonReplay {
		t.Fatalf("replay of an evicted proof: %d %q", o.status, o.reason)
	}
}

// Policies are safe for concurrent use: a proof sent many times at once is
// accepted exactly once.
func TestConcurrentReplay(t *testing.T) {
	e := newEnv(t, dpop.Config{})
	es := newClient(t, jose.EdDSA)
	p := es.proof(t, claims(t0))
	results := make(chan int, 32)
	for range cap(results) {
		go func() { results <- e.serve(t, request(p), bound(es)).status }()
	}
	ok := 0
	for range cap(results) {
		if <-results == http.StatusOK {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("accepted %d times", ok)
	}
}
