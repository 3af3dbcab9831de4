package stepup_test

import (
	"encoding/base32"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/auth/stepup"
	"github.com/wardengw/warden/internal/policy"
)

// RFC 6238 Appendix B, the SHA1 rows: 8 digits, secret "12345678901234567890".
func TestRFC6238Vectors(t *testing.T) {
	secret := []byte("12345678901234567890")
	for _, v := range []struct {
		unix int64
		code string
	}{
		{59, "94287082"}, {1111111109, "07081804"}, {1111111111, "14050471"},
		{1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000, "65353130"},
	} {
		step := stepup.Step(time.Unix(v.unix, 0))
		if got := stepup.HOTP(secret, uint64(step), 8); got != v.code {
			t.Errorf("T=%d: %s, want %s", v.unix, got, v.code)
		}
		// 6 digits are the same value modulo 10^6.
		if got := stepup.Code(secret, step); got != v.code[2:] {
			t.Errorf("T=%d: 6-digit %s, want %s", v.unix, got, v.code[2:])
		}
		if step2, ok := stepup.Match(secret, v.code[2:], time.Unix(v.unix, 0)); !ok || step2 != step {
			t.Errorf("T=%d: Match = %d %v", v.unix, step2, ok)
		}
	}
	// RFC 4226 Appendix D, counters 0 and 9.
	if stepup.HOTP(secret, 0, 6) != "755224" || stepup.HOTP(secret, 9, 6) != "520489" {
		t.Error("RFC 4226 vectors")
	}
}

func TestMatchSkew(t *testing.T) {
	secret, _ := stepup.NewSecret()
	now := t0
	cur := stepup.Step(now)
	for d := int64(-3); d <= 3; d++ {
		step, ok := stepup.Match(secret, stepup.Code(secret, cur+d), now)
		want := d >= -1 && d <= 1
		if ok != want || ok && step != cur+d {
			t.Errorf("skew %+d: step %d ok %v", d, step-cur, ok)
		}
	}
}

func TestParseCode(t *testing.T) {
	for in, want := range map[string]string{"123456": "123456", " 000000\t": "000000"} {
		if got, err := stepup.ParseCode(in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	for _, in := range []string{"", "12345", "1234567", "12345a", "١٢٣٤٥٦", "+12345", "12 456", "123456\n"} {
		if _, err := stepup.ParseCode(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestURI(t *testing.T) {
	secret := []byte("12345678901234567890")
	u, err := url.Parse(stepup.URI("Warden", "billing@example", secret))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/Warden:billing@example" ||
		q.Get("issuer") != "Warden" || q.Get("digits") != "6" || q.Get("period") != "30" || q.Get("algorithm") != "SHA1" {
		t.Fatalf("URI %s", u)
	}
	got, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(q.Get("secret"))
	if err != nil || string(got) != string(secret) || stepup.EncodeSecret(secret) != "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" {
		t.Fatalf("secret %q %v", got, err)
	}
}

// Through real HTTP on 127.0.0.1: accepted once; a replay refused, also
// through a second Store on the same file (another gateway, or after a
// restart); ±1 step accepted, ±2 refused.
func TestTOTPEndToEnd(t *testing.T) {
	f := newFixture(t)
	secret := f.enroll(t, "billing")
	p := newPolicy(t, stepup.Config{Methods: []string{"POST", "delete"}})
	srv := httptest.NewServer(inGateway(f.env, p.Wrap(upstream)))
	defer srv.Close()
	c := client{t, srv}
	otp := func(step int64) map[string]string {
		return map[string]string{"Warden-OTP": stepup.Code(secret, step)}
	}
	cur := stepup.Step(f.clock.Now())

	// Not critical: passes, headers stripped.
	if r := c.do("GET", "/x", "billing", "", map[string]string{"Warden-OTP": "1", "Warden-Approval": "x"}); r.status != 200 ||
		strings.Contains(r.raw, `"otp":"1"`) || strings.Contains(r.raw, `"approval":"x"`) {
		t.Fatalf("GET: %d %s", r.status, r.raw)
	}
	// Critical without a code.
	r := c.do("POST", "/pay", "billing", "", nil)
	if r.status != 401 || r.reason() != stepup.ReasonRequired || r.header.Get("WWW-Authenticate") != `Warden-StepUp methods="totp"` {
		t.Fatalf("no code: %d %v %s", r.status, r.header, r.raw)
	}
	// Method override toward a critical method is critical; so is a lower-case method.
	if r := c.do("PATCH", "/pay", "billing", "", map[string]string{"X-HTTP-Method-Override": "DELETE"}); r.reason() != stepup.ReasonRequired {
		t.Fatalf("override: %d %s", r.status, r.raw)
	}
	if r := c.do("delete", "/pay", "billing", "", nil); r.reason() != stepup.ReasonRequired {
		t.Fatalf("lower-case method: %d %s", r.status, r.raw)
	}
	if r := c.do("POST", "/pay", "", "", otp(cur)); r.status != 401 || r.reason() != stepup.ReasonNoConsumer {
		t.Fatalf("no consumer: %d %s", r.status, r.raw)
	}
	if r := c.do("POST", "/pay", "search", "", otp(cur)); r.reason() != stepup.ReasonOTPNotEnrolled {
		t.Fatalf("not enrolled: %s", r.raw)
	}
	if r := c.do("POST", "/pay", "billing", "", map[string]string{"Warden-OTP": "12345x"}); r.reason() != stepup.ReasonOTPInvalid {
		t.Fatalf("malformed: %s", r.raw)
	}

	// -1 step: accepted.
	r = c.do("POST", "/pay", "billing", "", otp(cur-1))
	if r.status != 200 || !strings.Contains(r.raw, `"methods":["api_key","totp"]`) || strings.Contains(r.raw, `"otp":"`+otp(cur - 1)["Warden-OTP"]) {
		t.Fatalf("step -1: %d %s", r.status, r.raw)
	}
	// The same code again: replayed.
	if r := c.do("POST", "/pay", "billing", "", otp(cur-1)); r.status != 401 || r.reason() != stepup.ReasonOTPReplayed {
		t.Fatalf("replay: %d %s", r.status, r.raw)
	}
	// Current step: accepted once.
	if r := c.do("POST", "/pay", "billing", "", otp(cur)); r.status != 200 {
		t.Fatalf("step 0: %d %s", r.status, r.raw)
	}
	// Through a second Store on the same file, as another node would.
	env2 := *f.env
	env2.Records = openStore(t, f.path)
	srv2 := httptest.NewServer(inGateway(&env2, newPolicy(t, stepup.Config{}).Wrap(upstream)))
	defer srv2.Close()
	c2 := client{t, srv2}
	if r := c2.do("POST", "/pay", "billing", "", otp(cur)); r.reason() != stepup.ReasonOTPReplayed {
		t.Fatalf("replay on another store: %d %s", r.status, r.raw)
	}
	// An older step is refused too, once a later one was used.
	if r := c2.do("POST", "/pay", "billing", "", otp(cur-1)); r.reason() != stepup.ReasonOTPReplayed {
		t.Fatalf("older step: %s", r.raw)
	}
	// ±2 steps: invalid.
	for _, d := range []int64{-2, 2} {
		if r := c.do("POST", "/pay", "billing", "", otp(cur+d)); r.reason() != stepup.ReasonOTPInvalid {
			t.Fatalf("step %+d: %s", d, r.raw)
		}
	}
	// +1 step: accepted, on the other node.
	if r := c2.do("POST", "/pay", "billing", "", otp(cur+1)); r.status != 200 {
		t.Fatalf("step +1: %d %s", r.status, r.raw)
	}
	// The clock moves on: the next step works.
	f.clock.Advance(2 * stepup.Period)
	if r := c.do("DELETE", "/pay", "billing", "", otp(cur+2)); r.status != 200 {
		t.Fatalf("next step: %d %s", r.status, r.raw)
	}

	// Audit: every decision, never the code or secret.
	if n := len(f.events(stepup.EventVerified)); n != 4 {
		t.Errorf("%d stepup_verified events, want 4", n)
	}
	if len(f.events(stepup.EventRejected)) == 0 {
		t.Error("no stepup_rejected events")
	}
	for _, e := range f.sink.Events() {
		s := fmt.Sprint(e)
		for step := cur - 3; step <= cur+3; step++ {
			if strings.Contains(s, stepup.Code(secret, step)) {
				t.Fatalf("event %s holds a code: %v", e.Type, e)
			}
		}
		if strings.Contains(s, stepup.EncodeSecret(secret)) || strings.Contains(s, fmt.Sprintf("%x", secret)) {
			t.Fatalf("event holds the secret")
		}
	}
}

// Concurrent requests with one code: exactly one passes.
func TestTOTPConcurrentReplay(t *testing.T) {
	f := newFixture(t)
	secret := f.enroll(t, "billing")
	other := openStore(t, f.path)
	h := newPolicy(t, stepup.Config{}).Wrap(upstream)
	code := stepup.Code(secret, stepup.Step(f.clock.Now()))
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			env := *f.env
			if i%2 == 1 {
				env.Records = other
			}
			req := httptest.NewRequest("POST", "/pay", nil)
			req.Header.Set("Warden-OTP", code)
			x := &policy.Exchange{Env: &env}
			x.Identity.Consumer = "billing"
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req.WithContext(policy.WithExchange(req.Context(), x)))
			if w.Code == http.StatusOK {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d requests passed with one code", ok.Load())
	}
}

// Without a store, the policy fails closed.
func TestNoStoreFailsClosed(t *testing.T) {
	f := newFixture(t)
	f.env.Records = nil
	srv := httptest.NewServer(inGateway(f.env, newPolicy(t, stepup.Config{}).Wrap(upstream)))
	defer srv.Close()
	if r := (client{t, srv}).do("POST", "/", "billing", "", map[string]string{"Warden-OTP": "123456"}); r.status != 503 || r.reason() != stepup.ReasonStoreUnavailable {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}
