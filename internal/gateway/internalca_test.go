package gateway

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/pki/ca"
	"github.com/wardengw/warden/internal/store"
)

const internalCACerts = "    - internal_ca:\n        names: [localhost, 127.0.0.1]"

// icaEnv is a gateway whose only server certificate comes from its
// internal CA (made in the test), on the injected clock.
type icaEnv struct {
	*env
	root  *x509.CertPool
	inter *x509.Certificate
}

func newICAEnv(t *testing.T) *icaEnv {
	t.Helper()
	start := time.Now()
	e := newEnvWith(t, map[string]any{"CA": true, "ServerCerts": internalCACerts}, func(e *env) {
		e.clock.Store(&start)
		if err := ca.Init(filepath.Join(e.dir, "ca"), ca.InitOptions{Name: "Test Internal"}); err != nil {
			t.Fatal(err)
		}
	})
	root, inter, err := ca.LoadCertificates(filepath.Join(e.dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	ie := &icaEnv{env: e, root: x509.NewCertPool(), inter: inter}
	ie.root.AddCert(root)
	return ie
}

// tlsConfig trusts only the internal CA, verifying at the gateway's clock
// (the clock the CA issues by).
func (e *icaEnv) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: e.root, ServerName: "localhost", Time: e.now}
}

// served returns the certificate a new TLS connection to addr gets.
func (e *icaEnv) served(addr net.Addr) *x509.Certificate {
	e.t.Helper()
	conn, err := tls.Dial("tcp", addr.String(), e.tlsConfig())
	if err != nil {
		e.t.Fatalf("handshake: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

func (e *icaEnv) servedHTTPS() *x509.Certificate {
	a, _, _ := e.g.Addrs()
	return e.served(a)
}

// source is the gateway's internal-CA certificate source.
func (e *icaEnv) source() *internalCASource {
	e.t.Helper()
	rt := e.g.rt.Load()
	if len(rt.managed) != 1 {
		e.t.Fatalf("%d managed certificates, want 1", len(rt.managed))
	}
	return rt.managed[0].src.(*internalCASource)
}

// setClock moves the gateway's clock to at.
func (e *icaEnv) setClock(at time.Time) { e.clock.Store(&at) }

// check has the renewal loop look at the clock now, and waits until it has.
func (e *icaEnv) check() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !e.source().checkNow(ctx) {
		e.t.Fatal("the renewal loop did not answer")
	}
}

// issued lists what the internal CA recorded, from the store file.
func (e *icaEnv) issued() []store.IssuedCert {
	e.t.Helper()
	records, err := store.Open(filepath.Join(e.dir, "warden.db"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer records.Close()
	list, err := records.ListIssued(context.Background(), ca.IssuerID(e.inter), 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

// restart stops the gateway and starts a new one on the same files.
func (e *icaEnv) restart(log *slog.Logger) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.g.Shutdown(ctx); err != nil {
		e.t.Fatal(err)
	}
	c, warns, err := config.Load(e.cfgPath)
	if err != nil {
		e.t.Fatal(err)
	}
	if e.g, err = New(c, warns, Options{Audit: audit.New(e.sink), Log: log, Now: e.now}); err != nil {
		e.t.Fatalf("restart: %v", err)
	}
	if err := e.g.Start(); err != nil {
		e.t.Fatal(err)
	}
}

func serialOf(c *x509.Certificate) string { return ca.SerialString(c.SerialNumber) }

// TestInternalCAServerCertificate: with an internal_ca entry, the gateway
// (HTTPS and admin listeners) serves a certificate its internal CA issued
// for the configured names; it chains to the CA root; the issuance is
// recorded; the key and certificate are kept 0600 for restarts.
func TestInternalCAServerCertificate(t *testing.T) {
	e := newICAEnv(t)
	leaf := e.servedHTTPS()
	if !slices.Equal(leaf.DNSNames, []string{"localhost"}) || len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("names: %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || leaf.CheckSignatureFrom(e.inter) != nil {
		t.Errorf("not a server certificate of the internal intermediate: %v %v", leaf.ExtKeyUsage, leaf.Issuer)
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got < ca.DefaultServerLifetime || got > ca.DefaultServerLifetime+10*time.Minute {
		t.Errorf("lifetime %v, want the CA's server default", got)
	}
	// The test CA that signed the file certificates is not trusted here: a
	// handshake only succeeds against the internal root.
	tr := &http.Transport{TLSClientConfig: e.tlsConfig()}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(e.httpsURL("/public/x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if _, err := tls.Dial("tcp", strings.TrimPrefix(e.httpsURL(""), "https://"), &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost"}); err == nil {
		t.Error("a client trusting only another CA accepted the certificate")
	}
	_, _, adm := e.g.Addrs()
	if got := e.served(adm); got.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("admin listener serves %s, HTTPS %s", serialOf(got), serialOf(leaf))
	}
	list := e.issued()
	if len(list) != 1 || list[0].Serial != serialOf(leaf) || list[0].Profile != "server" ||
		!slices.Equal(list[0].SANs, []string{"dns:localhost", "ip:127.0.0.1"}) {
		t.Fatalf("records: %+v", list)
	}
	if got := e.g.rt.Load().certs[0]; got.Use != "server" || got.Serial != leaf.SerialNumber.Text(16) {
		t.Errorf("expiry watch and metric: %+v", got)
	}
	files, _ := filepath.Glob(filepath.Join(e.dir, ManagedCertDir, "internal-ca-*.pem"))
	if len(files) != 1 {
		t.Fatalf("persisted files: %v", files)
	}
	for path, want := range map[string]os.FileMode{files[0]: 0o600, filepath.Dir(files[0]): 0o700} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", path, fi.Mode().Perm(), err, want)
		}
	}
}

// TestInternalCARenewal: nothing is issued before two thirds of the
// lifetime; past it, the gateway renews with a new key, new handshakes get
// the new certificate (never the old one again), and a connection opened
// before keeps working.
func TestInternalCARenewal(t *testing.T) {
	e := newICAEnv(t)
	first := e.servedHTTPS()
	due := renewAt(first)

	tr := &http.Transport{TLSClientConfig: e.tlsConfig()}
	defer tr.CloseIdleConnections()
	kept := &http.Client{Transport: tr}
	get := func() *http.Response {
		t.Helper()
		resp, err := kept.Get(e.httpsURL("/public/x"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		return resp
	}
	get() // opens the kept-alive connection

	e.setClock(due.Add(-time.Minute))
	e.check()
	if n := len(e.issued()); n != 1 || countEvents(e.sink, "certificate_renewed") != 0 {
		t.Fatalf("before two thirds of the lifetime: %d certificates issued", n)
	}
	if got := e.servedHTTPS(); got.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatal("certificate changed before it was due")
	}

	e.setClock(due.Add(time.Second))
	e.check()
	second := e.servedHTTPS()
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("not renewed past two thirds of the lifetime")
	}
	if bytes.Equal(second.RawSubjectPublicKeyInfo, first.RawSubjectPublicKeyInfo) {
		t.Error("renewed with the same key")
	}
	for range 3 {
		if got := e.servedHTTPS(); got.SerialNumber.Cmp(second.SerialNumber) != 0 {
			t.Fatalf("a new handshake got %s, want the renewed %s", serialOf(got), serialOf(second))
		}
	}
	if list := e.issued(); len(list) != 2 || list[0].Serial != serialOf(second) {
		t.Fatalf("records after renewal: %+v", list)
	}
	ev := e.waitEvent(nth("certificate_renewed", 1))
	if ev.Fields["serial"] != serialOf(second) || ev.Fields["previous_serial"] != serialOf(first) {
		t.Errorf("event: %+v", ev)
	}
	// The connection opened before the renewal keeps its certificate.
	if resp := get(); resp.TLS.PeerCertificates[0].SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Error("the kept-alive connection was replaced")
	}
	if got := e.g.rt.Load().certs[0].Serial; got != second.SerialNumber.Text(16) {
		t.Errorf("expiry watch still has %s", got)
	}
	// The next renewal is due at two thirds of the new certificate's life.
	e.setClock(renewAt(second).Add(-time.Minute))
	e.check()
	if n := len(e.issued()); n != 2 {
		t.Fatalf("renewed again too early: %d issued", n)
	}
}

// TestInternalCARevokedRenewsAtOnce: when the served certificate is
// revoked by another handle on the records (as `warden ca revoke` does from
// another process), the next check renews it at once, long before it is
// due, with a new key; the audit event says it was revoked; the revoked
// certificate is never served again, not even after a restart.
func TestInternalCARevokedRenewsAtOnce(t *testing.T) {
	e := newICAEnv(t)
	first := e.servedHTTPS()
	e.check() // not revoked, not due: nothing happens
	if n := len(e.issued()); n != 1 {
		t.Fatalf("%d certificates issued before the revocation, want 1", n)
	}

	records, err := store.Open(filepath.Join(e.dir, "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	authority, err := ca.Load(filepath.Join(e.dir, "ca"), nil, ca.Config{Records: records, Now: e.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := authority.Revoke(context.Background(), first.SerialNumber, "keyCompromise"); err != nil {
		t.Fatal(err)
	}
	records.Close()

	e.check() // the clock has not moved: only the revocation makes it renew
	second := e.servedHTTPS()
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("the revoked certificate is still served after a check")
	}
	if bytes.Equal(second.RawSubjectPublicKeyInfo, first.RawSubjectPublicKeyInfo) {
		t.Error("renewed with the compromised key")
	}
	ev := e.waitEvent(nth("certificate_renewed", 1))
	if ev.Reason != "revoked" || ev.Severity != audit.Warning || ev.Fields["previous_serial"] != serialOf(first) ||
		ev.Fields["serial"] != serialOf(second) {
		t.Errorf("event: %+v", ev)
	}
	e.check() // the new certificate is good: no further renewal
	if n := len(e.issued()); n != 2 || countEvents(e.sink, "certificate_renewed") != 1 {
		t.Fatalf("%d certificates issued after the revocation, want 2", n)
	}
	e.restart(e.g.log)
	if got := e.servedHTTPS(); got.SerialNumber.Cmp(second.SerialNumber) != 0 {
		t.Fatalf("after a restart: serial %s, want %s", serialOf(got), serialOf(second))
	}
}

// TestInternalCARotationUnderLoad: the gateway's certificate is renewed
// several times while clients send requests over kept-alive HTTP/1.1,
// HTTP/2, and a new connection per request. No request fails, and the
// new-connection client sees each new certificate.
func TestInternalCARotationUnderLoad(t *testing.T) {
	e := newICAEnv(t)
	var seen serialTracker
	run := startLoad(rotationClients(t, e.tlsConfig(), &seen), func(i, n int) string {
		return e.httpsURL(fmt.Sprintf("/public/load/%d/%d", i, n))
	})
	load := &run.progress
	wait := func(ch <-chan struct{}, what string) { t.Helper(); waitFor(t, ch, 10*time.Second, what) }
	wait(load.whenOK(50), "load to start")
	const renewals = 3
	for i := range renewals {
		cur := e.source().Certificate().Leaf
		e.setClock(renewAt(cur).Add(time.Second))
		e.check()
		next := e.source().Certificate().Leaf
		if next.SerialNumber.Cmp(cur.SerialNumber) == 0 {
			t.Fatalf("renewal %d did not happen", i+1)
		}
		wait(seen.when(serialOf(next)), "the new-connection client to get the renewed certificate")
		wait(load.whenOK(load.ok()+50), "more load")
	}
	run.finish(t, "renewals")
	if n := seen.count(); n != renewals+1 {
		t.Errorf("the new-connection client saw %d certificates, want %d", n, renewals+1)
	}
	if n := len(e.issued()); n != renewals+1 {
		t.Errorf("%d certificates issued, want %d", n, renewals+1)
	}
	t.Logf("%d requests, 0 failed, across %d renewals", load.ok(), renewals)
}

// TestInternalCARestart: a restart reuses the persisted certificate (no
// new issuance); a persisted file that cannot be trusted (garbage, cut
// short, readable by others, revoked) is replaced by a fresh issuance,
// with a warning, and the gateway starts.
func TestInternalCARestart(t *testing.T) {
	e := newICAEnv(t)
	first := e.servedHTTPS()
	files, _ := filepath.Glob(filepath.Join(e.dir, ManagedCertDir, "internal-ca-*.pem"))
	if len(files) != 1 {
		t.Fatalf("persisted files: %v", files)
	}
	path := files[0]

	e.restart(e.g.log)
	if got := e.servedHTTPS(); got.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("after a restart: serial %s, want the persisted %s", serialOf(got), serialOf(first))
	}
	if n := len(e.issued()); n != 1 {
		t.Fatalf("a restart issued again: %d certificates", n)
	}

	// A persisted certificate past two thirds of its life is renewed at
	// start, not served.
	e.setClock(renewAt(first).Add(time.Second))
	e.restart(e.g.log)
	if got := e.servedHTTPS(); got.SerialNumber.Cmp(first.SerialNumber) == 0 || len(e.issued()) != 2 {
		t.Fatalf("a restart past the renewal time serves %s; %d issued", serialOf(got), len(e.issued()))
	}

	tests := []struct {
		name   string
		damage func(t *testing.T, serial *big.Int)
		warn   string
	}{
		{"garbage", func(t *testing.T, _ *big.Int) { writeAtomic(t, path, "not a PEM file\n") }, "persisted certificate unusable"},
		{"cut short", func(t *testing.T, _ *big.Int) {
			b, _ := os.ReadFile(path)
			writeAtomic(t, path, string(b[:len(b)/2]))
		}, "persisted certificate unusable"},
		{"readable by others", func(t *testing.T, _ *big.Int) {
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "may have been read by others"},
		{"revoked", func(t *testing.T, serial *big.Int) {
			records, err := store.Open(filepath.Join(e.dir, "warden.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer records.Close()
			authority, err := ca.Load(filepath.Join(e.dir, "ca"), nil, ca.Config{Records: records, Now: e.now})
			if err != nil {
				t.Fatal(err)
			}
			if err := authority.Revoke(context.Background(), serial, "keyCompromise"); err != nil {
				t.Fatal(err)
			}
		}, "revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.servedHTTPS()
			issued := len(e.issued())
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := e.g.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			tt.damage(t, before.SerialNumber)
			var logs bytes.Buffer
			e.restart(slog.New(slog.NewTextHandler(&logs, nil)))
			got := e.servedHTTPS()
			if got.SerialNumber.Cmp(before.SerialNumber) == 0 {
				t.Fatal("the damaged certificate is served again")
			}
			if n := len(e.issued()); n != issued+1 {
				t.Errorf("%d certificates issued, want %d", n, issued+1)
			}
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), tt.warn) {
				t.Errorf("no warning %q in the log:\n%s", tt.warn, logs.String())
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("the replacement file: %v %v", fi, err)
			}
		})
	}
}

// TestInternalCARenewalFailure: when the CA cannot issue (its record
// store is gone), the current certificate keeps serving, the failure is an
// audit event, and the next attempt waits for the back-off.
func TestInternalCARenewalFailure(t *testing.T) {
	e := newICAEnv(t)
	first := e.servedHTTPS()
	if err := e.g.records.Close(); err != nil { // the CA records before it hands out: it cannot issue now
		t.Fatal(err)
	}
	due := renewAt(first).Add(time.Second)
	e.setClock(due)
	e.check()
	ev := e.waitEvent(nth("certificate_renewal_failed", 1))
	if ev.Severity != audit.Warning || ev.Fields["serial"] != serialOf(first) || !strings.Contains(ev.Detail, "record") {
		t.Errorf("event: %+v", ev)
	}
	if got := e.servedHTTPS(); got.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatal("the certificate in force was dropped after a failed renewal")
	}
	tr := &http.Transport{TLSClientConfig: e.tlsConfig()}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(e.httpsURL("/public/x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d after a failed renewal", resp.StatusCode)
	}
	// Back-off: no new attempt within a minute, one after it.
	e.setClock(due.Add(30 * time.Second))
	e.check()
	if n := countEvents(e.sink, "certificate_renewal_failed"); n != 1 {
		t.Fatalf("%d attempts within the back-off", n)
	}
	e.setClock(due.Add(time.Minute))
	e.check()
	if ev := e.waitEvent(nth("certificate_renewal_failed", 2)); ev.Fields["attempt"] != 2 || ev.Fields["retry_in"] != "2m0s" {
		t.Errorf("second attempt: %+v", ev)
	}
}

// TestInternalCAReload: a reload that leaves the internal_ca entry as it
// is keeps its source and certificate (nothing issued); one that changes
// the entry makes a new source with a new certificate and stops the old
// source; one that replaces it with files stops it too.
func TestInternalCAReload(t *testing.T) {
	e := newICAEnv(t)
	first := e.servedHTTPS()
	running := func() *managedRun {
		t.Helper()
		e.g.reloadMu.Lock()
		defer e.g.reloadMu.Unlock()
		if len(e.g.managed) != 1 {
			t.Fatalf("%d running sources, want 1", len(e.g.managed))
		}
		for _, r := range e.g.managed {
			return r
		}
		return nil
	}
	stopped := func(r *managedRun) {
		t.Helper()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Fatal("the source of a removed entry still runs")
		}
	}
	reload := func(vars map[string]any) {
		t.Helper()
		e.writeConfig(vars)
		if err := e.g.Reload("test"); err != nil {
			t.Fatal(err)
		}
	}
	r1 := running()

	reload(map[string]any{"PolicyValue": "two"})
	if r := running(); r != r1 || e.servedHTTPS().SerialNumber.Cmp(first.SerialNumber) != 0 || len(e.issued()) != 1 {
		t.Fatal("an unchanged internal_ca entry was not kept across a reload")
	}

	reload(map[string]any{"ServerCerts": internalCACerts + "\n        key_type: ed25519"})
	r2 := running()
	stopped(r1)
	second := e.servedHTTPS()
	if r2 == r1 || second.SerialNumber.Cmp(first.SerialNumber) == 0 || second.PublicKeyAlgorithm != x509.Ed25519 || len(e.issued()) != 2 {
		t.Fatalf("a changed entry: same source %v, key %v, %d issued", r2 == r1, second.PublicKeyAlgorithm, len(e.issued()))
	}
	e.check() // the new source runs

	reload(map[string]any{"ServerCerts": ""})
	stopped(r2)
	e.g.reloadMu.Lock()
	n := len(e.g.managed)
	e.g.reloadMu.Unlock()
	if n != 0 {
		t.Fatalf("%d sources still running with file certificates only", n)
	}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(e.httpsURL(""), "https://"), &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost"})
	if err != nil {
		t.Fatalf("the file certificate after the reload: %v", err)
	}
	conn.Close()
}

// TestInternalCARevocationWakesRenewal: a revocation made by another
// process replaces the served certificate as soon as the gateway's CA
// learns of it (here: at the next CRL request), without a scheduled check.
func TestInternalCARevocationWakesRenewal(t *testing.T) {
	e := newICAEnv(t)
	first := e.servedHTTPS()
	records, err := store.Open(filepath.Join(e.dir, "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer records.Close()
	if err := ca.RevokeRecord(context.Background(), records, ca.IssuerID(e.inter), first.SerialNumber, "keyCompromise", e.now()); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: e.tlsConfig()}}
	resp, err := c.Get(e.httpsURL("/.well-known/warden/pki/crl"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ev := e.waitEvent(nth("certificate_renewed", 1))
	if ev.Reason != "revoked" || ev.Fields["previous_serial"] != serialOf(first) {
		t.Fatalf("event: %+v", ev)
	}
	if got := e.servedHTTPS(); got.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("the revoked certificate is still served")
	}
}

// TestInternalCARevokedRetriedAfterFailure: when the replacement of a
// revoked certificate fails once, the next attempt comes after the
// back-off (1 minute), not at the normal renewal time, and replaces it.
func TestInternalCARevokedRetriedAfterFailure(t *testing.T) {
	e := newICAEnv(t)
	first := e.servedHTTPS()
	records, err := store.Open(filepath.Join(e.dir, "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer records.Close()
	if err := ca.RevokeRecord(context.Background(), records, ca.IssuerID(e.inter), first.SerialNumber, "keyCompromise", e.now()); err != nil {
		t.Fatal(err)
	}
	e.source().failIssues.Store(1)
	e.check()
	ev := e.waitEvent(nth("certificate_renewal_failed", 1))
	if ev.Severity != audit.Critical || ev.Fields["retry_in"] != "1m0s" || ev.Fields["revoked_at"] == nil {
		t.Errorf("event: %+v", ev)
	}
	if got := e.servedHTTPS(); got.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("served %s after the failed replacement, want the revoked %s still", serialOf(got), serialOf(first))
	}
	// Within the back-off: no attempt; at its end: replaced.
	e.setClock(e.now().Add(30 * time.Second))
	e.check()
	if n := countEvents(e.sink, "certificate_renewal_failed"); n != 1 || len(e.issued()) != 1 {
		t.Fatalf("an attempt within the back-off: %d failures, %d issued", n, len(e.issued()))
	}
	e.setClock(e.now().Add(30 * time.Second))
	e.check()
	second := e.servedHTTPS()
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("the revoked certificate is still served after the back-off")
	}
	ev = e.waitEvent(nth("certificate_renewed", 1))
	if ev.Reason != "revoked" || ev.Fields["previous_serial"] != serialOf(first) || ev.Fields["serial"] != serialOf(second) {
		t.Errorf("event: %+v", ev)
	}
}

// TestInternalCARestartClientProfile: a persisted certificate of the
// internal CA for the right names and key type, but with the client
// profile (EKU clientAuth), is not reused at start: the gateway issues
// and serves a new server certificate.
func TestInternalCARestartClientProfile(t *testing.T) {
	e := newICAEnv(t)
	first := e.servedHTTPS()
	files, _ := filepath.Glob(filepath.Join(e.dir, ManagedCertDir, "internal-ca-*.pem"))
	if len(files) != 1 {
		t.Fatalf("persisted files: %v", files)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	records, err := store.Open(filepath.Join(e.dir, "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	authority, err := ca.Load(filepath.Join(e.dir, "ca"), nil, ca.Config{Records: records, Now: e.now, PublishURL: "http://localhost/.well-known/warden/pki"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}, key)
	if err != nil {
		t.Fatal(err)
	}
	planted, err := authority.Issue(ctx, ca.IssueRequest{CSR: csr, Profile: ca.ProfileClient})
	records.Close()
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	file := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	file = append(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: planted.Raw})...)
	file = append(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.inter.Raw})...)
	writeAtomic(t, files[0], string(file))

	var logs bytes.Buffer
	e.restart(slog.New(slog.NewTextHandler(&logs, nil)))
	got := e.servedHTTPS()
	if got.SerialNumber.Cmp(planted.SerialNumber) == 0 {
		t.Fatal("the planted client certificate is served")
	}
	if got.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("the first certificate is served: nothing was issued")
	}
	if !slices.Equal(got.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("served EKU %v, want serverAuth", got.ExtKeyUsage)
	}
	if n := len(e.issued()); n != 3 {
		t.Errorf("%d certificates issued, want 3 (first, planted, replacement)", n)
	}
	if !strings.Contains(logs.String(), "persisted certificate unusable") || !strings.Contains(logs.String(), "not a server certificate") {
		t.Errorf("no warning in the log:\n%s", logs.String())
	}
}
