package ct

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/detect/ct/cttest"
	"github.com/wardengw/warden/internal/pki"
	"github.com/wardengw/warden/internal/pki/pkitest"
)

// fixture is a test log, a CA that issues into it, and the operator's key.
type fixture struct {
	log   *cttest.Log
	ca    *pkitest.CA
	known *pkitest.Leaf // the operator's legitimate certificate
	sink  *audit.MemorySink
	state string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	root := pkitest.NewRootCA(t, "Test Root", pkitest.Options{})
	f := &fixture{
		log:   cttest.New(t),
		ca:    root.NewIntermediate(t, "Test Issuing CA", pkitest.Options{}),
		sink:  audit.NewMemorySink(),
		state: filepath.Join(t.TempDir(), "ct-state.json"),
	}
	f.known = f.ca.Issue(t, pkitest.Options{DNSNames: []string{"api.example.com"}})
	return f
}

func (f *fixture) config() Config {
	return Config{
		Logs:       []Log{{URL: f.log.URL(), PublicKey: f.log.PublicKeyPEM(), Name: "test-log"}},
		Domains:    []string{"Example.COM."},
		KnownKeys:  []pki.Pin{pki.SPKIPin(f.known.Cert)},
		StateFile:  f.state,
		HTTPClient: f.log.Client(),
		Audit:      audit.New(f.sink),
	}
}

func (f *fixture) monitor(t *testing.T, mod ...func(*Config)) *Monitor {
	t.Helper()
	cfg := f.config()
	for _, fn := range mod {
		fn(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// poll runs one round and returns the events it raised.
func (f *fixture) poll(t *testing.T, m *Monitor) ([]audit.Event, error) {
	t.Helper()
	before := len(f.sink.Events())
	err := m.Poll(context.Background())
	return f.sink.Events()[before:], err
}

func ofType(evs []audit.Event, typ string) []audit.Event {
	var out []audit.Event
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func critical(evs []audit.Event) []audit.Event {
	var out []audit.Event
	for _, e := range evs {
		if e.Severity == audit.Critical {
			out = append(out, e)
		}
	}
	return out
}

func readState(t *testing.T, path string) map[string]*logState {
	t.Helper()
	st, err := loadState(path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func TestRogueCertificateRaisesEventWithinOnePoll(t *testing.T) {
	f := newFixture(t)
	m := f.monitor(t)
	if evs, err := f.poll(t, m); err != nil || len(evs) != 0 { // empty log: bootstrap
		t.Fatalf("first poll: %v %v", err, evs)
	}

	// A legitimate certificate, one for someone else, and a rogue one
	// (other key, same names) issued by a CA the attacker fooled.
	f.log.AddCert(f.known.Cert, f.ca.Cert)
	f.log.AddCert(f.ca.Issue(t, pkitest.Options{DNSNames: []string{"example.org", "www.example.org"}}).Cert)
	f.log.AddCert(f.ca.Issue(t, pkitest.Options{DNSNames: []string{"notexample.com"}}).Cert)
	rogue := f.ca.Issue(t, pkitest.Options{DNSNames: []string{"www.example.com", "*.Example.com"}})
	idx := f.log.AddCert(rogue.Cert, f.ca.Cert)

	evs, err := f.poll(t, m)
	if err != nil {
		t.Fatal(err)
	}
	crit := critical(evs)
	if len(crit) != 1 || crit[0].Type != EventUnknownKey {
		t.Fatalf("want one %s, got %+v", EventUnknownKey, evs)
	}
	e := crit[0].Fields
	if e["index"] != uint64(idx) || e["pin"] != pki.SPKIPin(rogue.Cert).String() || e["log"] != "test-log" ||
		e["domain"] != "example.com" || e["serial"] != rogue.Cert.SerialNumber.Text(16) ||
		!strings.Contains(e["issuer"].(string), "Test Issuing CA") || e["verified"] != true ||
		!e["not_after"].(time.Time).Equal(rogue.Cert.NotAfter) {
		t.Fatalf("event fields: %+v", e)
	}
	if known := ofType(evs, EventKnownCertificate); len(known) != 1 || known[0].Fields["index"] != uint64(0) {
		t.Fatalf("known certificate: %+v", evs)
	}
	if len(evs) != 2 {
		t.Fatalf("other domains raised events: %+v", evs)
	}
	if st := readState(t, f.state)[f.log.URL()]; st.TreeSize != 4 {
		t.Fatalf("state not advanced: %+v", st)
	}

	// Nothing new, nothing raised; the state file is private.
	if evs, err := f.poll(t, m); err != nil || len(evs) != 0 {
		t.Fatalf("quiet poll: %v %+v", err, evs)
	}
	if fi, err := os.Stat(f.state); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode: %v %v", fi.Mode(), err)
	}
}

func TestPrecertificateIsChecked(t *testing.T) {
	f := newFixture(t)
	m := f.monitor(t)
	if _, err := f.poll(t, m); err != nil {
		t.Fatal(err)
	}
	rogue := f.ca.Issue(t, pkitest.Options{DNSNames: []string{"login.example.com"}})
	// The TBSCertificate of an ordinary certificate stands in for a
	// precertificate's: the monitor reads names and key from it.
	f.log.AddEntry(cttest.PrecertEntry(t, rogue.Cert.RawTBSCertificate, f.ca.Cert, rogue.Cert.Raw, uint64(time.Now().UnixMilli())))
	evs, err := f.poll(t, m)
	if err != nil {
		t.Fatal(err)
	}
	if c := critical(evs); len(c) != 1 || c[0].Type != EventUnknownKey || c[0].Fields["precert"] != true {
		t.Fatalf("precert: %+v", evs)
	}
}

func TestRewrittenHistoryIsInconsistent(t *testing.T) {
	f := newFixture(t)
	for range 5 {
		f.log.AddCert(f.ca.Issue(t, pkitest.Options{DNSNames: []string{"other.test"}}).Cert)
	}
	m := f.monitor(t, func(c *Config) { c.Backfill = true })
	if _, err := f.poll(t, m); err != nil {
		t.Fatal(err)
	}
	before := readState(t, f.state)[f.log.URL()]

	// The log rewrites entry 2 (say, to remove a certificate it should not
	// have logged), grows, and signs the new tree with its real key.
	f.log.Rewrite(2, cttest.X509Entry(t, f.ca.Issue(t, pkitest.Options{DNSNames: []string{"other.test"}}).Cert, 1))
	f.log.AddCert(f.ca.Issue(t, pkitest.Options{DNSNames: []string{"more.test"}}).Cert)
	evs, err := f.poll(t, m)
	if reason(err) != EventInconsistent {
		t.Fatalf("err = %v", err)
	}
	if c := critical(evs); len(c) != 1 || c[0].Type != EventInconsistent || c[0].Fields["old_size"] != uint64(5) || c[0].Fields["new_size"] != uint64(6) {
		t.Fatalf("events: %+v", evs)
	}
	after := readState(t, f.state)[f.log.URL()]
	if after.TreeSize != before.TreeSize || string(after.RootHash) != string(before.RootHash) {
		t.Fatalf("state advanced past an inconsistent tree: %+v", after)
	}
	// It keeps saying so.
	if _, err := f.poll(t, m); reason(err) != EventInconsistent {
		t.Fatalf("second poll: %v", err)
	}

	// The same size with another root is inconsistent too.
	f.log.Truncate(5)
	if _, err := f.poll(t, m); reason(err) != EventInconsistent {
		t.Fatalf("same size, other root: %v", err)
	}
}

func TestShrinkingTreeIsInconsistent(t *testing.T) {
	f := newFixture(t)
	for range 4 {
		f.log.AddCert(f.ca.Issue(t, pkitest.Options{DNSNames: []string{"other.test"}}).Cert)
	}
	m := f.monitor(t)
	if _, err := f.poll(t, m); err != nil {
		t.Fatal(err)
	}
	f.log.Truncate(2)
	evs, err := f.poll(t, m)
	if reason(err) != EventInconsistent || len(ofType(evs, EventInconsistent)) != 1 {
		t.Fatalf("%v %+v", err, evs)
	}
	if !strings.Contains(ofType(evs, EventInconsistent)[0].Detail, "shrank") {
		t.Fatalf("detail: %+v", evs)
	}
	if st := readState(t, f.state)[f.log.URL()]; st.TreeSize != 4 {
		t.Fatalf("state: %+v", st)
	}
}

func TestBadSignatureRaisesEvent(t *testing.T) {
	f := newFixture(t)
	m := f.monitor(t)
	if _, err := f.poll(t, m); err != nil {
		t.Fatal(err)
	}
	f.log.BadSignatures(true)
	rogue := f.ca.Issue(t, pkitest.Options{DNSNames: []string{"example.com"}})
	f.log.AddCert(rogue.Cert)
	evs, err := f.poll(t, m)
	if reason(err) != EventBadSignature || len(evs) != 1 || evs[0].Type != EventBadSignature || evs[0].Severity != audit.Critical {
		t.Fatalf("%v %+v", err, evs)
	}
	if st := readState(t, f.state)[f.log.URL()]; st.TreeSize != 0 {
		t.Fatalf("state advanced on a bad signature: %+v", st)
	}
	// Once the log signs properly again, the entry is seen.
	f.log.BadSignatures(false)
	evs, err = f.poll(t, m)
	if err != nil || len(ofType(evs, EventUnknownKey)) != 1 {
		t.Fatalf("%v %+v", err, evs)
	}
}

func TestSplitViewIsDetected(t *testing.T) {
	f := newFixture(t)
	m := f.monitor(t)
	if _, err := f.poll(t, m); err != nil {
		t.Fatal(err)
	}
	// The tree holds a rogue certificate; monitors are shown a harmless one.
	rogue := f.ca.Issue(t, pkitest.Options{DNSNames: []string{"example.com"}})
	idx := f.log.AddCert(rogue.Cert)
	f.log.SplitView(idx, cttest.X509Entry(t, f.ca.Issue(t, pkitest.Options{DNSNames: []string{"harmless.test"}}).Cert, 1))
	evs, err := f.poll(t, m)
	if reason(err) != EventEntriesMismatch || len(critical(evs)) != 1 || critical(evs)[0].Type != EventEntriesMismatch {
		t.Fatalf("%v %+v", err, evs)
	}
	if st := readState(t, f.state)[f.log.URL()]; st.TreeSize != 0 {
		t.Fatalf("state advanced: %+v", st)
	}
}

func TestRestartContinuesFromState(t *testing.T) {
	f := newFixture(t)
	m := f.monitor(t)
	if _, err := f.poll(t, m); err != nil {
		t.Fatal(err)
	}
	f.log.AddCert(f.ca.Issue(t, pkitest.Options{DNSNames: []string{"a.example.com"}}).Cert)
	if evs, err := f.poll(t, m); err != nil || len(ofType(evs, EventUnknownKey)) != 1 {
		t.Fatalf("%v %+v", err, evs)
	}

	// A new process: the old entry is not reported again; a new one is.
	f.log.AddCert(f.ca.Issue(t, pkitest.Options{DNSNames: []string{"b.example.com"}}).Cert)
	m2 := f.monitor(t)
	evs, err := f.poll(t, m2)
	if err != nil {
		t.Fatal(err)
	}
	if u := ofType(evs, EventUnknownKey); len(u) != 1 || u[0].Fields["index"] != uint64(1) {
		t.Fatalf("after restart: %+v", evs)
	}
}

func TestBootstrapAtCurrentHead(t *testing.T) {
	f := newFixture(t)
	// History before the monitor starts is not scanned (real logs are
	// huge); the head is verified through the last entry's inclusion proof.
	for i := range 13 {
		names := []string{"old.test"}
		if i == 3 {
			names = []string{"old.example.com"}
		}
		f.log.AddCert(f.ca.Issue(t, pkitest.Options{DNSNames: names}).Cert)
	}
	m := f.monitor(t)
	if evs, err := f.poll(t, m); err != nil || len(evs) != 0 {
		t.Fatalf("bootstrap: %v %+v", err, evs)
	}
	if s := f.log.Stats(); s.GetProofByHash != 1 || s.GetEntries != 1 {
		t.Fatalf("bootstrap requests: %+v", s)
	}
	for range 6 {
		f.log.AddCert(f.ca.Issue(t, pkitest.Options{DNSNames: []string{"new.test"}}).Cert)
	}
	rogue := f.ca.Issue(t, pkitest.Options{DNSNames: []string{"example.com"}})
	f.log.AddCert(rogue.Cert)
	evs, err := f.poll(t, m)
	if err != nil || len(evs) != 1 || evs[0].Type != EventUnknownKey || evs[0].Fields["index"] != uint64(19) {
		t.Fatalf("%v %+v", err, evs)
	}
}

func TestBatchesAreBounded(t *testing.T) {
	f := newFixture(t)
	m := f.monitor(t)
	if _, err := f.poll(t, m); err != nil {
		t.Fatal(err)
	}
	certs := []*pkitest.Leaf{
		f.ca.Issue(t, pkitest.Options{DNSNames: []string{"filler.test"}}),
		f.ca.Issue(t, pkitest.Options{DNSNames: []string{"filler2.test"}}),
	}
	for i := range 1000 {
		if i == 777 {
			f.log.AddCert(f.ca.Issue(t, pkitest.Options{DNSNames: []string{"deep.example.com"}}).Cert)
			continue
		}
		f.log.AddCert(certs[i%2].Cert)
	}
	// The log itself caps responses below what the monitor asks for.
	f.log.CapEntries(50)
	m = f.monitor(t, func(c *Config) { c.BatchSize = 64 })
	evs, err := f.poll(t, m)
	if err != nil {
		t.Fatal(err)
	}
	if u := ofType(evs, EventUnknownKey); len(u) != 1 || u[0].Fields["index"] != uint64(777) {
		t.Fatalf("%+v", evs)
	}
	s := f.log.Stats()
	if s.LargestEntriesRequest > 64 || s.GetEntries != 20 {
		t.Fatalf("batching: %+v", s)
	}
}

func TestRunPollsEveryInterval(t *testing.T) {
	f := newFixture(t)
	m := f.monitor(t, func(c *Config) { c.PollInterval = MinPollInterval })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	// Wait for the first round (bootstrap) before adding the certificate.
	if err := f.log.WaitStats(ctx, func(s cttest.Stats) bool { return s.GetSTH > 0 }); err != nil {
		t.Fatal(err)
	}
	f.log.AddCert(f.ca.Issue(t, pkitest.Options{DNSNames: []string{"example.com"}}).Cert)
	if _, err := f.sink.Wait(ctx, audit.OfType(EventUnknownKey)); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
}

func TestPollFailureIsAWarning(t *testing.T) {
	f := newFixture(t)
	m := f.monitor(t, func(c *Config) { c.HTTPClient = nil }) // does not trust the test log's certificate
	evs, err := f.poll(t, m)
	if reason(err) != EventPollFailed || len(evs) != 1 || evs[0].Severity != audit.Warning {
		t.Fatalf("%v %+v", err, evs)
	}
}

func TestConfigErrors(t *testing.T) {
	f := newFixture(t)
	key := f.log.PublicKeyPEM()
	cases := map[string]struct {
		mod  func(*Config)
		want []string
	}{
		"nothing":  {func(c *Config) { c.Logs, c.Domains = nil, nil }, []string{"no logs", "no domains"}},
		"http":     {func(c *Config) { c.Logs[0].URL = "http://ct.example/log" }, []string{"want https"}},
		"key":      {func(c *Config) { c.Logs[0].PublicKey = []byte("junk") }, []string{"public key"}},
		"cert pem": {func(c *Config) { c.Logs[0].PublicKey = f.known.CertPEM() }, []string{"want PUBLIC KEY"}},
		"dup": {func(c *Config) {
			c.Logs = append(c.Logs, Log{URL: c.Logs[0].URL + "/", PublicKey: key})
		}, []string{"listed twice"}},
		"wildcard": {func(c *Config) { c.Domains = []string{"*.example.com", "localhost"} }, []string{"subdomains are watched", "not a domain"}},
		"batch":    {func(c *Config) { c.BatchSize = MaxBatchSize + 1; c.PollInterval = time.Millisecond }, []string{"batch size", "poll interval"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := f.config()
			tc.mod(&cfg)
			_, err := New(cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestCorruptStateIsRefused(t *testing.T) {
	f := newFixture(t)
	if err := os.WriteFile(f.state, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(f.config()); err == nil {
		t.Fatal("a corrupt state file was accepted (the monitor would silently start over)")
	}
}

func TestDomainMatching(t *testing.T) {
	d := []string{"example.com", "xn--bcher-kva.example"}
	for name, want := range map[string]string{
		"example.com": "example.com", "a.b.example.com": "example.com", "*.example.com": "example.com",
		"notexample.com": "", "example.com.evil.test": "", "xn--bcher-kva.example": "xn--bcher-kva.example",
	} {
		if got := matchDomain(d, name); got != want {
			t.Errorf("matchDomain(%q) = %q, want %q", name, got, want)
		}
	}
	if got, err := parseDomain("Bücher.example"); err != nil || got != "xn--bcher-kva.example" {
		t.Errorf("parseDomain: %q %v", got, err)
	}
}

// TestFailingLogStillReportsRogueCertificates: a log whose get-entries keeps
// failing part-way (a busy public log answering 429) cannot be verified,
// but a rogue certificate in the entries it did serve is reported at once,
// unverified, and only once: not again while the log keeps failing, nor
// when the tree is finally verified. The state waits for verification.
func TestFailingLogStillReportsRogueCertificates(t *testing.T) {
	f := newFixture(t)
	m := f.monitor(t, func(c *Config) { c.BatchSize = 1 })
	if _, err := f.poll(t, m); err != nil {
		t.Fatal(err)
	}
	f.log.AddCert(f.known.Cert, f.ca.Cert)
	rogue := f.ca.Issue(t, pkitest.Options{DNSNames: []string{"www.example.com"}})
	idx := f.log.AddCert(rogue.Cert, f.ca.Cert)
	f.log.AddCert(f.ca.Issue(t, pkitest.Options{DNSNames: []string{"example.org"}}).Cert)
	f.log.FailEntriesFrom(idx + 1)

	evs, err := f.poll(t, m)
	if err == nil {
		t.Fatal("a poll with failing get-entries succeeded")
	}
	crit := critical(evs)
	if len(crit) != 1 || crit[0].Type != EventUnknownKey || crit[0].Fields["verified"] != false || crit[0].Fields["index"] != uint64(idx) {
		t.Fatalf("want one unverified %s, got %+v", EventUnknownKey, evs)
	}
	if st := readState(t, f.state)[f.log.URL()]; st.TreeSize != 0 {
		t.Fatalf("state advanced without verification: %+v", st)
	}
	if evs, err := f.poll(t, m); err == nil || len(critical(evs)) != 0 {
		t.Fatalf("second failing poll: %v, %+v", err, evs)
	}

	f.log.FailEntriesFrom(-1)
	evs, err = f.poll(t, m)
	if err != nil {
		t.Fatal(err)
	}
	if len(critical(evs)) != 0 {
		t.Fatalf("the rogue certificate was reported again: %+v", evs)
	}
	if st := readState(t, f.state)[f.log.URL()]; st.TreeSize != 3 {
		t.Fatalf("state not advanced once verified: %+v", st)
	}
}
