package dpop_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/auth/dpop"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/telemetry"
	"github.com/wardengw/warden/internal/testkit"
)

// The request the tests send unless a case changes it.
const (
	testHost  = "gw.example"
	testPath  = "/api/items"
	testHTU   = "https://" + testHost + testPath
	testToken = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl" // opaque to the policy
)

// t0 is the tests' pinned time.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// client is a DPoP client: a key pair and the algorithm it signs with.
type client struct {
	alg jose.SignatureAlgorithm
	key crypto.Signer
	jkt string
}

var (
	keysOnce sync.Once
	ecKey    *ecdsa.PrivateKey
	edKey    ed25519.PrivateKey
	rsaKey   *rsa.PrivateKey
	otherKey *ecdsa.PrivateKey
	p384Key  *ecdsa.PrivateKey
)

// keys generates the tests' keys once per test binary: RSA-2048 is slow
// under the race detector.
func keys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if _, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if otherKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if p384Key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
			panic(err)
		}
	})
}

func newClient(t testing.TB, alg jose.SignatureAlgorithm) *client {
	t.Helper()
	keys(t)
	var k crypto.Signer
	switch alg {
	case jose.ES256:
		k = ecKey
	case jose.EdDSA:
		k = edKey
	case jose.RS256, jose.PS256:
		k = rsaKey
	case jose.ES384:
		k = p384Key
	default:
		t.Fatalf("no test key for %s", alg)
	}
	return newClientKey(t, alg, k)
}

func newClientKey(t testing.TB, alg jose.SignatureAlgorithm, k crypto.Signer) *client {
	t.Helper()
	jkt, err := dpop.Thumbprint(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return &client{alg: alg, key: k, jkt: jkt}
}

// claims are a proof's default claims for a GET of testHTU at now with
// testToken.
func claims(now time.Time) map[string]any {
	return map[string]any{
		"jti": rand.Text(), "htm": http.MethodGet, "htu": testHTU,
		"iat": now.Unix(), "ath": dpop.AccessTokenHash(testToken),
	}
}

// proof signs claims with go-jose, the way a client library would: typ
// dpop+jwt and the public key embedded as jwk. edit may change the
// signer options (extra headers) first.
func (c *client) proof(t testing.TB, cl map[string]any, edit ...func(*jose.SignerOptions)) string {
	t.Helper()
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt")
	for _, e := range edit {
		e(opts)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: c.alg, Key: c.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(cl)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// publicJWK is c's public key as a JWK object.
func (c *client) publicJWK(t testing.TB) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: c.key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawProof assembles a compact JWS from a header and claims given as raw
// JSON, for the malformed cases go-jose will not produce, and signs it
// with sign (nil: an empty signature).
func rawProof(header, claims string, sign func(input []byte) []byte) string {
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + enc.EncodeToString(sig)
}

// es256 signs a JWS signing input with k as ES256 (r || s, 32 bytes each).
func es256(k *ecdsa.PrivateKey) func([]byte) []byte {
	return func(input []byte) []byte {
		sum := sha256.Sum256(input)
		r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
		if err != nil {
			panic(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// env is the stand-in gateway around one policy: a pinned clock, an audit
// sink and metrics.
type env struct {
	pol   *dpop.Policy
	clock *testkit.Clock
	sink  *audit.MemorySink
	env   *policy.Env
}

func newEnv(t testing.TB, cfg dpop.Config) *env {
	t.Helper()
	pol, err := dpop.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	clock := testkit.NewClock(t0)
	sink := audit.NewMemorySink()
	return &env{pol: pol, clock: clock, sink: sink,
		env: &policy.Env{Audit: audit.New(sink), Metrics: telemetry.New(), Now: clock.Now}}
}

// bound returns token claims, as the jwt policy would leave them, for a
// token bound to c's key.
func bound(c *client) map[string]any {
	return map[string]any{"sub": "alice", "cnf": map[string]any{"jkt": c.jkt}}
}

// request is a GET of testHTU with Authorization: DPoP testToken and the
// given DPoP headers.
func request(proofs ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, testHTU, nil)
	r.Header.Set("Authorization", "DPoP "+testToken)
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	return r
}

// outcome is what one request through the policy produced.
type outcome struct {
	status  int
	reason  string
	header  http.Header
	methods []string
	body    string
}

// serve runs r through the policy with claims as the Exchange's token
// claims, the way the gateway would after the jwt policy.
func (e *env) serve(t testing.TB, r *http.Request, claims map[string]any) outcome {
	t.Helper()
	x := &policy.Exchange{ID: "req-1", Route: "api", Env: e.env, Identity: policy.Identity{Claims: claims}}
	r = r.WithContext(policy.WithExchange(r.Context(), x))
	var methods []string
	h := e.pol.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		methods = policy.ExchangeOf(r).Identity.Methods
		w.WriteHeader(http.StatusOK)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	o := outcome{status: rec.Code, header: rec.Header(), methods: methods, body: rec.Body.String()}
	if rec.Code != http.StatusOK {
		var body struct{ Reason string }
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("problem body %q: %v", rec.Body.String(), err)
		}
		o.reason = body.Reason
	}
	return o
}

// lastEvent returns the last audit event.
func (e *env) lastEvent(t testing.TB) audit.Event {
	t.Helper()
	evs := e.sink.Events()
	if len(evs) == 0 {
		t.Fatal("no audit event")
	}
	return evs[len(evs)-1]
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
