package policy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/telemetry"
)

func TestHeadersValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  HeadersConfig
		want string
	}{
		{"empty", HeadersConfig{}, "changes nothing"},
		{"bad name", HeadersConfig{Request: HeaderOps{Set: map[string]string{"X Bad": "v"}}}, "not a valid header name"},
		{"CRLF injection", HeadersConfig{Response: HeaderOps{Set: map[string]string{"X-A": "v\r\nSet-Cookie: x=1"}}}, "control characters"},
		{"gateway header", HeadersConfig{Response: HeaderOps{Remove: []string{"strict-transport-security"}}}, "Strict-Transport-Security is managed by the gateway"},
		{"forwarding header", HeadersConfig{Request: HeaderOps{Set: map[string]string{"X-Forwarded-For": "1.2.3.4"}}}, "managed by the gateway"},
		{"framing header", HeadersConfig{Request: HeaderOps{Set: map[string]string{"Transfer-Encoding": "chunked"}}}, "managed by the gateway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewHeaders(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestHeadersApply(t *testing.T) {
	p, err := NewHeaders(HeadersConfig{
		Request:  HeaderOps{Set: map[string]string{"x-env": "prod"}, Remove: []string{"X-Debug"}},
		Response: HeaderOps{Set: map[string]string{"X-Frame-Options": "DENY"}, Remove: []string{"Server"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var seen http.Header
	h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		w.Header().Set("Server", "upstream/1.0")
		w.Header().Set("X-Frame-Options", "SAMEORIGIN")
		w.WriteHeader(201)
	}))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("X-Debug", "1")
	req.Header.Set("X-Env", "dev")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if seen.Get("X-Debug") != "" || seen.Get("X-Env") != "prod" || len(seen.Values("X-Env")) != 1 {
		t.Errorf("request headers: %v", seen)
	}
	if rec.Code != 201 || rec.Header().Get("Server") != "" || rec.Header().Get("X-Frame-Options") != "DENY" {
		t.Errorf("response: %d %v", rec.Code, rec.Header())
	}
}

func newExchangeRequest(t *testing.T, sink *audit.MemorySink, m *telemetry.Metrics, now func() time.Time) *http.Request {
	t.Helper()
	req := httptest.NewRequest("GET", "/a", nil)
	x := &Exchange{ID: "req-1", Route: "r1", Remote: req.RemoteAddr, Env: &Env{Audit: audit.New(sink), Metrics: m, Now: now}}
	return req.WithContext(WithExchange(req.Context(), x))
}

func TestDeny(t *testing.T) {
	sink := audit.NewMemorySink()
	m := telemetry.New()
	req := newExchangeRequest(t, sink, m, nil)
	rec := httptest.NewRecorder()
	Deny(rec, req, Problem{Status: 403, Reason: "forbidden_thing", Detail: "no", Cause: context.Canceled,
		Header: http.Header{"Retry-After": {"3"}}, Close: true})
	if rec.Code != 403 || rec.Header().Get("Content-Type") != "application/problem+json" ||
		rec.Header().Get("Retry-After") != "3" || rec.Header().Get("Connection") != "close" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body["type"] != "urn:warden:problem:forbidden_thing" || body["reason"] != "forbidden_thing" ||
		body["request_id"] != "req-1" || body["status"] != 403.0 || body["title"] != "Forbidden" {
		t.Errorf("body %v", body)
	}
	if strings.Contains(rec.Body.String(), "canceled") {
		t.Error("the internal cause leaked to the client")
	}
	ev := sink.Events()
	if len(ev) != 1 || ev[0].Type != "request_denied" || ev[0].Reason != "forbidden_thing" || ev[0].Fields["cause"] != "context canceled" {
		t.Fatalf("events %+v", ev)
	}
}

func TestRateLimit(t *testing.T) {
	for _, bad := range []RateLimitConfig{{}, {RequestsPerSecond: -1}, {RequestsPerSecond: 1, Burst: -1}, {RequestsPerSecond: 1, Key: "header"}} {
		if _, err := NewRateLimit(bad); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
	p, err := NewRateLimit(RateLimitConfig{RequestsPerSecond: 2, Burst: 2})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	do := func(remote string) *httptest.ResponseRecorder {
		req := newExchangeRequest(t, audit.NewMemorySink(), nil, clock)
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for i, want := range []int{200, 200, 429} {
		if got := do("192.0.2.1:1000").Code; got != want {
			t.Fatalf("request %d: %d, want %d", i, got, want)
		}
	}
	if rec := do("192.0.2.1:1001"); rec.Header().Get("Retry-After") != "1" {
		t.Errorf("Retry-After = %q", rec.Header().Get("Retry-After"))
	}
	if got := do("192.0.2.2:1000").Code; got != 200 {
		t.Fatalf("another client was limited: %d", got)
	}
	now = now.Add(500 * time.Millisecond) // one token back at 2/s
	if got := do("192.0.2.1:1000").Code; got != 200 {
		t.Fatalf("after refill: %d", got)
	}
}

func TestChainOrder(t *testing.T) {
	var order []string
	mk := func(name string) Policy {
		return policyFunc(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				order = append(order, name)
				next.ServeHTTP(w, r)
			})
		})
	}
	Chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { order = append(order, "upstream") }), mk("a"), mk("b")).
		ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if strings.Join(order, ",") != "a,b,upstream" {
		t.Fatalf("order %v", order)
	}
	if _, err := Build("nope", nil); err == nil || !strings.Contains(err.Error(), "unknown policy type") {
		t.Fatal(err)
	}
}

type policyFunc func(http.Handler) http.Handler

func (f policyFunc) Wrap(next http.Handler) http.Handler { return f(next) }

func TestIdentityForward(t *testing.T) {
	if _, err := NewIdentity(IdentityConfig{Header: "Authorization"}); err == nil {
		t.Error("credential header accepted")
	}
	p, err := NewIdentity(IdentityConfig{Header: "x-warden-identity", Claims: []string{"tenant"}})
	if err != nil {
		t.Fatal(err)
	}
	var got string
	h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Get("X-Warden-Identity") }))
	req := newExchangeRequest(t, audit.NewMemorySink(), nil, nil)
	x := ExchangeOf(req)
	x.Identity = Identity{Consumer: "acme", Methods: []string{"mtls", "jwt"}, Claims: map[string]any{"tenant": "t1", "secret": "no", "n": "é"}}
	req.Header.Set("X-Warden-Identity", `{"consumer":"root"}`)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if got != `{"consumer":"acme","methods":["mtls","jwt"],"claims":{"tenant":"t1"}}` {
		t.Fatalf("identity header %q", got)
	}
}

func TestASCIIJSON(t *testing.T) {
	b, _ := json.Marshal(map[string]string{"a": "é😀\u007f"})
	got := ASCIIJSON(b)
	if got != `{"a":"\u00e9\ud83d\ude00\u007f"}` {
		t.Fatalf("got %s", got)
	}
	var back map[string]string
	if err := json.Unmarshal([]byte(got), &back); err != nil || back["a"] != "é😀\u007f" {
		t.Fatalf("round trip: %v %q", err, back["a"])
	}
}

// TestRateLimitIPv6Prefix: addresses of one /64 share a bucket, so a
// client cannot get a fresh one by changing its address.
func TestRateLimitIPv6Prefix(t *testing.T) {
	p, err := NewRateLimit(RateLimitConfig{RequestsPerSecond: 1, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	h := p.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	codes := []int{}
	for _, remote := range []string{"[2001:db8::1]:1000", "[2001:db8::2]:1000", "[2001:db8:0:1::1]:1000"} {
		req := newExchangeRequest(t, audit.NewMemorySink(), nil, func() time.Time { return time.Unix(0, 0) })
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		codes = append(codes, rec.Code)
	}
	if codes[0] != 200 || codes[1] != 429 || codes[2] != 200 {
		t.Fatalf("codes %v: same /64 must share a bucket, another /64 not", codes)
	}
}

func TestWriteJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteJSON(rec, http.StatusCreated, map[string]any{"id": "k1", "n": 2})
	want := "{\"id\":\"k1\",\"n\":2}\n"
	if rec.Code != http.StatusCreated || rec.Body.String() != want {
		t.Fatalf("%d %q", rec.Code, rec.Body.String())
	}
	for k, v := range map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store",
		"X-Content-Type-Options": "nosniff", "Content-Length": strconv.Itoa(len(want))} {
		if got := rec.Header().Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
}

// holderCtx is a request context that can hold one value, as
// internal/h1server's does.
type holderCtx struct {
	context.Context
	key, val any
}

func (c *holderCtx) HoldValue(key, val any) bool {
	if c.key != nil {
		return false
	}
	c.key, c.val = key, val
	return true
}

func (c *holderCtx) Value(key any) any {
	if key == c.key {
		return c.val
	}
	return c.Context.Value(key)
}

// TestAttachExchange: a context that can hold the Exchange keeps the same
// request; any other gets a copy with a derived context; either way
// ExchangeOf finds it, and a second Exchange never replaces the first
// in a holder (the copy path carries it instead).
func TestAttachExchange(t *testing.T) {
	x1, x2 := &Exchange{ID: "one"}, &Exchange{ID: "two"}
	plain := httptest.NewRequest("GET", "/", nil)
	if r := AttachExchange(plain, x1); r == plain || ExchangeOf(r) != x1 || ExchangeOf(plain) != nil {
		t.Fatal("plain context: want a copy carrying the Exchange, the original untouched")
	}
	held := plain.WithContext(&holderCtx{Context: context.Background()})
	r := AttachExchange(held, x1)
	if r != held || ExchangeOf(r) != x1 {
		t.Fatal("holder context: want the same request carrying the Exchange")
	}
	if r2 := AttachExchange(r, x2); r2 == r || ExchangeOf(r2) != x2 || ExchangeOf(r) != x1 {
		t.Fatal("second Exchange: want a derived copy, the holder's value unchanged")
	}
}
