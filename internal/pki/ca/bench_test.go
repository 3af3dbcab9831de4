package ca

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"golang.org/x/crypto/ocsp"
)

// BenchmarkIssue measures issuance (parse and check the CSR, sign,
// verify, record) in certificates per second, with in-memory records and
// with the embedded store (a durable write per certificate).
func BenchmarkIssue(b *testing.B) {
	dir := testInit(b, InitOptions{})
	csr, _ := makeCSR(b, csrSpec{cn: "a", dns: []string{"a.example.com"}, uris: []string{"spiffe://example.com/a"}})
	for _, bc := range []struct {
		name string
		recs Records
	}{{"memory", newMemRecords()}, {"store", openStore(b)}} {
		b.Run(bc.name, func(b *testing.B) {
			c := testLoad(b, dir, nil, Config{Records: bc.recs})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Issue(ctx, IssueRequest{CSR: csr, Profile: ProfileServer}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
		})
	}
}

// BenchmarkOCSPResponder measures the responder's throughput (POST through
// the http.Handler, parallel) with the signed-response cache and without
// (a record lookup and a signature per request), on the embedded store.
func BenchmarkOCSPResponder(b *testing.B) {
	dir := testInit(b, InitOptions{})
	c := testLoad(b, dir, nil, Config{Records: openStore(b)})
	var reqs [][]byte
	for range 64 {
		csr, _ := makeCSR(b, csrSpec{dns: []string{"a.example.com"}})
		cert, err := c.Issue(context.Background(), IssueRequest{CSR: csr, Profile: ProfileServer})
		if err != nil {
			b.Fatal(err)
		}
		r, _ := ocsp.CreateRequest(cert, c.Intermediate, nil)
		reqs = append(reqs, r)
	}
	for _, cached := range []bool{true, false} {
		name := "cached"
		if !cached {
			name = "uncached"
		}
		b.Run(name, func(b *testing.B) {
			p := NewPublisher(c, nil)
			p.noOCSPCache = !cached
			h := p.OCSPHandler()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					w := httptest.NewRecorder()
					h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(reqs[i%len(reqs)])))
					if w.Code != 200 {
						b.Fatal(w.Code)
					}
					_, _ = io.Copy(io.Discard, w.Body)
					i++
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "responses/s")
		})
	}
}
