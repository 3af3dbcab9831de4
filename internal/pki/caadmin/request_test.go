package caadmin

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/pki/ca"
)

func TestParseIssueParams(t *testing.T) {
	cfg := ca.Config{ClientLifetime: 24 * time.Hour, ServerLifetime: 90 * 24 * time.Hour}
	for _, c := range []struct {
		query   string
		want    IssueParams
		wantErr string
	}{
		{"profile=client", IssueParams{Profile: ca.ProfileClient}, ""},
		{"profile=server&lifetime=720h", IssueParams{Profile: ca.ProfileServer, Lifetime: 720 * time.Hour}, ""},
		{"profile=client&lifetime=24h", IssueParams{Profile: ca.ProfileClient, Lifetime: 24 * time.Hour}, ""},
		{"profile=client&lifetime=24h1s", IssueParams{}, "at most 24h0m0s"},
		{"profile=client&lifetime=0s", IssueParams{}, "positive"},
		{"profile=Client", IssueParams{}, `profile "Client"`},
		{"", IssueParams{}, `profile ""`},
		{"profile=client&x=1", IssueParams{}, `unknown parameter "x"`},
		{"profile=client&lifetime=1h&lifetime=2h", IssueParams{}, "given 2 times"},
	} {
		q, _ := url.ParseQuery(c.query)
		got, err := ParseIssueParams(q, cfg)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q: %v, want error with %q", c.query, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %+v %v, want %+v", c.query, got, err, c.want)
		}
	}
}

func TestParseRevokeRequest(t *testing.T) {
	for _, c := range []struct {
		body, wantSerial, wantErr string
	}{
		{`{"serial": "7E:57", "reason": "keyCompromise"}`, "7e57", ""},
		{`{"serial": "0x7e57", "reason": "KEYCOMPROMISE"}`, "7e57", ""},
		{`{"serial": "7e57", "reason": "certificateHold"}`, "", "revocation reason"},
		{`{"serial": "0", "reason": "keyCompromise"}`, "", "positive hex"},
		{`{"serial": "7e57"}`, "", "required"},
		{`{"serial": "7e57", "reason": "keyCompromise", "why": "x"}`, "", "unknown field"},
		{`{"serial": "7e57", "reason": "keyCompromise"}{}`, "", "trailing data"},
		{`{"serial": 32343, "reason": "keyCompromise"}`, "", "want a JSON object"},
		{strings.Repeat(" ", maxJSONBytes+1), "", "larger than"},
	} {
		r, err := ParseRevokeRequest([]byte(c.body))
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%.40q: %v, want error with %q", c.body, err, c.wantErr)
			}
			continue
		}
		if err != nil || ca.SerialString(r.Serial) != c.wantSerial {
			t.Errorf("%q: %+v %v", c.body, r, err)
		}
	}
}

func TestParseTokenRequest(t *testing.T) {
	r, err := ParseTokenRequest([]byte(`{"consumer": "svc", "cn": "svc", "dns": ["a.example"], "uris": ["spiffe://x/svc"], "ttl": "15m"}`))
	if err != nil || r.Constraints.Consumer != "svc" || r.Constraints.CommonName != "svc" || r.Constraints.DNSNames[0] != "a.example" ||
		r.Constraints.URIs[0] != "spiffe://x/svc" || r.TTL != 15*time.Minute {
		t.Fatalf("%+v %v", r, err)
	}
	if r, err := ParseTokenRequest([]byte(`{"consumer": "svc", "cn": "svc"}`)); err != nil || r.TTL != DefaultTokenTTL {
		t.Fatalf("default ttl: %+v %v", r, err)
	}
	for body, want := range map[string]string{
		`{"cn": "svc"}`:       `"consumer" is required`,
		`{"consumer": "svc"}`: "must allow a name",
		`{"consumer": "svc", "cn": "svc", "ttl": "1y"}`:     "ttl",
		`{"consumer": "svc", "cn": "svc", "ttl": "721h"}`:   "at most",
		`{"consumer": "svc", "cn": "svc", "ip": "1.2.3.4"}`: "unknown field",
	} {
		if _, err := ParseTokenRequest([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}
