package jwt_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/auth/jwt"
	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/telemetry"
	"github.com/wardengw/warden/internal/testkit"
)

// authServer is an RFC 7662 introspection endpoint on 127.0.0.1 over
// HTTPS: it knows some tokens, checks the gateway's client credentials and
// counts its calls.
type authServer struct {
	url, caFile string
	calls       atomic.Int64
	down        atomic.Bool
	mu          sync.Mutex
	tokens      map[string]map[string]any
}

func newAuthServer(t *testing.T) *authServer {
	a := &authServer{tokens: map[string]map[string]any{}}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.calls.Add(1)
		if a.down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		id, secret, ok := r.BasicAuth()
		if !ok || id != "gateway" || secret != "s3cret" || r.Method != http.MethodPost || r.FormValue("token_type_hint") != "access_token" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		a.mu.Lock()
		resp, known := a.tokens[r.FormValue("token")]
		a.mu.Unlock()
		if !known {
			resp = map[string]any{"active": false}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	}))
	t.Cleanup(srv.Close)
	a.url, a.caFile = srv.URL+"/introspect", writePEM(t, srv.Certificate())
	return a
}

func (a *authServer) add(token string, resp map[string]any) {
	a.mu.Lock()
	a.tokens[token] = resp
	a.mu.Unlock()
}

func TestIntrospection(t *testing.T) {
	as := newAuthServer(t)
	clock := testkit.NewClock(time.Now().Truncate(time.Second))
	sink := audit.NewMemorySink()
	env := &policy.Env{Audit: audit.New(sink), Metrics: telemetry.New(), Now: clock.Now}
	p, err := jwt.NewIntrospection(jwt.IntrospectionConfig{Endpoint: as.url, ClientID: "gateway",
		ClientSecretFile: policy.FilePath(writeFile(t, "s3cret\n")), CAFile: policy.FilePath(as.caFile),
		Scopes: []string{"orders:read"}})
	if err != nil {
		t.Fatal(err)
	}
	if as.calls.Load() != 0 {
		t.Fatal("the factory called the endpoint")
	}
	var seen atomic.Pointer[policy.Identity]
	h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := policy.ExchangeOf(r).Identity
		seen.Store(&id)
	}))
	serve := func(token string, cert *x509.Certificate) *httptest.ResponseRecorder {
		x := &policy.Exchange{ID: "i", Route: "test", Env: env}
		x.Identity.ClientCert = cert
		r := request(token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r.WithContext(policy.WithExchange(r.Context(), x)))
		return rec
	}
	now := clock.Now().Unix()
	as.add("opaque-active", map[string]any{"active": true, "sub": "alice", "scope": "orders:read", "exp": now + 30, "client_id": "app"})
	as.add("opaque-noscope", map[string]any{"active": true, "sub": "bob", "scope": "other", "exp": now + 300})

	// Active: accepted, identity set, cached until exp.
	for range 5 {
		expect(t, serve("opaque-active", nil), "")
	}
	if id := seen.Load(); id.Consumer != "alice" || id.Methods[0] != jwt.MethodIntrospection || id.Claims["client_id"] != "app" || id.Claims["active"] != nil {
		t.Errorf("identity %+v", id)
	}
	if n := as.calls.Load(); n != 1 {
		t.Fatalf("%d endpoint calls for 5 requests, want 1", n)
	}
	// Past exp (30s, under the 60s TTL): asked again, and refused.
	clock.Advance(30 * time.Second)
	as.add("opaque-active", map[string]any{"active": false})
	expect(t, serve("opaque-active", nil), jwt.ReasonTokenInactive)
	if n := as.calls.Load(); n != 2 {
		t.Fatalf("%d endpoint calls, want 2: the cached answer outlived exp", n)
	}
	// Inactive and unknown tokens; scope rule.
	expect(t, serve("opaque-unknown", nil), jwt.ReasonTokenInactive)
	rec := serve("opaque-noscope", nil)
	expect(t, rec, jwt.ReasonInsufficientScope)
	if rec.Code != http.StatusForbidden {
		t.Errorf("status %d, want 403", rec.Code)
	}
	// cnf binding from the introspection response.
	root := pkitest.NewRootCA(t, "Root", pkitest.Options{})
	a, b := root.Issue(t, pkitest.Options{CommonName: "a"}), root.Issue(t, pkitest.Options{CommonName: "b"})
	as.add("opaque-bound", map[string]any{"active": true, "sub": "carol", "scope": "orders:read", "exp": now + 600,
		"cnf": map[string]any{"x5t#S256": thumbprint(a.Cert)}})
	expect(t, serve("opaque-bound", b.Cert), jwt.ReasonCnfMismatch)
	expect(t, serve("opaque-bound", a.Cert), "")
	expect(t, serve("opaque-bound", nil), jwt.ReasonCnfMismatch)

	// Endpoint down: fail closed with 503, an event, nothing cached.
	as.down.Store(true)
	rec = serve("opaque-never-seen", nil)
	expect(t, rec, jwt.ReasonIntrospectionFailed)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", rec.Code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := sink.Wait(ctx, func(e audit.Event) bool { return e.Type == jwt.EventIntrospectionFailed }); err != nil {
		t.Error("no introspection_failed event")
	}
	// A cached active answer still serves while the endpoint is down, until
	// it expires.
	expect(t, serve("opaque-bound", a.Cert), "")
	clock.Advance(jwt.DefaultIntrospectionTTL)
	expect(t, serve("opaque-bound", a.Cert), jwt.ReasonIntrospectionFailed)

	// Revocation by jti applies to introspected tokens too.
	as.down.Store(false)
	as.add("opaque-jti", map[string]any{"active": true, "sub": "d", "scope": "orders:read", "jti": "j-9"})
	d := jwt.NewDenyList()
	p.UseDenyList(d)
	expect(t, serve("opaque-jti", nil), "")
	_ = d.Add("j-9", clock.Now().Add(time.Hour))
	expect(t, serve("opaque-jti", nil), jwt.ReasonJTIRevoked)
}

// TestIntrospectionWrongCredentials: an endpoint refusing the gateway's
// credentials fails closed.
func TestIntrospectionWrongCredentials(t *testing.T) {
	as := newAuthServer(t)
	as.add("tok", map[string]any{"active": true})
	p, err := jwt.NewIntrospection(jwt.IntrospectionConfig{Endpoint: as.url, ClientID: "gateway",
		ClientSecretFile: policy.FilePath(writeFile(t, "wrong")), CAFile: policy.FilePath(as.caFile)})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	p.Wrap(http.NotFoundHandler()).ServeHTTP(rec, request("tok"))
	expect(t, rec, jwt.ReasonIntrospectionFailed)
}
