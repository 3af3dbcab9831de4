package stepup_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/auth/stepup"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/store"
	"github.com/wardengw/warden/internal/testkit"
)

// t0 is on a step boundary plus 10 s.
var t0 = time.Date(2030, 6, 1, 12, 0, 10, 0, time.UTC)

// fixture: a store on a temp file, the gateway's Env around it, an audit
// sink and a settable clock.
type fixture struct {
	path  string
	store *store.Store
	clock *testkit.Clock
	sink  *audit.MemorySink
	env   *policy.Env
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{path: filepath.Join(t.TempDir(), "warden.db"), clock: testkit.NewClock(t0), sink: audit.NewMemorySink()}
	f.store = openStore(t, f.path)
	f.env = &policy.Env{Audit: audit.New(f.sink), Now: f.clock.Now, Records: f.store}
	return f
}

func openStore(t testing.TB, path string) *store.Store {
	t.Helper()
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// enroll enrolls consumer and returns the secret.
func (f *fixture) enroll(t testing.TB, consumer string) []byte {
	t.Helper()
	secret, err := stepup.Enroll(context.Background(), f.store, consumer, f.clock.Now(), false)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// inGateway stands for the gateway and an earlier authentication policy:
// it gives each request an Exchange with env, and the consumer named in
// the X-Test-Consumer header.
func inGateway(env *policy.Env, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := &policy.Exchange{ID: "req-1", Route: "payments", Remote: r.RemoteAddr, Env: env}
		if c := r.Header.Get("X-Test-Consumer"); c != "" {
			x.Identity.Consumer = c
			x.Identity.Methods = []string{"api_key"}
		}
		h.ServeHTTP(w, r.WithContext(policy.WithExchange(r.Context(), x)))
	})
}

// seen is what the upstream reports it received.
type seen struct {
	Methods  []string `json:"methods"`
	OTP      string   `json:"otp"`
	Approval string   `json:"approval"`
	Body     string   `json:"body"`
}

var upstream = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	_ = json.NewEncoder(w).Encode(seen{Methods: policy.ExchangeOf(r).Identity.Methods,
		OTP: r.Header.Get("Warden-OTP"), Approval: r.Header.Get("Warden-Approval"), Body: string(b)})
})

func newPolicy(t testing.TB, cfg stepup.Config) *stepup.Policy {
	t.Helper()
	p, err := stepup.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// result is one response, decoded.
type result struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r result) reason() string { s, _ := r.body["reason"].(string); return s }

// client sends requests to a server as a consumer.
type client struct {
	t   testing.TB
	srv *httptest.Server
}

func (c client) do(method, path, consumer, body string, h map[string]string) result {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.srv.URL+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if consumer != "" {
		req.Header.Set("X-Test-Consumer", consumer)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	res := result{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	_ = json.Unmarshal(b, &res.body)
	return res
}

// events returns the audit events of a type.
func (f *fixture) events(typ string) []audit.Event {
	var out []audit.Event
	for _, e := range f.sink.Events() {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}
