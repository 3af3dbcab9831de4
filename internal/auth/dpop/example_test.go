package dpop_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"

	"github.com/wardengw/warden/internal/auth/dpop"
)

// An access-token policy reads the token the same way for both schemes;
// a DPoP-bound token must come with the DPoP scheme.
func ExampleAccessToken() {
	r, _ := http.NewRequest(http.MethodGet, "https://gw.example/api", nil)
	r.Header.Set("Authorization", "DPoP eyJhbGciOiJFUzI1NiJ9.e30.sig")
	token, scheme, err := dpop.AccessToken(r)
	fmt.Println(token, scheme, err)
	// Output: eyJhbGciOiJFUzI1NiJ9.e30.sig DPoP <nil>
}

// An authorization server (or a test) binds a token to a client's key by
// putting the key's thumbprint in cnf.jkt.
func ExampleThumbprint() {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jkt, err := dpop.Thumbprint(key.Public())
	fmt.Println(len(jkt), err)
	// Output: 43 <nil>
}

// RFC 7638 §3.1's example key.
func ExampleThumbprintJWK() {
	jkt, err := dpop.ThumbprintJWK([]byte(`{"kty":"RSA","e":"AQAB","alg":"RS256","kid":"2011-04-29",` +
		`"n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}`))
	fmt.Println(jkt, err)
	// Output: NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs <nil>
}
