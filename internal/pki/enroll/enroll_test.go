package enroll

import (
	"context"
	"crypto/x509"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/pki/ca"
)

var svcA = Constraints{Consumer: "svc-a", CommonName: "svc-a",
	DNSNames: []string{"a.example.com"}, URIs: []string{"spiffe://example.com/svc/a"}}

var csrA = csrSpec{cn: "svc-a", dns: []string{"a.example.com"}, uris: []string{"spiffe://example.com/svc/a"}}

func TestEnrollOnceOnly(t *testing.T) {
	f := newFixture(t)
	tok := f.token(svcA, time.Hour)
	csr, _ := makeCSR(t, csrA, nil)
	res := f.post("/enroll", tok, csr, nil)
	f.want(res, 200, "")
	leaf := res.chain[0]
	if got := certNames(leaf); !slices.Equal(got, []string{"cn:svc-a", "dns:a.example.com", "uri:spiffe://example.com/svc/a"}) {
		t.Fatalf("names %v", got)
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Fatalf("EKU %v", leaf.ExtKeyUsage)
	}
	rec, err := f.st.IssuedCert(context.Background(), ca.SerialString(leaf.SerialNumber))
	if err != nil || rec.Profile != "client" {
		t.Fatalf("record %+v %v", rec, err)
	}
	f.want(f.post("/enroll", tok, csr, nil), 401, ReasonTokenUsed)
}

func TestEnrollConcurrentUsesIssueOne(t *testing.T) {
	f := newFixture(t)
	tok := f.token(svcA, time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 6 {
		wg.Go(func() {
			csr, _ := makeCSR(t, csrA, nil)
			res := f.post("/enroll", tok, csr, nil)
			mu.Lock()
			defer mu.Unlock()
			if res.status == 200 {
				ok++
			} else if res.reason != ReasonTokenUsed {
				t.Errorf("%d %s", res.status, res.reason)
			}
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d certificates issued with one token", ok)
	}
}

func TestEnrollExpiredToken(t *testing.T) {
	f := newFixture(t)
	tok := f.token(svcA, time.Hour)
	f.clk.Advance(time.Hour + time.Second)
	csr, _ := makeCSR(t, csrA, nil)
	f.want(f.post("/enroll", tok, csr, nil), 401, ReasonTokenExpired)
}

func TestEnrollRefusals(t *testing.T) {
	f := newFixture(t)
	csr, _ := makeCSR(t, csrA, nil)
	f.want(f.post("/enroll", "", csr, nil), 401, ReasonTokenInvalid)
	f.want(f.post("/enroll", "wenr_short", csr, nil), 401, ReasonTokenInvalid)
	// Well formed but never issued.
	f.want(f.post("/enroll", TokenPrefix+strings.Repeat("A", 43), csr, nil), 401, ReasonTokenInvalid)

	// A body too large is refused before the token is looked at.
	tok := f.token(svcA, time.Hour)
	f.want(f.post("/enroll", tok, make([]byte, ca.MaxCSRBytes+1), nil), 413, ReasonCSRInvalid)
	f.want(f.post("/enroll", tok, csr, nil), 200, "")

	// Consume-then-check: a malformed CSR burns the token.
	tok = f.token(svcA, time.Hour)
	f.want(f.post("/enroll", tok, []byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"), nil), 400, ReasonCSRInvalid)
	f.want(f.post("/enroll", tok, csr, nil), 401, ReasonTokenUsed)

	// Names outside the token's: refused, nothing issued, token burnt.
	for _, bad := range []csrSpec{
		{cn: "svc-b", dns: []string{"a.example.com"}},
		{cn: "svc-a", dns: []string{"b.example.com"}},
		{cn: "svc-a", uris: []string{"spiffe://example.com/svc/b"}},
		{dns: []string{"a.example.com", "evil.example.net"}},
	} {
		before, _ := f.st.ListIssued(context.Background(), "", 0)
		tok := f.token(svcA, time.Hour)
		badCSR, _ := makeCSR(t, bad, nil)
		f.want(f.post("/enroll", tok, badCSR, nil), 403, ReasonNamesNotAllowed)
		if after, _ := f.st.ListIssued(context.Background(), "", 0); len(after) != len(before) {
			t.Fatalf("%+v: a certificate was recorded", bad)
		}
		f.want(f.post("/enroll", tok, csr, nil), 401, ReasonTokenUsed)
	}
	// A subset of the allowed names is fine.
	sub, _ := makeCSR(t, csrSpec{uris: []string{"spiffe://example.com/svc/a"}}, nil)
	f.want(f.post("/enroll", f.token(svcA, time.Hour), sub, nil), 200, "")
}

func TestCreateTokenValidates(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	for _, c := range []struct {
		c   Constraints
		ttl time.Duration
	}{
		{Constraints{CommonName: "x"}, time.Hour},                      // no consumer
		{Constraints{Consumer: "x"}, time.Hour},                        // no name
		{svcA, 0},                                                      // no lifetime
		{svcA, MaxTokenTTL + time.Second},                              // too long
		{Constraints{Consumer: "x", URIs: []string{"a b"}}, time.Hour}, // not a URI
	} {
		if _, err := CreateToken(ctx, st, c.c, c.ttl, time.Now()); err == nil {
			t.Errorf("%+v %v accepted", c.c, c.ttl)
		}
	}
	at := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC) // the caller's clock, not the wall clock
	tok, err := CreateToken(ctx, st, svcA, time.Hour, at)
	if err != nil || !wellFormed(tok) {
		t.Fatalf("%q %v", tok, err)
	}
	rec, err := st.EnrollTokenByHash(ctx, HashToken(tok))
	if err != nil || rec.Consumer != "svc-a" || strings.Contains(rec.Hash, tok) {
		t.Fatalf("%+v %v", rec, err)
	}
	if !rec.CreatedAt.Equal(at) || !rec.ExpiresAt.Equal(at.Add(time.Hour)) {
		t.Errorf("created %v, expires %v: want %v and an hour later", rec.CreatedAt, rec.ExpiresAt, at)
	}
	if tok2, _ := CreateToken(ctx, st, svcA, time.Hour, time.Now()); tok2 == tok {
		t.Fatal("same token twice")
	}
}

func TestRenew(t *testing.T) {
	f := newFixture(t)
	csr, key := makeCSR(t, csrA, nil)
	res := f.post("/enroll", f.token(svcA, time.Hour), csr, nil)
	f.want(res, 200, "")
	cur := tlsCert(res.chain, key)

	// With a new key and the same names.
	f.clk.Advance(time.Minute) // the listener checks validity with the real clock
	csr2, key2 := makeCSR(t, csrA, nil)
	res2 := f.post("/renew", "", csr2, cur)
	f.want(res2, 200, "")
	if !slices.Equal(certNames(res2.chain[0]), certNames(res.chain[0])) || res2.chain[0].SerialNumber.Cmp(res.chain[0].SerialNumber) == 0 ||
		!res2.chain[0].NotAfter.After(res.chain[0].NotAfter) {
		t.Fatalf("renewed %v until %v", certNames(res2.chain[0]), res2.chain[0].NotAfter)
	}
	// The renewed certificate renews in its turn.
	next := tlsCert(res2.chain, key2)
	csr3, _ := makeCSR(t, csrA, nil)
	f.want(f.post("/renew", "", csr3, next), 200, "")

	// Names must not change, in any direction.
	for _, bad := range []csrSpec{
		{cn: "svc-a", dns: []string{"a.example.com"}},
		{cn: "svc-a", dns: []string{"a.example.com", "b.example.com"}, uris: csrA.uris},
		{cn: "svc-b", dns: csrA.dns, uris: csrA.uris},
	} {
		c, _ := makeCSR(t, bad, nil)
		f.want(f.post("/renew", "", c, next), 403, ReasonRenewNamesChanged)
	}
	f.want(f.post("/renew", "", []byte("junk"), next), 400, ReasonCSRInvalid)
	// No client certificate.
	f.want(f.post("/renew", "", csr3, nil), 401, ReasonRenewNoCertificate)
}

func TestRenewRevokedRefused(t *testing.T) {
	f := newFixture(t)
	csr, key := makeCSR(t, csrA, nil)
	res := f.post("/enroll", f.token(svcA, time.Hour), csr, nil)
	f.want(res, 200, "")
	if err := f.ca.Revoke(context.Background(), res.chain[0].SerialNumber, "keyCompromise"); err != nil {
		t.Fatal(err)
	}
	before, _ := f.st.ListIssued(context.Background(), "", 0)
	csr2, _ := makeCSR(t, csrA, nil)
	f.want(f.post("/renew", "", csr2, tlsCert(res.chain, key)), 403, ReasonRenewRevoked)
	if after, _ := f.st.ListIssued(context.Background(), "", 0); len(after) != len(before) {
		t.Fatal("a certificate was issued")
	}
}

func TestRenewExpiredRefused(t *testing.T) {
	f := newFixture(t)
	csr, key := makeCSR(t, csrA, nil)
	res := f.post("/enroll", f.token(svcA, time.Hour), csr, nil)
	f.want(res, 200, "")
	// The listener checks with the real clock (still valid); the handler
	// with its own, past the certificate's end.
	f.clk.Advance(ca.DefaultClientLifetime + time.Minute)
	csr2, _ := makeCSR(t, csrA, nil)
	f.want(f.post("/renew", "", csr2, tlsCert(res.chain, key)), 401, ReasonRenewExpired)
}

func TestRenewOtherCARefused(t *testing.T) {
	f := newFixture(t)
	csr, key := makeCSR(t, csrA, nil)
	// Same names, same serial space, issued by another CA the listener
	// happens to trust.
	cert, err := f.other.Issue(context.Background(), ca.IssueRequest{CSR: csr, Profile: ca.ProfileClient})
	if err != nil {
		t.Fatal(err)
	}
	foreign := tlsCert([]*x509.Certificate{cert, f.other.Intermediate}, key)
	csr2, _ := makeCSR(t, csrA, nil)
	f.want(f.post("/renew", "", csr2, foreign), 401, ReasonRenewNoCertificate)
}
