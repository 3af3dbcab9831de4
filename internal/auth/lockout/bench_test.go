package lockout_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wardengw/warden/internal/auth/lockout"
	"github.com/wardengw/warden/internal/policy"
)

// BenchmarkPass is the cost the policy adds to a request from a clean
// address: the check before the chain and the consumer check after it.
func BenchmarkPass(b *testing.B) {
	g, err := lockout.New(lockout.Config{})
	if err != nil {
		b.Fatal(err)
	}
	env := &policy.Env{AuthFailures: g}
	p := lockout.NewPolicy(lockout.PolicyConfig{})
	h := policy.Chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), p,
		policyFunc(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				policy.ExchangeOf(r).Identity.Consumer = "alice"
				next.ServeHTTP(w, r)
			})
		}), p)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "192.0.2.1:4000"
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		x := &policy.Exchange{Env: env}
		h.ServeHTTP(w, req.WithContext(policy.WithExchange(req.Context(), x)))
	}
}

// BenchmarkFailed is the cost of counting one failure.
func BenchmarkFailed(b *testing.B) {
	g, err := lockout.New(lockout.Config{Threshold: lockout.MaxThreshold})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "192.0.2.1:4000"
	x := &policy.Exchange{Env: &policy.Env{}}
	x.Identity.Consumer = "alice"
	b.ReportAllocs()
	for b.Loop() {
		g.Failed(req, x, "bad_secret")
	}
}
