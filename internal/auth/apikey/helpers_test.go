package apikey_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/auth/apikey"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/store"
	"github.com/wardengw/warden/internal/testkit"
)

var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// counting wraps a KeyStore and counts lookups.
type counting struct {
	apikey.KeyStore
	n atomic.Int64
}

func (c *counting) KeyByLookupID(ctx context.Context, id string) (store.APIKey, error) {
	c.n.Add(1)
	return c.KeyStore.KeyByLookupID(ctx, id)
}

// fixture: a store on a temp file with consumer "billing", the gateway's
// Env around it, and an audit sink.
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
	if err := f.store.CreateConsumer(context.Background(), store.Consumer{Name: "billing", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	f.env = &policy.Env{Audit: audit.New(f.sink), Now: f.clock.Now}
	f.setRecords(t, f.store)
	return f
}

func (f *fixture) setRecords(t testing.TB, v any) {
	t.Helper()
	f.env.Records = v
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

// issue makes a key for consumer that expires after life (0: never).
func (f *fixture) issue(t testing.TB, consumer string, life time.Duration) apikey.Key {
	t.Helper()
	var exp time.Time
	if life > 0 {
		exp = f.clock.Now().Add(life)
	}
	k, _, err := apikey.Issue(context.Background(), f.store, consumer, f.clock.Now(), exp)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// inGateway stands for the gateway: it gives each request an Exchange
// with env.
func inGateway(env *policy.Env, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := &policy.Exchange{ID: "req-1", Route: "api", Remote: r.RemoteAddr, Env: env}
		h.ServeHTTP(w, r.WithContext(policy.WithExchange(r.Context(), x)))
	})
}

// upstream reports what it received: the identity, the key header and the
// query.
type seen struct {
	Consumer string   `json:"consumer"`
	Methods  []string `json:"methods"`
	Header   string   `json:"header"`
	Query    string   `json:"query"`
	URI      string   `json:"uri"`
}

var upstream = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	id := policy.ExchangeOf(r).Identity
	_ = json.NewEncoder(w).Encode(seen{Consumer: id.Consumer, Methods: id.Methods,
		Header: r.Header.Get("X-API-Key"), Query: r.URL.RawQuery, URI: r.RequestURI})
})

func newPolicy(t testing.TB, cfg apikey.Config) *apikey.Policy {
	t.Helper()
	p, err := apikey.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// problem is the deny body.
type problem struct {
	Type   string `json:"type"`
	Status int    `json:"status"`
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}
