package apikey_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/wardengw/warden/internal/auth/apikey"
)

func newKey(t testing.TB) apikey.Key {
	t.Helper()
	k, err := apikey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestGenerateAndParse(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		k := newKey(t)
		s := k.Reveal()
		if apikey.Len != 67 || len(s) != apikey.Len || !strings.HasPrefix(s, "wdn_") {
			t.Fatalf("bad shape: len %d", len(s))
		}
		if seen[k.LookupID()] {
			t.Fatal("lookup id repeated")
		}
		seen[k.LookupID()] = true
		p, err := apikey.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		if p.LookupID() != k.LookupID() || p.Reveal() != s || !bytes.Equal(p.Hash(), k.Hash()) || len(k.Hash()) != 32 {
			t.Fatal("parse does not round-trip")
		}
	}
}

// Bytes from 248 up are skipped, so every digit is uniform over base62.
func TestGenerateRejectionSampling(t *testing.T) {
	src := bytes.Repeat([]byte{255, 248, 0, 61, 62, 247}, 100)
	k, err := apikey.GenerateFrom(bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	// 0→'0', 61→'z', 62→'0', 247→247%62=61→'z'
	if want := "0z0z0z0z0z0z"; k.LookupID() != want {
		t.Fatalf("lookup id %q, want %q", k.LookupID(), want)
	}
	if _, err := apikey.GenerateFrom(bytes.NewReader(src[:10])); err == nil {
		t.Fatal("a short random source must fail")
	}
}

func TestParseRefuses(t *testing.T) {
	good := newKey(t).Reveal()
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	for name, s := range map[string]string{
		"empty":           "",
		"truncated":       good[:len(good)-1],
		"extended":        good + "0",
		"prefix":          "WDN_" + good[4:],
		"other prefix":    "ghp_" + good[4:],
		"separator":       good[:16] + "-" + good[17:],
		"non-base62":      good[:20] + "+" + good[21:],
		"non-ascii":       good[:20] + "\xc3" + good[21:],
		"secret typo":     flip(good, 30),
		"lookup id typo":  flip(good, 6),
		"checksum typo":   flip(good, apikey.Len-1),
		"space":           " " + good[1:],
		"swapped halves":  good[:4] + good[17:29] + good[16:17] + good[4:16] + good[29:],
		"whitespace tail": good[:apikey.Len-1] + "\n",
	} {
		if _, err := apikey.Parse(s); !errors.Is(err, apikey.ErrMalformed) {
			t.Errorf("%s: want ErrMalformed, got %v", name, err)
		} else if s != "" && strings.Contains(err.Error(), s[17:60]) {
			t.Errorf("%s: the error quotes the key", name)
		}
	}
}

// CRC-32 catches every single-character substitution and every adjacent
// transposition: a typo never reaches the store.
func TestChecksumCatchesTypos(t *testing.T) {
	good := newKey(t).Reveal()
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	for i := 4; i < len(good); i++ {
		if good[i] == '_' {
			continue
		}
		for j := range len(alphabet) {
			if alphabet[j] == good[i] {
				continue
			}
			typo := good[:i] + string(alphabet[j]) + good[i+1:]
			if _, err := apikey.Parse(typo); err == nil {
				t.Fatalf("substitution at %d accepted", i)
			}
		}
		if i+1 < len(good) && good[i] != good[i+1] && good[i+1] != '_' {
			swapped := good[:i] + good[i+1:i+2] + good[i:i+1] + good[i+2:]
			if _, err := apikey.Parse(swapped); err == nil {
				t.Fatalf("transposition at %d accepted", i)
			}
		}
	}
}

// A Key never prints its secret, whatever prints it.
func TestKeyRedacted(t *testing.T) {
	k := newKey(t)
	secret := k.Reveal()[17:60]
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("x", "key", k)
	js, _ := json.Marshal(struct{ K apikey.Key }{k})
	outs := []string{
		fmt.Sprint(k), fmt.Sprintf("%s %v %+v %#v %q %x %d", k, k, k, k, k, k, k),
		fmt.Sprintf("%+v", struct{ K apikey.Key }{k}), fmt.Sprintf("%#v", struct{ K apikey.Key }{k}),
		k.String(), k.GoString(), logBuf.String(), string(js),
	}
	for _, out := range outs {
		if strings.Contains(out, secret) {
			t.Fatalf("secret printed: %s", out)
		}
	}
	if !strings.Contains(fmt.Sprint(k), k.LookupID()) {
		t.Error("the redacted form should still name the lookup id")
	}
	var zero apikey.Key
	if !zero.IsZero() || zero.Reveal() != "" {
		t.Error("zero key")
	}
}
