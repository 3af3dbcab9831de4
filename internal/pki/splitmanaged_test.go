package pki

import (
	"encoding/pem"
	"strings"
	"testing"
)

func TestSplitManaged(t *testing.T) {
	block := func(typ string) string { return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: []byte(typ)})) }
	for _, tt := range []struct {
		name      string
		in        string
		key       bool
		chain     int
		errSubstr string
	}{
		{"key then chain", block("PRIVATE KEY") + block("CERTIFICATE") + block("CERTIFICATE"), true, 2, ""},
		{"chain only", block("CERTIFICATE"), false, 1, ""},
		{"empty", "", false, 0, ""},
		{"a foreign block", block("PRIVATE KEY") + block("RSA PRIVATE KEY") + block("CERTIFICATE"), false, 0, `unexpected PEM block "RSA PRIVATE KEY"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key, chain, err := SplitManaged([]byte(tt.in))
			if tt.errSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errSubstr) || key != nil || chain != nil {
					t.Fatalf("got %v, %d blocks, %v; want error %q and nothing", key, len(chain), err, tt.errSubstr)
				}
				return
			}
			if err != nil || (key != nil) != tt.key || len(chain) != tt.chain {
				t.Fatalf("got key %v, %d certificates, %v", key != nil, len(chain), err)
			}
		})
	}
}
