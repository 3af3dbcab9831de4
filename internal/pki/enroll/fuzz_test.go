package enroll

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/testkit"
)

// FuzzEnrollBody posts arbitrary bodies with a fresh token: the handler
// never panics, answers 200 or a problem, and a certificate it returns
// names nothing outside the token's constraints.
func FuzzEnrollBody(f *testing.F) {
	clk := testkit.NewClock(time.Now())
	st := openStore(f)
	c := newCA(f, st, clk)
	h, err := New(Config{CA: c, Store: st, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	good, _ := makeCSR(f, csrA, nil)
	bad, _ := makeCSR(f, csrSpec{cn: "svc-a", dns: []string{"evil.example.net"}}, nil)
	blk, _ := pem.Decode(good)
	f.Add(good)
	f.Add(bad)
	f.Add(blk.Bytes) // DER
	f.Add([]byte{})
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"))
	f.Add(append(good[:len(good)/2:len(good)/2], good[len(good)/2+3:]...))
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, err := CreateToken(context.Background(), st, svcA, time.Hour, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/enroll", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			blk, _ := pem.Decode(rec.Body.Bytes())
			if blk == nil {
				t.Fatal("200 without a certificate")
			}
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range certNames(cert) {
				if !slices.Contains([]string{"cn:svc-a", "dns:a.example.com", "uri:spiffe://example.com/svc/a"}, n) {
					t.Fatalf("issued %s outside the token", n)
				}
			}
		case http.StatusBadRequest, http.StatusForbidden, http.StatusRequestEntityTooLarge:
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("%d with %q", rec.Code, ct)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}
