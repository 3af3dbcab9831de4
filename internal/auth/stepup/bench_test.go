package stepup_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/auth/stepup"
	"github.com/wardengw/warden/internal/policy"
)

// BenchmarkMatch: verifying a code (three HMAC-SHA1, constant-time
// compares), no store.
func BenchmarkMatch(b *testing.B) {
	secret, _ := stepup.NewSecret()
	code := stepup.Code(secret, stepup.Step(t0))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := stepup.Match(secret, code, t0); !ok {
			b.Fatal("no match")
		}
	}
}

// BenchmarkTOTPRequest: the request path of a TOTP verification with the
// store on a temp file: one read, one conditional write (fsync'd: WAL,
// synchronous=FULL). Each iteration uses a fresh step, as it must.
func BenchmarkTOTPRequest(b *testing.B) {
	f := newFixture(b)
	secret := f.enroll(b, "billing")
	h := newPolicy(b, stepup.Config{}).Wrap(upstream)
	step := stepup.Step(t0)
	b.ReportAllocs()
	for b.Loop() {
		step++
		f.clock.Set(t0.Add(time.Duration(step-stepup.Step(t0)) * stepup.Period))
		req := httptest.NewRequest("POST", "/", nil)
		req.Header.Set("Warden-OTP", stepup.Code(secret, step))
		x := &policy.Exchange{Env: f.env}
		x.Identity.Consumer = "billing"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req.WithContext(policy.WithExchange(context.Background(), x)))
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}
