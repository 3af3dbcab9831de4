package main

import (
	"crypto/tls"
	"strings"
	"testing"
)

// TestParseInterleave: the -interleave spec's targets, and a clear error
// for each malformed one.
func TestParseInterleave(t *testing.T) {
	ts, err := parseInterleave("a=https://127.0.0.1:1/@12, b=https://127.0.0.1:2/x", &options{tlsConf: &tls.Config{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0].o.name != "a" || ts[0].pid != 12 || ts[1].o.name != "b" || ts[1].pid != 0 {
		t.Fatalf("targets %+v %+v", ts[0], ts[1])
	}
	for _, tt := range []struct{ spec, want string }{
		{"https://127.0.0.1:1/,b=https://127.0.0.1:2/", "is not name=url[@pid]"},
		{"a=https://127.0.0.1:1/,a=https://127.0.0.1:2/", `target "a" twice`},
		{"a=https://127.0.0.1:1/@x,b=https://127.0.0.1:2/", "bad pid"},
		{"a=https://127.0.0.1:1/@-3,b=https://127.0.0.1:2/", "bad pid"},
		{"a=http://127.0.0.1:1/,b=https://127.0.0.1:2/", "not an https:// URL"},
		{"a=https://127.0.0.1:1/", "at least two targets"},
	} {
		if _, err := parseInterleave(tt.spec, &options{tlsConf: &tls.Config{}}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.spec, err, tt.want)
		}
	}
}
