package apikey_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wardengw/warden/internal/auth/apikey"
)

// BenchmarkRequestPath: the per-request cost of an API key with a warm
// SQLite store (WAL, file on disk, page cache warm): Parse alone; parse +
// store lookup + constant-time compare; the whole policy in front of a
// handler; and a malformed key, refused without a lookup.
func BenchmarkRequestPath(b *testing.B) {
	f := newFixture(b)
	k := f.issue(b, "billing", 0)
	text := k.Reveal()
	ctx := context.Background()
	if _, err := apikey.Authenticate(ctx, f.store, text, t0); err != nil {
		b.Fatal(err)
	}
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := apikey.Parse(text); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("authenticate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := apikey.Authenticate(ctx, f.store, text, t0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("authenticate_parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := apikey.Authenticate(ctx, f.store, text, t0); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	h := inGateway(f.env, newPolicy(b, apikey.Config{}).Wrap(ok))
	b.Run("policy", func(b *testing.B) {
		b.ReportAllocs()
		req := httptest.NewRequest("GET", "/x", nil)
		for b.Loop() {
			req.Header.Set("X-API-Key", text)
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, req)
			if rr.Code != 200 {
				b.Fatal(rr.Code)
			}
		}
	})
	b.Run("malformed_no_lookup", func(b *testing.B) {
		b.ReportAllocs()
		bad := text[:30] + "!" + text[31:]
		for b.Loop() {
			if _, err := apikey.Authenticate(ctx, f.store, bad, t0); err == nil {
				b.Fatal("accepted")
			}
		}
	})
}
