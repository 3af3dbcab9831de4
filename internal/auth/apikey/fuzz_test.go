package apikey_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/wardengw/warden/internal/auth/apikey"
)

// FuzzParseKey: Parse never panics; what it accepts has the grammar's
// shape and re-formats to exactly the input; what it refuses wraps
// ErrMalformed.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{
		"wdn_0z0z0z0z0z0z_0000000000000000000000000000000000000000000_000000",
		"wdn_", "", "wdn__", strings.Repeat("_", apikey.Len), strings.Repeat("z", apikey.Len),
		"wdn_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB_CCCCCC",
	} {
		f.Add(s)
	}
	for range 4 {
		k, err := apikey.Generate()
		if err != nil {
			f.Fatal(err)
		}
		s := k.Reveal()
		f.Add(s)
		f.Add(s[:len(s)-1] + "0")
		f.Add(strings.ToUpper(s))
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := apikey.Parse(s)
		if err != nil {
			if !errors.Is(err, apikey.ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			if !k.IsZero() {
				t.Fatal("a refused key came with a value")
			}
			return
		}
		if got := k.Reveal(); got != s {
			t.Fatalf("re-format differs:\n in  %q\n out %q", s, got)
		}
		if len(k.LookupID()) != apikey.LookupIDLen || len(k.Hash()) != 32 || !strings.HasPrefix(s, apikey.Prefix) {
			t.Fatal("accepted key of the wrong shape")
		}
		if _, err := apikey.Parse(k.Reveal()); err != nil {
			t.Fatalf("re-parse: %v", err)
		}
	})
}
