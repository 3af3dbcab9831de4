package lockout_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/wardengw/warden/internal/auth/lockout"
	"github.com/wardengw/warden/internal/policy"
)

// A gateway keeps one Guard, tells the deny path about it, and lets the
// brute_force policy (or Guard.Wrap) enforce it.
func Example() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	guard, err := lockout.New(lockout.Config{Threshold: 3, DelayAfter: 3, Now: func() time.Time { return now }})
	if err != nil {
		panic(err)
	}
	env := &policy.Env{AuthFailures: guard, Now: func() time.Time { return now }}

	auth := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer right" {
			policy.Deny(w, r, policy.Problem{Status: http.StatusUnauthorized, Reason: "bad_token"})
			return
		}
		fmt.Fprintln(w, "welcome")
	})
	h := guard.Wrap(auth)
	try := func(token string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "192.0.2.1:5000"
		r.Header.Set("Authorization", "Bearer "+token)
		r = r.WithContext(policy.WithExchange(r.Context(), &policy.Exchange{Env: env}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if ra := w.Header().Get("Retry-After"); ra != "" {
			fmt.Println(w.Code, "Retry-After:", ra)
			return
		}
		fmt.Println(w.Code)
	}
	for range 3 {
		try("guess")
	}
	try("right")
	now = now.Add(time.Minute)
	try("right")
	// Output:
	// 401
	// 401
	// 401
	// 429 Retry-After: 60
	// 200
}
