package apikey_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/auth/apikey"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/store"
)

func reasonOf(err error) string {
	if e, ok := errors.AsType[*apikey.Error](err); ok {
		return e.Reason
	}
	if err != nil {
		return "untyped: " + err.Error()
	}
	return ""
}

func TestAuthenticate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ks := &counting{KeyStore: f.store}
	good := f.issue(t, "billing", 90*24*time.Hour)
	never := f.issue(t, "billing", 0)
	expiring := f.issue(t, "billing", time.Hour)
	revoked := f.issue(t, "billing", 0)
	if err := f.store.RevokeKey(ctx, revoked.LookupID(), t0); err != nil {
		t.Fatal(err)
	}
	if err := f.store.CreateConsumer(ctx, store.Consumer{Name: "gone", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	disabled := f.issue(t, "gone", 0)
	if err := f.store.SetConsumerDisabled(ctx, "gone", true); err != nil {
		t.Fatal(err)
	}
	typo := []byte(good.Reveal())
	typo[30] ^= 0x20 // flip case: still base62
	unknown := newKey(t)
	wrongSecret := apikey.KeyOf(good.LookupID(), strings.Repeat("A", apikey.SecretLen))

	for _, tc := range []struct {
		name    string
		text    string
		now     time.Time
		reason  string
		lookups int64
	}{
		{"valid", good.Reveal(), t0, "", 1},
		{"never expires", never.Reveal(), t0.Add(100 * 365 * 24 * time.Hour), "", 1},
		{"just before expiry", expiring.Reveal(), t0.Add(time.Hour - time.Microsecond), "", 1},
		{"at expiry", expiring.Reveal(), t0.Add(time.Hour), apikey.ReasonExpired, 1},
		{"revoked, whatever the clock", revoked.Reveal(), t0.Add(-time.Hour), apikey.ReasonRevoked, 1},
		{"consumer disabled", disabled.Reveal(), t0, apikey.ReasonConsumerDisabled, 1},
		{"unknown id", unknown.Reveal(), t0, apikey.ReasonUnknown, 1},
		{"right id, wrong secret", wrongSecret.Reveal(), t0, apikey.ReasonUnknown, 1},
		{"checksum typo: no lookup", string(typo), t0, apikey.ReasonMalformed, 0},
		{"garbage: no lookup", "hello", t0, apikey.ReasonMalformed, 0},
		{"empty: no lookup", "", t0, apikey.ReasonMalformed, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := ks.n.Load()
			rec, err := apikey.Authenticate(ctx, ks, tc.text, tc.now)
			if got := reasonOf(err); got != tc.reason {
				t.Fatalf("reason %q, want %q (%v)", got, tc.reason, err)
			}
			if n := ks.n.Load() - before; n != tc.lookups {
				t.Errorf("%d store lookups, want %d", n, tc.lookups)
			}
			if tc.reason == "" && rec.Consumer != "billing" {
				t.Errorf("consumer %q", rec.Consumer)
			}
			if err != nil && strings.Contains(err.Error(), tc.text[min(17, len(tc.text)):]) && len(tc.text) == apikey.Len {
				t.Error("the error quotes the secret")
			}
		})
	}
	// A revoked or expired key is only reported as such to its holder:
	// with the lookup id but not the secret, it is just unknown.
	wrongRevoked := apikey.KeyOf(revoked.LookupID(), strings.Repeat("B", apikey.SecretLen))
	if _, err := apikey.Authenticate(ctx, ks, wrongRevoked.Reveal(), t0); reasonOf(err) != apikey.ReasonUnknown {
		t.Errorf("wrong secret of a revoked key: %v", err)
	}
	if _, err := apikey.Authenticate(ctx, nil, good.Reveal(), t0); reasonOf(err) != apikey.ReasonStoreUnavailable {
		t.Errorf("no store: %v", err)
	}
	f.store.Close()
	if _, err := apikey.Authenticate(ctx, f.store, good.Reveal(), t0); reasonOf(err) != apikey.ReasonStoreUnavailable {
		t.Errorf("closed store: %v", err)
	}
}

// The old key works until the overlap ends, then is refused; the new key
// works throughout.
func TestRotationOverlap(t *testing.T) {
	f := newFixture(t)
	h := inGateway(f.env, newPolicy(t, apikey.Config{}).Wrap(upstream))
	old := f.issue(t, "billing", 90*24*time.Hour)
	f.clock.Set(t0.Add(10 * 24 * time.Hour))
	rotatedAt := f.clock.Now()
	next, rec, err := apikey.Rotate(context.Background(), f.store, old.LookupID(), rotatedAt, rotatedAt.Add(90*24*time.Hour), rotatedAt.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Consumer != "billing" {
		t.Fatalf("successor consumer %q", rec.Consumer)
	}
	for _, step := range []struct {
		at       time.Duration
		old, new int
	}{
		{0, 200, 200},
		{23*time.Hour + 59*time.Minute, 200, 200},
		{24 * time.Hour, 401, 200},
		{48 * time.Hour, 401, 200},
	} {
		f.clock.Set(rotatedAt.Add(step.at))
		if code, body := get(h, old.Reveal(), ""); code != step.old {
			t.Errorf("+%v old key: %d %s", step.at, code, body)
		} else if code == 401 && !strings.Contains(body, apikey.ReasonExpired) {
			t.Errorf("+%v old key: %s", step.at, body)
		}
		if code, body := get(h, next.Reveal(), ""); code != step.new {
			t.Errorf("+%v new key: %d %s", step.at, code, body)
		}
	}
	if _, _, err := apikey.Rotate(context.Background(), f.store, old.LookupID(), rotatedAt, time.Time{}, rotatedAt); !errors.Is(err, store.ErrRotated) {
		t.Errorf("second rotation of one key: %v", err)
	}
}

// A key revoked by another process (the CLI, a second Store on the same
// file) is refused on the next request: nothing is cached.
func TestRevokedRefusedOnNextRequest(t *testing.T) {
	f := newFixture(t)
	h := inGateway(f.env, newPolicy(t, apikey.Config{}).Wrap(upstream))
	k := f.issue(t, "billing", 0)
	if code, body := get(h, k.Reveal(), ""); code != 200 {
		t.Fatalf("before: %d %s", code, body)
	}
	cli := openStore(t, f.path)
	if err := cli.RevokeKey(context.Background(), k.LookupID(), time.Now()); err != nil {
		t.Fatal(err)
	}
	code, body := get(h, k.Reveal(), "")
	if code != 401 || !strings.Contains(body, apikey.ReasonRevoked) {
		t.Fatalf("after: %d %s", code, body)
	}
	e := lastEvent(t, f)
	if e.Severity != audit.Critical || e.Fields["lookup_id"] != k.LookupID() || e.Fields["key_consumer"] != "billing" {
		t.Errorf("event %+v", e)
	}
}

func TestQueryString(t *testing.T) {
	f := newFixture(t)
	k := f.issue(t, "billing", 0)
	strict := inGateway(f.env, newPolicy(t, apikey.Config{}).Wrap(upstream))
	esc := strings.ReplaceAll(k.Reveal(), "_", "%5F")
	for _, q := range []string{"api_key=" + k.Reveal(), "x=1&token=" + esc, "key=" + k.Reveal() + "&y=2"} {
		// Refused even with a good header: the key has leaked into a URL.
		code, body := get(strict, k.Reveal(), q)
		if code != 401 || !strings.Contains(body, apikey.ReasonInQuery) {
			t.Errorf("?%s: %d %s", q, code, body)
		}
		if e := lastEvent(t, f); e.Fields["lookup_id"] != k.LookupID() || e.Fields["source"] != "query" {
			t.Errorf("event fields %v", e.Fields)
		}
	}
	// Not a key (no valid checksum): an ordinary query.
	if code, body := get(strict, k.Reveal(), "q=wdn_hello"); code != 200 {
		t.Errorf("non-key query: %d %s", code, body)
	}

	p := newPolicy(t, apikey.Config{InsecureQueryKey: "api_key"})
	if len(p.Warnings()) != 1 || !strings.Contains(p.Warnings()[0], "insecure_query_key") {
		t.Errorf("warnings %q", p.Warnings())
	}
	loose := inGateway(f.env, p.Wrap(upstream))
	code, body := get(loose, "", "a=1&api_key="+esc+"&b=%20x")
	if code != 200 {
		t.Fatalf("insecure_query_key: %d %s", code, body)
	}
	var s seen
	_ = json.Unmarshal([]byte(body), &s)
	if s.Query != "a=1&b=%20x" || s.URI != "/x?a=1&b=%20x" || s.Consumer != "billing" {
		t.Errorf("upstream saw %+v", s)
	}
	if code, body := get(loose, "", "api_key=1&api_key=2"); code != 401 || !strings.Contains(body, apikey.ReasonMalformed) {
		t.Errorf("two query keys: %d %s", code, body)
	}
	if code, body := get(loose, "", "b=2"); code != 401 || !strings.Contains(body, apikey.ReasonMissing) {
		t.Errorf("no key: %d %s", code, body)
	}
}

func TestHTTPRefusals(t *testing.T) {
	f := newFixture(t)
	k := f.issue(t, "billing", 0)
	if err := f.store.CreateConsumer(context.Background(), store.Consumer{Name: "search", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	other := f.issue(t, "search", 0)
	h := inGateway(f.env, newPolicy(t, apikey.Config{Consumers: []string{"billing"}}).Wrap(upstream))

	code, body := get(h, k.Reveal(), "")
	var s seen
	_ = json.Unmarshal([]byte(body), &s)
	if code != 200 || s.Consumer != "billing" || len(s.Methods) != 1 || s.Methods[0] != apikey.Method || s.Header != "" {
		t.Fatalf("good key: %d %+v (the upstream must not see the key)", code, s)
	}
	if code, body := get(h, "  "+k.Reveal()+" ", ""); code != 200 {
		t.Errorf("surrounding spaces: %d %s", code, body)
	}

	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest("GET", "/x", nil))
	var p problem
	if err := json.Unmarshal(rr.Body.Bytes(), &p); err != nil || rr.Code != 401 || p.Reason != apikey.ReasonMissing ||
		rr.Header().Get("Content-Type") != "application/problem+json" || p.Type != "urn:warden:problem:key_missing" {
		t.Errorf("missing: %d %s", rr.Code, rr.Body)
	}
	if code, body := get(h, other.Reveal(), ""); code != 403 || !strings.Contains(body, apikey.ReasonNotAuthorized) {
		t.Errorf("other consumer: %d %s", code, body)
	}
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Add("X-API-Key", k.Reveal())
	req.Header.Add("X-API-Key", k.Reveal())
	rr = httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	if rr.Code != 401 || !strings.Contains(rr.Body.String(), apikey.ReasonMalformed) {
		t.Errorf("two headers: %d %s", rr.Code, rr.Body)
	}

	// An earlier policy established another consumer.
	pre := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		policy.ExchangeOf(r).Identity.Consumer = "search"
		newPolicy(t, apikey.Config{}).Wrap(upstream).ServeHTTP(w, r)
	})
	if code, body := get(inGateway(f.env, pre), k.Reveal(), ""); code != 401 || !strings.Contains(body, apikey.ReasonConsumerMismatch) {
		t.Errorf("mismatch: %d %s", code, body)
	}

	// No store, or something else in Records: 503, fail closed.
	for _, records := range []any{nil, "not a store", (*store.Store)(nil)} {
		f.setRecords(t, records)
		if code, body := get(h, k.Reveal(), ""); code != 503 || !strings.Contains(body, apikey.ReasonStoreUnavailable) {
			t.Errorf("records %#v: %d %s", records, code, body)
		}
	}
	// Outside the gateway (no Exchange): no Env, so no store.
	rr = httptest.NewRecorder()
	req = httptest.NewRequest("GET", "/x", nil)
	req.Header.Set("X-API-Key", k.Reveal())
	newPolicy(t, apikey.Config{}).Wrap(upstream).ServeHTTP(rr, req)
	if rr.Code != 503 {
		t.Errorf("outside the gateway: %d", rr.Code)
	}
}

// The audit trail names the lookup id, never the secret.
func TestAuditNeverHoldsSecret(t *testing.T) {
	f := newFixture(t)
	h := inGateway(f.env, newPolicy(t, apikey.Config{}).Wrap(upstream))
	k := f.issue(t, "billing", time.Hour)
	wrong := apikey.KeyOf(k.LookupID(), strings.Repeat("Z", apikey.SecretLen))
	typo := k.Reveal()[:40] + "!" + k.Reveal()[41:]
	get(h, wrong.Reveal(), "")
	get(h, typo, "")
	get(h, "", "k="+k.Reveal())
	f.clock.Set(t0.Add(2 * time.Hour))
	get(h, k.Reveal(), "")
	events := f.sink.Events()
	if len(events) != 4 {
		t.Fatalf("%d events, want 4", len(events))
	}
	all, _ := json.Marshal(events)
	for _, secret := range []string{k.Reveal()[17:60], wrong.Reveal()[17:60]} {
		if bytes.Contains(all, []byte(secret)) {
			t.Fatalf("a secret is in the audit log: %s", all)
		}
	}
	want := []string{apikey.ReasonUnknown, apikey.ReasonMalformed, apikey.ReasonInQuery, apikey.ReasonExpired}
	for i, e := range events {
		if e.Type != apikey.EventRejected || e.Reason != want[i] {
			t.Errorf("event %d: %s %s, want %s", i, e.Type, e.Reason, want[i])
		}
	}
	if events[0].Fields["secret_mismatch"] != true || events[0].Fields["lookup_id"] != k.LookupID() {
		t.Errorf("wrong secret event: %v", events[0].Fields)
	}
	if _, ok := events[1].Fields["lookup_id"]; ok {
		t.Errorf("a malformed key has no trustworthy lookup id: %v", events[1].Fields)
	}
}

// The store never holds the key: not in the database, not in its WAL.
func TestStoreNeverHoldsKey(t *testing.T) {
	f := newFixture(t)
	var keys []apikey.Key
	for range 5 {
		keys = append(keys, f.issue(t, "billing", 0))
	}
	k, _, err := apikey.Rotate(context.Background(), f.store, keys[0].LookupID(), t0, time.Time{}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	keys = append(keys, k)
	files, _ := filepath.Glob(f.path + "*")
	if len(files) < 2 {
		t.Fatalf("want the database and its WAL, got %v", files)
	}
	var found int
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			secret := k.Reveal()[17:60]
			if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte(k.Reveal())) {
				t.Fatalf("%s holds a key", filepath.Base(name))
			}
			if bytes.Contains(b, []byte(k.LookupID())) {
				found++
			}
		}
	}
	if found == 0 {
		t.Fatal("the scan found no lookup id either: is it reading the right files?")
	}
}

func TestConfig(t *testing.T) {
	p := newPolicy(t, apikey.Config{})
	if p.Header() != "X-Api-Key" || p.Warnings() != nil {
		t.Errorf("defaults: %s %v", p.Header(), p.Warnings())
	}
	if p := newPolicy(t, apikey.Config{Header: "x-partner-key"}); p.Header() != "X-Partner-Key" {
		t.Errorf("header %s", p.Header())
	}
	for name, cfg := range map[string]apikey.Config{
		"authorization":   {Header: "Authorization"},
		"cookie":          {Header: "cookie"},
		"bad header":      {Header: "X Key"},
		"empty consumers": {Consumers: []string{}},
		"empty consumer":  {Consumers: []string{""}},
		"query name":      {InsecureQueryKey: "a&b"},
	} {
		if _, err := apikey.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	_, err := apikey.New(apikey.Config{Header: "Host", Consumers: []string{}})
	if err == nil || !strings.Contains(err.Error(), "header") || !strings.Contains(err.Error(), "consumers") {
		t.Errorf("want every error at once: %v", err)
	}

	// Registered, and decoded strictly from YAML.
	build := func(src string) (policy.Policy, error) {
		return policy.Build(apikey.Type, func(v any) error {
			dec := yaml.NewDecoder(strings.NewReader(src))
			dec.KnownFields(true)
			return dec.Decode(v)
		})
	}
	pol, err := build("header: X-Key\ninsecure_query_key: key\nconsumers: [billing]\n")
	if err != nil {
		t.Fatal(err)
	}
	if s := pol.(interface{ String() string }).String(); !strings.Contains(s, "X-Key") || !strings.Contains(s, "insecure_query_key key") {
		t.Errorf("built %s", s)
	}
	if _, err := build("query_key: key\n"); err == nil {
		t.Error("unknown key accepted")
	}
}

func get(h http.Handler, key, query string) (int, string) {
	target := "/x"
	if query != "" {
		target += "?" + query
	}
	req := httptest.NewRequest("GET", target, nil)
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	return rr.Code, rr.Body.String()
}

func lastEvent(t *testing.T, f *fixture) audit.Event {
	t.Helper()
	ev := f.sink.Events()
	if len(ev) == 0 {
		t.Fatal("no audit event")
	}
	return ev[len(ev)-1]
}
