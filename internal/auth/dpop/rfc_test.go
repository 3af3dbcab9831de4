package dpop_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/auth/dpop"
)

// RFC 9449's own example (§7.1, Figure 13: a protected resource request,
// with the access token of Figure 12, bound to the key of §6.1) verifies,
// and its thumbprint and ath are the RFC's.
func TestRFC9449Example(t *testing.T) {
	const (
		proof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6Ik" +
			"VDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCR" +
			"nMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JE" +
			"QSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIj" +
			"oiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0Z" +
			"WRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNF" +
			"c05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71E" +
			"OptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA"
		token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
		jkt   = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	)
	if got := dpop.AccessTokenHash(token); got != "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo" {
		t.Fatalf("ath %s", got)
	}
	if got, err := dpop.ThumbprintJWK([]byte(`{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",` +
		`"y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}`)); err != nil || got != jkt {
		t.Fatalf("jkt %s %v", got, err)
	}
	e := newEnv(t, dpop.Config{Algorithms: []string{"ES256"}})
	e.clock.Set(time.Unix(1562262618+5, 0))
	send := func(target string) outcome {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		r.Header.Set("Authorization", "DPoP "+token)
		r.Header.Set("DPoP", proof)
		return e.serve(t, r, map[string]any{"cnf": map[string]any{"jkt": jkt}})
	}
	if o := send("https://resource.example.org/protectedresource"); o.status != http.StatusOK {
		t.Fatalf("RFC example refused: %s", o.body)
	}
	if o := send("https://resource.example.org/protectedresource"); o.reason != dpop.ReasonReplay {
		t.Fatalf("RFC example replayed: %d %q", o.status, o.reason)
	}
	// One bit of the signature flipped.
	bad := []byte(proof)
	bad[len(bad)-3] ^= 'A' ^ 'B'
	if _, err := dpop.ParseProof(e.pol, string(bad)); err == nil || !strings.Contains(err.Error(), dpop.ReasonBadSignature) {
		t.Fatalf("flipped signature: %v", err)
	}
}
