package ca

import (
	"context"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/store"
)

// TestCertStatus: the CA answers for its own certificates from the records
// as they are at each call: a revocation by another store handle (another
// process) is seen at the next call, a serial it did not issue is not
// "issued", and unreadable records are an error, never "good".
func TestCertStatus(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	good, bad, later := f.issue("good"), f.issue("bad"), f.issue("later")
	if err := f.st.RecordIssued(ctx, store.IssuedCert{Serial: "abcdef", Issuer: "another-ca", Subject: "CN=x", Profile: "client",
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IssuedAt: time.Now(), PEM: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if err := f.ca.Revoke(ctx, bad.SerialNumber, "keyCompromise"); err != nil {
		t.Fatal(err)
	}
	cli, err := store.Open(f.st.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	type want struct {
		issued, revoked bool
		reason          int
	}
	check := func(name string, serial *big.Int, w want) {
		t.Helper()
		issued, at, reason, err := f.ca.CertStatus(ctx, serial)
		if err != nil || issued != w.issued || !at.IsZero() != w.revoked || reason != w.reason {
			t.Fatalf("%s: issued %v revoked at %v reason %d err %v; want %+v", name, issued, at, reason, err, w)
		}
	}
	for _, c := range []struct {
		name   string
		serial *big.Int
		want   want
	}{
		{"good", good.SerialNumber, want{issued: true}},
		{"good again (remembered as issued)", good.SerialNumber, want{issued: true}},
		{"revoked in-process", bad.SerialNumber, want{true, true, 1}},
		{"not yet revoked", later.SerialNumber, want{issued: true}},
		{"never issued", big.NewInt(12345), want{}},
		{"issued by another CA", big.NewInt(0xabcdef), want{}},
		{"zero serial", big.NewInt(0), want{}},
	} {
		check(c.name, c.serial, c.want)
	}
	// `warden ca revoke` through its own handle: seen at the next call.
	if err := RevokeRecord(ctx, cli, f.ca.IssuerID, later.SerialNumber, "superseded", time.Now()); err != nil {
		t.Fatal(err)
	}
	check("revoked by another process", later.SerialNumber, want{true, true, 4})
	check("still good", good.SerialNumber, want{issued: true})
}

// TestCertStatusRecordsUnreadable: when the revocation generation cannot
// be read, CertStatus fails, even for a serial it answered before.
func TestCertStatusRecordsUnreadable(t *testing.T) {
	recs := newMemRecords()
	c := testLoad(t, testInit(t, InitOptions{}), nil, Config{Records: recs})
	csr, _ := makeCSR(t, csrSpec{cn: "a", uris: []string{"spiffe://example.com/a"}})
	cert, err := c.Issue(context.Background(), IssueRequest{CSR: csr, Profile: ProfileClient})
	if err != nil {
		t.Fatal(err)
	}
	if issued, _, _, err := c.CertStatus(context.Background(), cert.SerialNumber); err != nil || !issued {
		t.Fatalf("%v %v", issued, err)
	}
	recs.setFail(errors.New("disk I/O error"))
	if issued, _, _, err := c.CertStatus(context.Background(), cert.SerialNumber); err == nil || issued {
		t.Fatalf("unreadable records: issued %v, err %v", issued, err)
	}
}

// BenchmarkCertStatus: what the gateway's local revocation check costs per
// request on a real store, with 1000 revocations recorded (the ratio
// against the check off, through the whole gateway, is
// internal/gateway's BenchmarkInternalCAKeepAlive).
func BenchmarkCertStatus(b *testing.B) {
	st := openStore(b)
	c := testLoad(b, testInit(b, InitOptions{}), nil, Config{Records: st})
	ctx := context.Background()
	var cert *big.Int
	for i := range 1001 {
		csr, _ := makeCSR(b, csrSpec{cn: "a", uris: []string{"spiffe://example.com/a"}})
		crt, err := c.Issue(ctx, IssueRequest{CSR: csr, Profile: ProfileClient})
		if err != nil {
			b.Fatal(err)
		}
		if i == 1000 {
			cert = crt.SerialNumber
			break
		}
		if err := c.Revoke(ctx, crt.SerialNumber, "superseded"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		issued, at, _, err := c.CertStatus(ctx, cert)
		if err != nil || !issued || !at.IsZero() {
			b.Fatal(issued, at, err)
		}
	}
}

// TestOnRevokeStop: a revocation calls the listeners registered then; one
// that was stopped (a renewal source that no longer runs) is not called
// and not kept.
func TestOnRevokeStop(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var kept, stopped int
	f.ca.OnRevoke(func() { kept++ })
	stop := f.ca.OnRevoke(func() { stopped++ })
	stop()
	if err := f.ca.Revoke(ctx, f.issue("x").SerialNumber, "superseded"); err != nil {
		t.Fatal(err)
	}
	if kept == 0 || stopped != 0 {
		t.Fatalf("listener calls: kept %d, stopped %d; want the kept one only", kept, stopped)
	}
	f.ca.mu.Lock()
	n := len(f.ca.listeners)
	f.ca.mu.Unlock()
	if n != 2 { // the publisher's and the kept one
		t.Fatalf("%d listeners registered, want 2", n)
	}
}
