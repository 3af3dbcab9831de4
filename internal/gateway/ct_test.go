package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/detect/ct"
	"github.com/wardengw/warden/internal/detect/ct/cttest"
	"github.com/wardengw/warden/internal/pki"
	"github.com/wardengw/warden/internal/pki/ca"
	"github.com/wardengw/warden/internal/pki/pkitest"
)

// ctEnv is a gateway watching a test CT log on 127.0.0.1 for
// api.example.com, the name of its own server certificate.
type ctEnv struct {
	*env
	log  *cttest.Log
	own  *pkitest.Leaf // the gateway's server certificate
	evil *pkitest.CA   // a CA that mis-issues certificates for the watched name
	t0   time.Time     // the gateway's clock at start
}

func ctBlock(logURL, domain string) string {
	return fmt.Sprintf(`ct:
  logs:
    - name: test-log
      url: %s
      key_file: ctlog.pem
  ca_file: ctlog-ca.pem
  domains: [%s]
  state_file: ct-state.json`, logURL, domain)
}

// newCTEnv starts the gateway; logURL overrides the test log's URL.
func newCTEnv(t *testing.T, domain, logURL string) *ctEnv {
	t.Helper()
	ce := &ctEnv{log: cttest.New(t), evil: pkitest.NewRootCA(t, "Mis-issuing CA", pkitest.Options{}),
		t0: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	if logURL == "" {
		logURL = ce.log.URL()
	}
	ce.env = newEnvWith(t, map[string]any{"ExtraYAML": ctBlock(logURL, domain)}, func(e *env) {
		e.clock.Store(&ce.t0)
		ce.own = e.ca.Issue(t, pkitest.Options{DNSNames: []string{"localhost", "api.example.com"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
		ce.own.WriteFiles(t, e.dir, "server")
		for name, data := range map[string][]byte{"ctlog.pem": ce.log.PublicKeyPEM(), "ctlog-ca.pem": ce.log.CertificatePEM()} {
			if err := os.WriteFile(filepath.Join(e.dir, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	})
	return ce
}

// ctPoll returns once a poll that started after the call has finished:
// the monitor takes a tick only between polls, so the second send waits
// for the poll the first one started. Nothing sleeps.
func (e *env) ctPoll() {
	e.t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for range 2 {
		select {
		case e.ctTicks <- e.now():
		case <-timeout.C:
			e.t.Fatal("the CT monitor did not take a tick")
		}
	}
}

// rogue is a certificate for a watched name with a key that is not the
// gateway's, issued by another CA.
func (ce *ctEnv) rogue(t *testing.T) *pkitest.Leaf {
	return ce.evil.Issue(t, pkitest.Options{DNSNames: []string{"login.api.example.com"}})
}

func (e *env) ctEvents(typ string) []audit.Event {
	var out []audit.Event
	for _, ev := range e.sink.Events() {
		if typ == "" && strings.HasPrefix(ev.Type, "ct_") || ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

func (e *env) metrics() string {
	e.t.Helper()
	_, _, admin := e.g.Addrs()
	resp, err := e.client().Get("https://" + admin.String() + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (e *env) ctState() []byte {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, "ct-state.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func ctTreeSize(t *testing.T, state []byte) uint64 {
	t.Helper()
	var f struct {
		Logs map[string]struct {
			TreeSize uint64 `json:"tree_size"`
		} `json:"logs"`
	}
	if err := json.Unmarshal(state, &f); err != nil || len(f.Logs) != 1 {
		t.Fatalf("state %s: %v", state, err)
	}
	for _, l := range f.Logs {
		return l.TreeSize
	}
	return 0
}

// TestCTRogueCertificate: the gateway's own certificate logged in CT is
// recorded (info) and raises no alert, without being configured as known;
// a certificate for a name below the watched domain with another key is a
// critical event at the first poll after it is logged, and is counted.
func TestCTRogueCertificate(t *testing.T) {
	e := newCTEnv(t, "api.example.com", "")
	e.ctPoll() // the empty log is the starting point

	e.log.AddCert(e.own.Cert, e.ca.Cert)
	e.ctPoll()
	known := e.waitEvent(audit.OfType(ct.EventKnownCertificate))
	if known.Severity != audit.Info || known.Fields["pin"] != pki.SPKIPin(e.own.Cert).String() {
		t.Fatalf("own certificate: %+v", known)
	}
	for _, ev := range e.ctEvents("") {
		if ev.Severity != audit.Info {
			t.Fatalf("the gateway's own certificate raised %+v", ev)
		}
	}

	rogue := e.rogue(t)
	e.log.AddCert(rogue.Cert, e.evil.Cert)
	e.ctPoll()
	ev := e.waitEvent(audit.OfType(ct.EventUnknownKey))
	if ev.Severity != audit.Critical || ev.Fields["pin"] != pki.SPKIPin(rogue.Cert).String() ||
		ev.Fields["domain"] != "api.example.com" || ev.Fields["index"] != uint64(1) || ev.Fields["verified"] != true {
		t.Fatalf("rogue certificate event: %+v", ev)
	}
	if n := len(e.ctEvents(ct.EventUnknownKey)); n != 1 {
		t.Errorf("%d rogue-certificate events, want 1", n)
	}

	// The clock is frozen: the last success is now (the metric's aging is
	// checked with a log that never answers, below).
	m := e.metrics()
	for _, want := range []string{`warden_ct_tree_size{log="test-log"} 2`, `warden_ct_rogue_certificates_total{log="test-log"} 1`,
		`warden_ct_seconds_since_success{log="test-log"} 0`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestCTInconsistentLog: a log whose new tree rewrites an entry already
// verified (a certificate slipped into its past) is a critical event, and
// the state keeps the last verified head, so every later poll fails too.
func TestCTInconsistentLog(t *testing.T) {
	e := newCTEnv(t, "api.example.com", "")
	e.ctPoll()
	e.log.AddCert(e.own.Cert, e.ca.Cert)
	e.log.AddCert(e.ca.Issue(t, pkitest.Options{DNSNames: []string{"elsewhere.example.net"}}).Cert, e.ca.Cert)
	e.ctPoll()
	before := e.ctState()
	if n := ctTreeSize(t, before); n != 2 {
		t.Fatalf("verified tree size %d, want 2", n)
	}

	rogue := e.rogue(t)
	e.log.Rewrite(1, cttest.X509Entry(t, rogue.Cert, 1, e.evil.Cert))
	e.log.AddCert(e.own.Cert, e.ca.Cert)
	e.ctPoll()
	ev := e.waitEvent(audit.OfType(ct.EventInconsistent))
	if ev.Severity != audit.Critical || ev.Fields["old_size"] != uint64(2) || ev.Fields["new_size"] != uint64(3) {
		t.Fatalf("inconsistency event: %+v", ev)
	}
	if after := e.ctState(); !bytes.Equal(before, after) {
		t.Fatalf("the state advanced past an inconsistent tree:\nbefore %s\nafter %s", before, after)
	}
	if m := e.metrics(); !strings.Contains(m, `warden_ct_tree_size{log="test-log"} 2`) {
		t.Errorf("tree size metric moved:\n%s", m)
	}
	if n := len(e.ctEvents(ct.EventUnknownKey)); n != 0 {
		t.Errorf("entries of an unverified tree were reported: %d", n)
	}
}

// restart stops the gateway, runs whileDown, and starts a new one from the
// same config file (same state file), as a process restart would.
func (e *env) restart(whileDown func()) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.g.Shutdown(ctx); err != nil {
		e.t.Fatal(err)
	}
	whileDown()
	c, warns, err := config.Load(e.cfgPath)
	if err != nil {
		e.t.Fatal(err)
	}
	g, err := New(c, warns, Options{Audit: audit.New(e.sink), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: e.now, CTTicks: e.ctTicks})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.g = g // the env's cleanup shuts this one down
}

// TestCTStateSurvivesRestart: a certificate logged while the gateway was
// down is reported after the restart (a gateway without state would start
// at the log's new head and miss it), and a history rewritten while it was
// down is caught at its first poll.
func TestCTStateSurvivesRestart(t *testing.T) {
	e := newCTEnv(t, "api.example.com", "")
	e.ctPoll()
	e.log.AddCert(e.own.Cert, e.ca.Cert)
	e.ctPoll()
	e.waitEvent(audit.OfType(ct.EventKnownCertificate))

	rogue := e.rogue(t)
	e.restart(func() { e.log.AddCert(rogue.Cert, e.evil.Cert) })
	e.ctPoll()
	ev := e.waitEvent(audit.OfType(ct.EventUnknownKey))
	if ev.Fields["index"] != uint64(1) || ev.Fields["pin"] != pki.SPKIPin(rogue.Cert).String() {
		t.Fatalf("after restart: %+v", ev)
	}

	e.restart(func() { e.log.Rewrite(0, cttest.X509Entry(t, e.rogue(t).Cert, 1, e.evil.Cert)) })
	e.ctPoll()
	if ev := e.waitEvent(audit.OfType(ct.EventInconsistent)); ev.Fields["old_size"] != uint64(2) {
		t.Fatalf("rewrite across a restart: %+v", ev)
	}
}

func (e *env) ctRunning() *ctRun {
	e.g.ct.mu.Lock()
	defer e.g.ct.mu.Unlock()
	return e.g.ct.running
}

func waitDone(t *testing.T, r *ctRun) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the old CT monitor did not stop")
	}
}

// TestCTReload: a reload that changes the ct block stops the old monitor
// and starts one with the new settings; an unchanged block keeps it; a
// removed block stops monitoring.
func TestCTReload(t *testing.T) {
	e := newCTEnv(t, "other.example.org", "")
	e.ctPoll()
	e.log.AddCert(e.rogue(t).Cert, e.evil.Cert)
	e.ctPoll()
	if n := len(e.ctEvents(ct.EventUnknownKey)); n != 0 {
		t.Fatalf("a domain not watched raised %d events", n)
	}

	old := e.ctRunning()
	e.writeConfig(map[string]any{"ExtraYAML": ctBlock(e.log.URL(), "api.example.com")})
	if err := e.g.Reload("test"); err != nil {
		t.Fatal(err)
	}
	waitDone(t, old)
	cur := e.ctRunning()
	if cur == nil || cur == old {
		t.Fatal("no new monitor after the reload")
	}
	rogue := e.rogue(t)
	e.log.AddCert(rogue.Cert, e.evil.Cert)
	e.ctPoll()
	if ev := e.waitEvent(audit.OfType(ct.EventUnknownKey)); ev.Fields["pin"] != pki.SPKIPin(rogue.Cert).String() {
		t.Fatalf("after reload: %+v", ev)
	}

	if err := e.g.Reload("unchanged"); err != nil {
		t.Fatal(err)
	}
	if e.ctRunning() != cur {
		t.Fatal("an unchanged ct block restarted the monitor")
	}

	e.writeConfig(map[string]any{"ExtraYAML": ""})
	if err := e.g.Reload("removed"); err != nil {
		t.Fatal(err)
	}
	waitDone(t, cur)
	if e.ctRunning() != nil {
		t.Fatal("monitoring still on without a ct block")
	}

	// An invalid block is refused and the running config is kept.
	e.writeConfig(map[string]any{"ExtraYAML": ctBlock("http://"+strings.TrimPrefix(e.log.URL(), "https://"), "api.example.com")})
	if err := e.g.Reload("invalid"); err == nil || !strings.Contains(err.Error(), "ct.logs[0].url") {
		t.Fatalf("invalid ct block: %v", err)
	}
}

// TestCTUnreachableLog: a log that refuses connections is a warning, once
// per hour per log however often it is polled, while requests are served.
func TestCTUnreachableLog(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "https://" + ln.Addr().String()
	ln.Close()
	e := newCTEnv(t, "api.example.com", dead)
	e.ctPoll()
	e.ctPoll() // at least four failed polls
	fails := e.ctEvents(ct.EventPollFailed)
	if len(fails) != 1 || fails[0].Severity != audit.Warning {
		t.Fatalf("want one warning, got %+v", fails)
	}
	resp, err := e.client().Get(e.httpsURL("/public/x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("request while the log is down: %d", resp.StatusCode)
	}

	later := e.t0.Add(ctFailureEvery + time.Minute)
	e.clock.Store(&later)
	e.ctPoll()
	ev := e.waitEvent(func(ev audit.Event) bool { return ev.Type == ct.EventPollFailed && ev.Fields["suppressed"] != nil })
	if n, _ := ev.Fields["suppressed"].(int); n < 3 {
		t.Errorf("suppressed count %v", ev.Fields["suppressed"])
	}
	if n := len(e.ctEvents(ct.EventPollFailed)); n != 2 {
		t.Errorf("%d poll-failure events, want 2", n)
	}
	if m := e.metrics(); !strings.Contains(m, `warden_ct_seconds_since_success{log="test-log"} 3660`) {
		t.Errorf("a log never polled successfully: want the time since monitoring started")
	}
}

// TestCTKnowsManagedCertificates: with a ct block and a server certificate
// from the internal CA (no certificate file: the gateway used to fail to
// start), the gateway's own certificate logged in CT is known, and so is
// the renewed one, whose key is new.
func TestCTKnowsManagedCertificates(t *testing.T) {
	log := cttest.New(t)
	start := time.Now()
	e := newEnvWith(t, map[string]any{"CA": true, "ExtraYAML": ctBlock(log.URL(), "api.example.com"),
		"ServerCerts": "    - internal_ca:\n        names: [api.example.com, localhost, 127.0.0.1]"}, func(e *env) {
		e.clock.Store(&start)
		if err := ca.Init(filepath.Join(e.dir, "ca"), ca.InitOptions{Name: "Test Internal"}); err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string][]byte{"ctlog.pem": log.PublicKeyPEM(), "ctlog-ca.pem": log.CertificatePEM()} {
			if err := os.WriteFile(filepath.Join(e.dir, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	})
	ie := &icaEnv{env: e}
	e.ctPoll()
	for i := range 2 {
		own := ie.source().Certificate()
		log.AddCert(own.Leaf, own.Leaf) // the chain is not what is checked: the key is
		e.ctPoll()
		want := pki.SPKIPin(own.Leaf).String()
		e.waitEvent(func(ev audit.Event) bool { return ev.Type == ct.EventKnownCertificate && ev.Fields["pin"] == want })
		if i == 0 { // renew: a new key
			ie.setClock(renewAt(own.Leaf).Add(time.Second))
			ie.check()
			if pki.SPKIPin(ie.source().Certificate().Leaf).String() == want {
				t.Fatal("the renewal kept the key")
			}
		}
	}
	if n := len(e.ctEvents(ct.EventUnknownKey)); n != 0 {
		t.Fatalf("%d alerts for the gateway's own certificates", n)
	}
}

// TestCTCombinedCertAndKeyFile: a server cert_file that also holds its
// private key (which the TLS loader accepts) does not stop a gateway with
// a ct block from starting, and its key is among the known keys; so is
// the key of a ct.known_cert_files entry that holds its key too (a backup
// certificate kept the same way).
func TestCTCombinedCertAndKeyFile(t *testing.T) {
	log := cttest.New(t)
	var own, backup *pkitest.Leaf
	e := newEnvWith(t, map[string]any{"ExtraYAML": ctBlock(log.URL(), "api.example.com") + "\n  known_cert_files: [backup.pem]",
		"ServerCerts": "    - cert_file: combined.pem\n      key_file: combined.pem"}, func(e *env) {
		own = e.ca.Issue(t, pkitest.Options{DNSNames: []string{"localhost", "api.example.com"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
		backup = e.ca.Issue(t, pkitest.Options{DNSNames: []string{"api.example.com"}})
		files := map[string][]byte{"combined.pem": append(own.KeyPEM(t), own.CertPEM()...),
			"backup.pem": append(backup.CertPEM(), backup.KeyPEM(t)...),
			"ctlog.pem":  log.PublicKeyPEM(), "ctlog-ca.pem": log.CertificatePEM()}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(e.dir, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	})
	want := pki.SPKIPin(own.Cert)
	if !slices.Contains(e.ctRunning().plan.cfg.KnownKeys, want) {
		t.Errorf("known keys %v lack the cert_file's %v", e.ctRunning().plan.cfg.KnownKeys, want)
	}
	if b := pki.SPKIPin(backup.Cert); !slices.Contains(e.ctRunning().plan.cfg.KnownKeys, b) {
		t.Errorf("known keys %v lack known_cert_files' %v", e.ctRunning().plan.cfg.KnownKeys, b)
	}
	e.ctPoll()
	log.AddCert(own.Cert, e.ca.Cert)
	e.ctPoll()
	if ev := e.waitEvent(audit.OfType(ct.EventKnownCertificate)); ev.Fields["pin"] != want.String() {
		t.Fatalf("own certificate: %+v", ev)
	}
	if n := len(e.ctEvents(ct.EventUnknownKey)); n != 0 {
		t.Fatalf("%d alerts for the gateway's own certificate", n)
	}
}
