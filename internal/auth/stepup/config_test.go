package stepup_test

import (
	"strings"
	"testing"

	"github.com/wardengw/warden/internal/auth/stepup"
	"github.com/wardengw/warden/internal/policy"
)

func TestConfigErrors(t *testing.T) {
	no := false
	for _, tc := range []struct {
		cfg  stepup.Config
		want []string
	}{
		{stepup.Config{Methods: []string{}}, []string{"methods: an empty list"}},
		{stepup.Config{Methods: []string{"PO ST", ""}}, []string{"methods[0]", "methods[1]"}},
		{stepup.Config{TOTP: &no}, []string{"no request could ever pass"}},
		{stepup.Config{HeaderOTP: "Authorization", HeaderApproval: "bad header"}, []string{"header_otp", "header_approval"}},
		{stepup.Config{HeaderOTP: "X-A", HeaderApproval: "x-a"}, []string{"both are X-A"}},
		{stepup.Config{Approval: &stepup.ApprovalConfig{}}, []string{"approval.webhook: required"}},
		{stepup.Config{Approval: &stepup.ApprovalConfig{Webhook: "http://hooks.example/x"}}, []string{"only allowed to a loopback"}},
		{stepup.Config{Approval: &stepup.ApprovalConfig{Webhook: "https://u:p@hooks.example/x"}}, []string{"without credentials"}},
		{stepup.Config{Approval: &stepup.ApprovalConfig{Webhook: "ftp://hooks.example/x"}}, []string{"want an https URL"}},
		{stepup.Config{Approval: &stepup.ApprovalConfig{Webhook: "https://h.example", Timeout: 48 * 3600e9,
			MaxBodyBytes: 1 << 30, MaxPending: -1, RetryAfter: 1}}, []string{"approval.timeout", "approval.max_body_bytes", "approval.max_pending", "approval.retry_after"}},
	} {
		_, err := stepup.New(tc.cfg)
		if err == nil {
			t.Errorf("%+v: accepted", tc.cfg)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %v lacks %q", tc.cfg, err, w)
			}
		}
	}
	// Loopback http, defaults, and the registry.
	p, err := stepup.New(stepup.Config{Approval: &stepup.ApprovalConfig{Webhook: "http://127.0.0.1:9/hook/SECRET"}})
	if err != nil {
		t.Fatal(err)
	}
	if s := p.String(); strings.Contains(s, "SECRET") || !strings.Contains(s, "5m0s") {
		t.Errorf("String: %s", s)
	}
	if o, a := p.Headers(); o != "Warden-Otp" || a != "Warden-Approval" {
		t.Errorf("headers %s %s", o, a)
	}
	if _, err := policy.Build(stepup.Type, func(v any) error { v.(*stepup.Config).Methods = []string{"POST"}; return nil }); err != nil {
		t.Fatal(err)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]stepup.ByteSize{"1048576": 1 << 20, "64KiB": 64 << 10, "1MiB": 1 << 20, "2 GiB": 2 << 30, "10B": 10} {
		var b stepup.ByteSize
		if err := b.UnmarshalText([]byte(in)); err != nil || b != want {
			t.Errorf("%q: %d %v", in, b, err)
		}
	}
	for _, in := range []string{"", "-1", "1TB", "MiB", "99999999999GiB"} {
		var b stepup.ByteSize
		if err := b.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}
