package gateway

import (
	"net/http/httptest"
	"os"
	"slices"
	"testing"
)

func readFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}

// TestStripIdentityConnection: identity names listed in Connection are
// dropped from it (a client cannot make the proxy remove the gateway's
// own fields, whatever the spelling); a Connection field listing none is
// left as it is, not rebuilt.
func TestStripIdentityConnection(t *testing.T) {
	names := map[string]bool{"client-cert": true}
	for _, tt := range []struct {
		in   []string
		want []string // nil: no Connection field left
	}{
		{[]string{"keep-alive"}, []string{"keep-alive"}},
		{[]string{"keep-alive, Client-Cert"}, []string{"keep-alive"}},
		{[]string{"CLIENT_CERT", "close"}, []string{"close"}},
		{[]string{" client-cert ,"}, nil},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Connection"] = tt.in
		orig := &tt.in[0]
		stripIdentity(r, names)
		got := r.Header["Connection"]
		if !slices.Equal(got, tt.want) {
			t.Errorf("Connection %q: got %q, want %q", tt.in, got, tt.want)
		}
		if tt.want != nil && slices.Equal(tt.in, tt.want) && &got[0] != orig {
			t.Errorf("Connection %q listing no identity header was rebuilt", tt.in)
		}
	}
}
