package apikey_test

import (
	"fmt"
	"strings"

	"github.com/wardengw/warden/internal/auth/apikey"
)

// A key prints redacted; Reveal gives the text to show its owner once.
func ExampleGenerate() {
	k, err := apikey.Generate()
	if err != nil {
		panic(err)
	}
	text := k.Reveal()
	fmt.Println(len(text), strings.HasPrefix(text, "wdn_"))
	fmt.Println(fmt.Sprint(k) == "wdn_"+k.LookupID()+"_…")
	p, err := apikey.Parse(text)
	fmt.Println(p.LookupID() == k.LookupID(), err)
	// Output:
	// 67 true
	// true
	// true <nil>
}

// A typo is caught by the checksum, without asking the store.
func ExampleParse() {
	_, err := apikey.Parse("wdn_0123456789ab_0000000000000000000000000000000000000000000_000000")
	fmt.Println(err)
	// Output:
	// malformed API key: checksum mismatch
}
