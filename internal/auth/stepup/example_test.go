package stepup_test

import (
	"fmt"
	"time"

	"github.com/wardengw/warden/internal/auth/stepup"
)

// A TOTP code for a time, and its verification with one step of skew.
func ExampleMatch() {
	secret := []byte("12345678901234567890") // RFC 6238's test secret
	at := time.Unix(1111111109, 0)
	code := stepup.Code(secret, stepup.Step(at))
	_, ok := stepup.Match(secret, code, at.Add(30*time.Second)) // one step later: still accepted
	_, late := stepup.Match(secret, code, at.Add(90*time.Second))
	fmt.Println(code, ok, late)
	// Output: 081804 true false
}
