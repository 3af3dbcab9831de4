package gateway

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardengw/warden/internal/auth/dpop"
)

// tokenWorld is an issuer key (in the gateway's jwks.json) and a client key
// for DPoP proofs.
type tokenWorld struct {
	issuer *ecdsa.PrivateKey
	client *ecdsa.PrivateKey
}

func newTokenEnv(t *testing.T) (*env, *tokenWorld) {
	t.Helper()
	w := &tokenWorld{}
	var err error
	if w.issuer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if w.client, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &w.issuer.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	// The env's folder is made inside newEnv; write the JWKS where the
	// config will look, through a pre-hook.
	e := newEnvWith(t, map[string]any{"JWT": true, "AdminCA": true}, func(e *env) {
		if err := os.WriteFile(filepath.Join(e.dir, "jwks.json"), jwks, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	return e, w
}

func (w *tokenWorld) token(t *testing.T, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: w.issuer, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	base := map[string]any{"iss": "https://idp.test", "aud": "warden-test", "sub": "alice", "iat": now, "exp": now + 300, "jti": "t-" + base64.RawURLEncoding.EncodeToString(randBytes(6))}
	for k, v := range claims {
		base[k] = v
	}
	payload, _ := json.Marshal(base)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

func (w *tokenWorld) proof(t *testing.T, method, url, token string) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: w.client},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	ath := sha256.Sum256([]byte(token))
	payload, _ := json.Marshal(map[string]any{"jti": base64.RawURLEncoding.EncodeToString(randBytes(12)), "htm": method, "htu": url,
		"iat": time.Now().Unix(), "ath": base64.RawURLEncoding.EncodeToString(ath[:])})
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// TestTokensThroughTheGateway: a JWT route admits a valid token and
// forwards its claims, refuses a forged one, and refuses a token once its
// jti is deny-listed through the admin API; a DPoP route admits a bound
// token with a fresh proof and refuses a replayed proof and a stolen token
// presented without the holder's key.
func TestTokensThroughTheGateway(t *testing.T) {
	e, w := newTokenEnv(t)
	c := e.client()
	do := func(path, auth, proof string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", e.httpsURL(path), nil)
		req.Host = "localhost"
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
		req.Header.Set("X-Token-Claims", `{"sub":"root"}`) // forged: must be replaced
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	tok := w.token(t, map[string]any{"jti": "jti-1"})
	resp := do("/token/x", "Bearer "+tok, "")
	var echo upstreamEcho
	_ = json.NewDecoder(resp.Body).Decode(&echo)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains([]byte(echo.Header.Get("X-Token-Claims")), []byte(`"sub":"alice"`)) {
		t.Fatalf("valid token: %d, claims header %q", resp.StatusCode, echo.Header.Get("X-Token-Claims"))
	}
	forged := tok[:len(tok)-4] + "AAAA"
	if p := readProblem(t, do("/token/x", "Bearer "+forged, "")); p.Reason != "bad_signature" {
		t.Fatalf("forged token: %s", p.Reason)
	}

	// Deny-list the jti through the admin API (admin CA = the test CA).
	admin := adminClientFor(t, e)
	_, _, adminAddr := e.g.Addrs()
	body, _ := json.Marshal(map[string]any{"jti": "jti-1", "until": time.Now().Add(time.Hour).Format(time.RFC3339)})
	r, err := admin.Post("https://"+adminAddr.String()+"/api/jwt/deny", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("deny-list via admin API: %d", r.StatusCode)
	}
	if p := readProblem(t, do("/token/x", "Bearer "+tok, "")); p.Reason != "jti_revoked" {
		t.Fatalf("deny-listed token: %s", p.Reason)
	}

	// DPoP: a token bound to the client's key.
	jkt, err := dpop.Thumbprint(&w.client.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	bound := w.token(t, map[string]any{"cnf": map[string]any{"jkt": jkt}})
	url := "https://localhost/bound/x" // the request's Host is localhost
	p1 := w.proof(t, "GET", url, bound)
	resp = do("/bound/x", "DPoP "+bound, p1)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("bound token with a fresh proof: %d", resp.StatusCode)
	}
	if p := readProblem(t, do("/bound/x", "DPoP "+bound, p1)); p.Reason != "dpop_replay" {
		t.Fatalf("replayed proof: %s", p.Reason)
	}
	if p := readProblem(t, do("/bound/x", "Bearer "+bound, "")); p.Reason != "dpop_bound_token_as_bearer" {
		t.Fatalf("stolen bound token as bearer: %s", p.Reason)
	}
}
