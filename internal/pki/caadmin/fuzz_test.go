package caadmin

import (
	"net/url"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/pki/ca"
)

// FuzzParseRevokeRequest: any body either parses to a positive serial of
// at most 20 bytes and a known reason, or is refused; never a panic.
func FuzzParseRevokeRequest(f *testing.F) {
	for _, s := range []string{`{"serial": "7e57", "reason": "keyCompromise"}`, `{"serial": "0x01:02", "reason": "superseded"}`,
		`{"serial": "-1", "reason": "keyCompromise"}`, `{"serial": 1}`, `{}`, `[]`, `{"serial": "ff", "reason": "x"} 1`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseRevokeRequest(body)
		if err != nil {
			return
		}
		if r.Serial == nil || r.Serial.Sign() <= 0 || r.Serial.BitLen() > 160 {
			t.Fatalf("serial %v accepted", r.Serial)
		}
		if _, err := ca.ParseReason(r.Reason); err != nil {
			t.Fatalf("reason %q accepted", r.Reason)
		}
	})
}

// FuzzParseTokenRequest: an accepted body names a consumer, some name and
// a TTL within bounds.
func FuzzParseTokenRequest(f *testing.F) {
	for _, s := range []string{`{"consumer": "a", "cn": "a", "ttl": "10m"}`, `{"consumer": "a", "dns": ["a.example"]}`,
		`{"consumer": "a", "uris": ["spiffe://x/y"], "ttl": "-1h"}`, `{"consumer": ""}`, `{"consumer": "a", "cn": "a", "x": 1}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseTokenRequest(body)
		if err != nil {
			return
		}
		c := r.Constraints
		if c.Consumer == "" || c.CommonName == "" && len(c.DNSNames) == 0 && len(c.URIs) == 0 || r.TTL <= 0 || r.TTL > 30*24*time.Hour {
			t.Fatalf("accepted %+v", r)
		}
	})
}

// FuzzParseIssueParams: an accepted query names a profile and a lifetime
// within the profile's.
func FuzzParseIssueParams(f *testing.F) {
	for _, s := range []string{"profile=client", "profile=server&lifetime=720h", "profile=client&lifetime=25h", "lifetime=1h", "profile=client&profile=client", "%zz"} {
		f.Add(s)
	}
	cfg := ca.Config{ClientLifetime: ca.DefaultClientLifetime, ServerLifetime: ca.DefaultServerLifetime}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		p, err := ParseIssueParams(q, cfg)
		if err != nil {
			return
		}
		max := map[ca.Profile]time.Duration{ca.ProfileClient: cfg.ClientLifetime, ca.ProfileServer: cfg.ServerLifetime}[p.Profile]
		if max == 0 || p.Lifetime < 0 || p.Lifetime > max {
			t.Fatalf("accepted %+v", p)
		}
	})
}
