package jwt_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/auth/jwt"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/telemetry"
	"github.com/wardengw/warden/internal/testkit"
)

const (
	testIssuer   = "https://idp.example"
	testAudience = "https://api.example"
)

// keyring: the issuer's keys (one per algorithm family) and an attacker's,
// generated once per test binary.
type keyring struct {
	rsa, attacker *rsa.PrivateKey
	ec            *ecdsa.PrivateKey
	ed            ed25519.PrivateKey
}

var (
	ringOnce sync.Once
	ring     keyring
)

func keys(t testing.TB) *keyring {
	t.Helper()
	ringOnce.Do(func() {
		var err error
		if ring.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ring.attacker, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ring.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if _, ring.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
	return &ring
}

// signer signs as one kid with one algorithm.
type signer struct {
	alg, kid string
	key      any // crypto.Signer, or []byte for HMAC
}

func (k *keyring) rs256() signer { return signer{"RS256", "rsa-1", k.rsa} }
func (k *keyring) ps256() signer { return signer{"PS256", "rsa-1", k.rsa} }
func (k *keyring) es256() signer { return signer{"ES256", "ec-1", k.ec} }
func (k *keyring) eddsa() signer { return signer{"EdDSA", "ed-1", k.ed} }

// jwks is the issuer's public key set.
func (k *keyring) jwks(t testing.TB) []byte {
	return jwksOf(t,
		jose.JSONWebKey{Key: k.rsa.Public(), KeyID: "rsa-1", Use: "sig"},
		jose.JSONWebKey{Key: k.ec.Public(), KeyID: "ec-1", Use: "sig"},
		jose.JSONWebKey{Key: k.ed.Public(), KeyID: "ed-1", Use: "sig"})
}

func jwksOf(t testing.TB, ks ...jose.JSONWebKey) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: ks})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var b64 = base64.RawURLEncoding

// signRaw builds a compact JWS from exact header and payload bytes, so that
// tests can send what no library would produce.
func signRaw(t testing.TB, alg string, key any, header, payload []byte) string {
	t.Helper()
	input := b64.EncodeToString(header) + "." + b64.EncodeToString(payload)
	h := sha256.Sum256([]byte(input))
	var sig []byte
	var err error
	switch alg {
	case "RS256":
		sig, err = rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, h[:])
	case "PS256":
		sig, err = rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, h[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "ES256":
		var r, s *big.Int
		r, s, err = ecdsa.Sign(rand.Reader, key.(*ecdsa.PrivateKey), h[:])
		if err == nil {
			sig = make([]byte, 64)
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
		}
	case "EdDSA":
		sig = ed25519.Sign(key.(ed25519.PrivateKey), []byte(input))
	case "HS256":
		m := hmac.New(sha256.New, key.([]byte))
		m.Write([]byte(input))
		sig = m.Sum(nil)
	default: // "none" in any casing: no signature
	}
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64.EncodeToString(sig)
}

// mint signs claims with s; extra header members are added (or, with a nil
// value, removed).
func mint(t testing.TB, s signer, claims map[string]any, extra map[string]any) string {
	t.Helper()
	h := map[string]any{"alg": s.alg, "typ": "at+jwt"}
	if s.kid != "" {
		h["kid"] = s.kid
	}
	for k, v := range extra {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	hb, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return signRaw(t, s.alg, s.key, hb, pb)
}

// keyServer is an HTTPS server on 127.0.0.1 serving a JWK set (or failing
// with 503 while down), counting its hits.
type keyServer struct {
	url    string
	caFile string // its certificate, as a PEM file
	hits   atomic.Int64
	down   atomic.Bool
	body   atomic.Pointer[[]byte]
}

func newKeyServer(t testing.TB, body []byte) *keyServer {
	t.Helper()
	ks := &keyServer{}
	ks.set(body)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.hits.Add(1)
		if ks.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(*ks.body.Load())
	}))
	t.Cleanup(srv.Close)
	ks.url = srv.URL + "/jwks.json"
	ks.caFile = writePEM(t, srv.Certificate())
	return ks
}

func (ks *keyServer) set(body []byte) { ks.body.Store(&body) }

func writePEM(t testing.TB, c *x509.Certificate) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// world is one jwt policy in front of an echo handler, with the issuer's
// key set served over HTTPS, an injected clock, audit and metrics.
type world struct {
	keys   *keyring
	ks     *keyServer
	policy *jwt.Policy
	clock  *testkit.Clock
	sink   *audit.MemorySink
	env    *policy.Env
	h      http.Handler
	seen   atomic.Pointer[policy.Identity] // the identity the upstream saw last
	header atomic.Pointer[http.Header]     // the headers the upstream saw last
}

func newWorld(t testing.TB, mod func(*jwt.Config)) *world {
	t.Helper()
	w := &world{keys: keys(t), clock: testkit.NewClock(time.Now().Truncate(time.Second)), sink: audit.NewMemorySink()}
	w.ks = newKeyServer(t, w.keys.jwks(t))
	cfg := jwt.Config{Issuers: []jwt.Issuer{{
		Issuer: testIssuer, JWKSURL: w.ks.url, CAFile: policy.FilePath(w.ks.caFile), Audiences: []string{testAudience},
	}}}
	if mod != nil {
		mod(&cfg)
	}
	p, err := jwt.New(cfg)
	if err != nil {
		t.Fatalf("jwt.New: %v", err)
	}
	w.policy = p
	w.env = &policy.Env{Audit: audit.New(w.sink), Metrics: telemetry.New(), Now: w.clock.Now}
	w.h = p.Wrap(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		id := policy.ExchangeOf(r).Identity
		w.seen.Store(&id)
		h := r.Header.Clone()
		w.header.Store(&h)
		rw.WriteHeader(http.StatusOK)
	}))
	return w
}

// claims are valid claims at the world's time.
func (w *world) claims() map[string]any {
	now := w.clock.Now().Unix()
	return map[string]any{"iss": testIssuer, "aud": testAudience, "sub": "alice", "iat": now, "nbf": now,
		"exp": now + 300, "jti": "jti-" + rand.Text(), "scope": "orders:read orders:write"}
}

// with returns the world's valid claims changed by kv pairs (a nil value
// deletes the claim).
func (w *world) with(kv ...any) map[string]any {
	c := w.claims()
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

// request builds a request carrying token as a bearer token ("" for
// none).
func request(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://gw.example/orders", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

// serve runs r through the policy in process, with an Exchange the way the
// gateway builds it.
func (w *world) serve(r *http.Request) *httptest.ResponseRecorder {
	x := &policy.Exchange{ID: "req-1", Route: "test", Remote: "192.0.2.1:1234", Env: w.env}
	return w.serveX(r, x)
}

func (w *world) serveX(r *http.Request, x *policy.Exchange) *httptest.ResponseRecorder {
	r = r.WithContext(policy.WithExchange(r.Context(), x))
	rec := httptest.NewRecorder()
	w.h.ServeHTTP(rec, r)
	return rec
}

func (w *world) do(token string) *httptest.ResponseRecorder { return w.serve(request(token)) }

// reasonOf returns the problem's reason, "" for a 200.
func reasonOf(t testing.TB, rec *httptest.ResponseRecorder) string {
	t.Helper()
	if rec.Code == http.StatusOK {
		return ""
	}
	var p struct {
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem body %q: %v", rec.Body, err)
	}
	return p.Reason
}

// expect asserts the outcome of a request: reason "" means accepted.
func expect(t testing.TB, rec *httptest.ResponseRecorder, reason string) {
	t.Helper()
	if got := reasonOf(t, rec); got != reason {
		t.Fatalf("status %d reason %q, want reason %q (body %s)", rec.Code, got, reason, rec.Body)
	}
}

func writeFile(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func timeNow() time.Time { return time.Now() }

// attacker4 signs as the issuer's RSA kid with the attacker's key.
func (k *keyring) attacker4() signer { return signer{"RS256", "rsa-1", k.attacker} }
