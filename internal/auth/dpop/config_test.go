package dpop_test

import (
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/auth/dpop"
	"github.com/wardengw/warden/internal/policy"
)

func TestConfigDefaults(t *testing.T) {
	p, err := dpop.New(dpop.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.Algorithms(), " "); got != "ES256 EdDSA RS256 PS256" {
		t.Fatalf("algorithms %q", got)
	}
	if s := p.String(); !strings.Contains(s, "required true") || !strings.Contains(s, "iat_window 1m0s") || !strings.Contains(s, "nonce false") {
		t.Fatalf("defaults: %s", s)
	}
}

// Every invalid setting is reported, all at once.
func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  dpop.Config
		want []string
	}{
		{"alg none", dpop.Config{Algorithms: []string{"none"}}, []string{`algorithms[0]: "none"`}},
		{"HMAC", dpop.Config{Algorithms: []string{"ES256", "HS256"}}, []string{`algorithms[1]: "HS256"`}},
		{"lower-case alg", dpop.Config{Algorithms: []string{"es256"}}, []string{`algorithms[0]: "es256"`}},
		{"empty list", dpop.Config{Algorithms: []string{}}, []string{"algorithms: an empty list"}},
		{"duplicate", dpop.Config{Algorithms: []string{"EdDSA", "EdDSA"}}, []string{"listed twice"}},
		{"window too wide", dpop.Config{IATWindow: 10 * time.Minute}, []string{"iat_window: 10m0s"}},
		{"window too narrow", dpop.Config{IATWindow: time.Millisecond}, []string{"iat_window: 1ms"}},
		{"negative window", dpop.Config{IATWindow: -time.Second}, []string{"iat_window: -1s"}},
		{"nonce lifetime", dpop.Config{Nonce: dpop.NonceConfig{Enabled: true, Lifetime: 2 * time.Hour}}, []string{"nonce.lifetime: 2h0m0s"}},
		{"replay cache", dpop.Config{ReplayCache: dpop.ReplayCacheConfig{MaxEntries: -1}}, []string{"replay_cache.max_entries: -1"}},
		{"proof size", dpop.Config{MaxProofBytes: 1 << 20}, []string{"max_proof_bytes: 1048576"}},
		{"all at once", dpop.Config{Algorithms: []string{"HS512"}, IATWindow: time.Hour, MaxProofBytes: 1},
			[]string{"algorithms[0]", "iat_window", "max_proof_bytes"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dpop.New(tc.cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// The type is registered, and its factory takes the decoded block.
func TestRegistered(t *testing.T) {
	p, err := policy.Build(dpop.Type, func(v any) error {
		c := v.(*dpop.Config)
		c.Algorithms, c.IATWindow = []string{"EdDSA"}, 30*time.Second
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.(*dpop.Policy).Algorithms(); len(got) != 1 || got[0] != "EdDSA" {
		t.Fatalf("algorithms %v", got)
	}
	if _, err := policy.Build(dpop.Type, func(v any) error { v.(*dpop.Config).Algorithms = []string{"none"}; return nil }); err == nil {
		t.Fatal("alg none built")
	}
}
