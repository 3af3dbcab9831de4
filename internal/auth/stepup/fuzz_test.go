package stepup_test

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/auth/stepup"
	"github.com/wardengw/warden/internal/policy"
)

// FuzzTOTPHeader: a Warden-OTP header value, whatever it is, never
// panics the parser or the policy; what ParseCode accepts is 6 ASCII
// digits; a code that matches no step is never accepted.
func FuzzTOTPHeader(f *testing.F) {
	for _, s := range []string{"123456", " 000000 ", "", "12345", "1234567", "12345a", "١٢٣٤٥٦", "\x00\x00\x00\x00\x00\x00",
		"999999\t", "-12345", "+123456", "1e5000", "123 456"} {
		f.Add(s)
	}
	secret := []byte("12345678901234567890")
	p, err := stepup.New(stepup.Config{})
	if err != nil {
		f.Fatal(err)
	}
	h := p.Wrap(upstream)
	f.Fuzz(func(t *testing.T, s string) {
		code, err := stepup.ParseCode(s)
		if err != nil {
			if !errors.Is(err, stepup.ErrCodeMalformed) {
				t.Fatalf("%q: %v", s, err)
			}
		} else {
			if len(code) != 6 {
				t.Fatalf("%q parsed to %q", s, code)
			}
			for i := range 6 {
				if code[i] < '0' || code[i] > '9' {
					t.Fatalf("%q parsed to %q", s, code)
				}
			}
			step, ok := stepup.Match(secret, code, t0)
			if ok && stepup.Code(secret, step) != code {
				t.Fatalf("%q matched step %d", code, step)
			}
		}
		// The policy, without a store: never a panic, never a pass.
		req := httptest.NewRequest("POST", "/", nil)
		req.Header["Warden-Otp"] = []string{s}
		x := &policy.Exchange{Env: &policy.Env{Now: func() time.Time { return t0 }}}
		x.Identity.Consumer = "c"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req.WithContext(policy.WithExchange(req.Context(), x)))
		if w.Code == 200 {
			t.Fatalf("%q passed", s)
		}
	})
}
