package dpop_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/auth/dpop"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/telemetry"
)

// tokenStandIn plays the jwt policy: it looks the access token (DPoP or
// Bearer scheme) up in a table of already-verified claims.
type tokenStandIn map[string]map[string]any

func (ts tokenStandIn) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _, err := dpop.AccessToken(r)
		cl, ok := ts[tok]
		if err != nil || !ok {
			policy.Deny(w, r, policy.Problem{Status: http.StatusUnauthorized, Reason: "token_invalid"})
			return
		}
		x := policy.ExchangeOf(r)
		x.Identity.Claims = cl
		x.Identity.Methods = append(x.Identity.Methods, "jwt")
		next.ServeHTTP(w, r)
	})
}

// e2eClient sends DPoP requests over real HTTPS, learning server nonces.
type e2eClient struct {
	t     *testing.T
	http  *http.Client
	base  string
	c     *client
	token string
	nonce string
}

// do sends method path with a fresh proof (or the given one) and returns
// the response and the proof it sent.
func (ec *e2eClient) do(method, path, proof, scheme string) (*http.Response, string) {
	ec.t.Helper()
	if proof == "" {
		cl := claims(time.Now())
		cl["htm"], cl["htu"], cl["ath"] = method, ec.base+path, dpop.AccessTokenHash(ec.token)
		if ec.nonce != "" {
			cl["nonce"] = ec.nonce
		}
		proof = ec.c.proof(ec.t, cl)
	}
	req, err := http.NewRequest(method, ec.base+path+"?q=1", nil)
	if err != nil {
		ec.t.Fatal(err)
	}
	req.Header.Set("Authorization", scheme+" "+ec.token)
	req.Header.Set("DPoP", proof)
	resp, err := ec.http.Do(req)
	if err != nil {
		ec.t.Fatal(err)
	}
	if n := resp.Header.Get(dpop.HeaderNonce); n != "" {
		ec.nonce = n
	}
	return resp, proof
}

func reasonOf(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		return ""
	}
	var p struct{ Reason string }
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("%d %q: %v", resp.StatusCode, b, err)
	}
	return p.Reason
}

// End to end over HTTPS on 127.0.0.1: a token bound to the client's key
// works with its proofs; the attacks DPoP exists for fail: a replayed
// request, a proof moved to another URI, the token stolen and used with
// the thief's key or as a bearer token. A route with nonces walks the
// use_dpop_nonce exchange.
func TestEndToEnd(t *testing.T) {
	alice := newClient(t, jose.ES256)
	mallory := newClientKey(t, jose.ES256, otherKey)
	tokens := tokenStandIn{"alice-token": bound(alice)}
	sink := audit.NewMemorySink()
	env := &policy.Env{Audit: audit.New(sink), Metrics: telemetry.New()}

	plain, err := dpop.New(dpop.Config{})
	if err != nil {
		t.Fatal(err)
	}
	nonced, err := dpop.New(dpop.Config{Nonce: dpop.NonceConfig{Enabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(policy.ExchangeOf(r).Identity.Methods)
	})
	routes := map[string]http.Handler{
		"/api/":   policy.Chain(upstream, tokens, plain),
		"/nonce/": policy.Chain(upstream, tokens, nonced),
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := &policy.Exchange{ID: "e2e", Route: "api", Env: env, Remote: r.RemoteAddr}
		r = r.WithContext(policy.WithExchange(r.Context(), x))
		for prefix, h := range routes {
			if strings.HasPrefix(r.URL.Path, prefix) {
				h.ServeHTTP(w, r)
				return
			}
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "https://127.0.0.1:") {
		t.Fatalf("server at %s", srv.URL)
	}
	ec := &e2eClient{t: t, http: srv.Client(), base: srv.URL, c: alice, token: "alice-token"}

	resp, proof := ec.do(http.MethodGet, "/api/items", "", "DPoP")
	var methods []string
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&methods) != nil || strings.Join(methods, ",") != "jwt,dpop" {
		t.Fatalf("alice: %d, methods %v", resp.StatusCode, methods)
	}
	resp.Body.Close()

	// The request captured on the wire and replayed verbatim.
	resp, _ = ec.do(http.MethodGet, "/api/items", proof, "DPoP")
	if r := reasonOf(t, resp); r != dpop.ReasonReplay || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_dpop_proof"`) {
		t.Fatalf("replay: %q, challenge %q", r, resp.Header.Get("WWW-Authenticate"))
	}
	// A fresh proof for /api/items, sent to another resource.
	cl := claims(time.Now())
	cl["htu"], cl["ath"] = srv.URL+"/api/items", dpop.AccessTokenHash("alice-token")
	if resp, _ = ec.do(http.MethodGet, "/api/admin", alice.proof(t, cl), "DPoP"); reasonOf(t, resp) != dpop.ReasonHTUMismatch {
		t.Fatal("proof moved to another URI was not refused")
	}
	// Mallory stole alice's token but not her key.
	thief := &e2eClient{t: t, http: srv.Client(), base: srv.URL, c: mallory, token: "alice-token"}
	if resp, _ = thief.do(http.MethodGet, "/api/items", "", "DPoP"); reasonOf(t, resp) != dpop.ReasonJKTMismatch {
		t.Fatal("stolen token with the thief's key was not refused")
	}
	if resp, _ = thief.do(http.MethodGet, "/api/items", "", "Bearer"); reasonOf(t, resp) != dpop.ReasonBoundTokenAsBearer {
		t.Fatal("stolen token as Bearer was not refused")
	}

	// Nonces: the first request learns one, the retry passes.
	resp, _ = ec.do(http.MethodPost, "/nonce/orders", "", "DPoP")
	if r := reasonOf(t, resp); r != dpop.ReasonNonceRequired || ec.nonce == "" ||
		!strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) {
		t.Fatalf("first nonce request: %q, nonce %q", r, ec.nonce)
	}
	if resp, _ = ec.do(http.MethodPost, "/nonce/orders", "", "DPoP"); reasonOf(t, resp) != "" {
		t.Fatal("retry with the nonce was refused")
	}

	// Every refusal was audited, none with the token or a proof.
	for _, ev := range sink.Events() {
		b, _ := json.Marshal(ev)
		if strings.Contains(string(b), "alice-token") || strings.Contains(string(b), proof) {
			t.Fatalf("audit event leaks a secret: %s", b)
		}
	}
	if n := len(sink.Events()); n != 5 {
		t.Fatalf("%d audit events, want 5", n)
	}
}
