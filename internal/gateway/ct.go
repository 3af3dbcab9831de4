package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/detect/ct"
	"github.com/wardengw/warden/internal/pki"
)

// ctFailureEvery is the least time between two ct_poll_failed events of
// one log: an unreachable log must not flood the audit trail.
const ctFailureEvery = time.Hour

// ctWatch runs the certificate-transparency monitor of the config's ct
// block in the background: started with the gateway, restarted by a reload
// that changes what it monitors, stopped at Shutdown. It runs on its own
// goroutine and shares no lock with request serving.
type ctWatch struct {
	g     *Gateway
	ticks <-chan time.Time // drives polls instead of a ticker (tests); nil: every poll_interval

	rogue *prometheus.CounterVec // rogue certificates found, by log

	mu      sync.Mutex // guards the fields below; held by start, apply and stop only
	running *ctRun
	next    *ctPlan // the plan in force (nil: monitoring off)
	started bool    // Start was called: apply starts monitors

	failMu   sync.Mutex
	lastFail map[string]time.Time // by log name: when ct_poll_failed was last emitted
	held     map[string]int       // by log name: failures not emitted since
}

// ctPlan is a ct block turned into the monitor's config, with a fingerprint
// of everything it depends on (files included).
type ctPlan struct {
	cfg         ct.Config
	fingerprint string
}

// ctRun is one running monitor.
type ctRun struct {
	mon    *ct.Monitor
	cancel context.CancelFunc
	done   chan struct{}
	plan   *ctPlan
}

// newCTWatch prepares the monitor of c (validating what the config
// validation cannot, such as the state file) and registers its metrics.
// Nothing runs until start.
func (g *Gateway) newCTWatch(c *config.Config, ticks <-chan time.Time) (*ctWatch, error) {
	w := &ctWatch{g: g, ticks: ticks, lastFail: map[string]time.Time{}, held: map[string]int{},
		rogue: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_ct_rogue_certificates_total",
			Help: "Certificates for a watched domain with a key not in the known set, found in certificate-transparency logs, by log.",
		}, []string{"log"})}
	plan, err := w.prepare(c)
	if err != nil {
		return nil, err
	}
	w.next = plan
	if err := g.metrics.Registry.Register(w.rogue); err != nil {
		return nil, fmt.Errorf("ct metrics: %w", err)
	}
	if err := g.metrics.Registry.Register(ctCollector{w}); err != nil {
		return nil, fmt.Errorf("ct metrics: %w", err)
	}
	return w, nil
}

// prepare turns c's ct block into a plan, reading the files it names; nil
// when monitoring is off. It checks the result by building a monitor
// (which loads the state file) but starts nothing.
func (w *ctWatch) prepare(c *config.Config) (*ctPlan, error) {
	b := c.CT
	if b == nil {
		return nil, nil
	}
	cfg := ct.Config{Domains: b.Domains, PollInterval: b.PollInterval, BatchSize: b.BatchSize,
		StateFile: c.PathOf(b.StateFile), Backfill: b.Backfill, Now: w.g.env0Now}
	fp := struct {
		Block         config.CT
		Keys, CAs     [][]byte
		Known         []string
		ResolvedState string
	}{Block: *b, ResolvedState: cfg.StateFile}
	for i, l := range b.Logs {
		key, err := os.ReadFile(c.PathOf(l.KeyFile))
		if err != nil {
			return nil, fmt.Errorf("ct.logs[%d].key_file: %w", i, err)
		}
		cfg.Logs = append(cfg.Logs, ct.Log{URL: l.URL, PublicKey: key, Name: l.Name})
		fp.Keys = append(fp.Keys, key)
	}
	var roots *x509.CertPool
	if b.CAFile != "" {
		pem, err := os.ReadFile(c.PathOf(b.CAFile))
		if err != nil {
			return nil, fmt.Errorf("ct.ca_file: %w", err)
		}
		if roots, err = config.LoadCertPool(c.PathOf(b.CAFile)); err != nil {
			return nil, fmt.Errorf("ct.ca_file: %w", err)
		}
		fp.CAs = append(fp.CAs, pem)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	cfg.HTTPClient = &http.Client{Transport: tr, Timeout: ct.DefaultHTTPTimeout}

	known, err := ctKnownKeys(c)
	if err != nil {
		return nil, err
	}
	cfg.KnownKeys = known
	cfg.IsKnown = w.g.servedKey
	for _, k := range known {
		fp.Known = append(fp.Known, k.String())
	}
	cfg.Audit = audit.New(ctSink{w})
	if _, err := ct.New(cfg); err != nil { // validates, and reads the state file
		return nil, err
	}
	raw, err := json.Marshal(fp)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	return &ctPlan{cfg: cfg, fingerprint: hex.EncodeToString(sum[:])}, nil
}

// servedKey reports whether the gateway serves a certificate with this key
// now, on its HTTPS listener: its internal_ca and acme certificates, whose
// keys change at every renewal.
func (g *Gateway) servedKey(p pki.Pin) bool {
	for _, leaf := range g.tls.Leaves() {
		if pki.SPKIPin(leaf) == p {
			return true
		}
	}
	return false
}

// ctKnownKeys are the keys that are the operator's: those of the gateway's
// own certificates (so that rotating them raises nothing), of
// known_cert_files, and known_pins.
func ctKnownKeys(c *config.Config) ([]pki.Pin, error) {
	var out []pki.Pin
	for _, cert := range c.TLS.Certificates {
		if cert.CertFile == "" { // internal_ca and acme keys change at renewal: servedKey
			continue
		}
		// A cert_file may hold its key too, as tls.LoadX509KeyPair allows.
		certs, err := pki.ReadChain(c.PathOf(cert.CertFile))
		if err != nil {
			return nil, fmt.Errorf("ct known keys: %w", err)
		}
		out = append(out, pki.SPKIPin(certs[0]))
	}
	for _, f := range c.CT.KnownCertFiles {
		certs, err := pki.ReadChain(c.PathOf(f)) // a cert_file, which may hold its key
		if err != nil {
			return nil, fmt.Errorf("ct known keys: %w", err)
		}
		out = append(out, pki.SPKIPin(certs[0]))
	}
	for _, s := range c.CT.KnownPins {
		p, err := pki.ParsePin(s)
		if err != nil {
			return nil, fmt.Errorf("ct.known_pins: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// start runs the plan in force; called by Gateway.Start.
func (w *ctWatch) start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.started = true
	w.launch(w.next)
}

// apply makes plan the one in force (after a reload): a monitor whose
// plan is unchanged keeps running; otherwise the old one is stopped (and
// waited for, so that two never write the state file) and the new one
// started.
func (w *ctWatch) apply(plan *ctPlan) {
	w.mu.Lock()
	defer w.mu.Unlock()
	same := plan != nil && w.next != nil && plan.fingerprint == w.next.fingerprint
	if same || plan == nil && w.next == nil {
		return
	}
	w.next = plan
	if !w.started {
		return
	}
	w.stopLocked()
	w.launch(plan)
}

// launch starts a monitor for plan; w.mu is held.
func (w *ctWatch) launch(plan *ctPlan) {
	if plan == nil {
		return
	}
	// A fresh monitor reads the state file the stopped one left.
	mon, err := ct.New(plan.cfg)
	if err != nil {
		w.g.log.Error("certificate-transparency monitoring not started", "err", err)
		w.g.audit.Emit(audit.Event{Type: "ct_monitor_failed", Severity: audit.Critical, Reason: "ct_monitor_failed", Detail: err.Error()})
		return
	}
	ctx, cancel := context.WithCancel(w.g.ctx)
	run := &ctRun{mon: mon, cancel: cancel, done: make(chan struct{}), plan: plan}
	w.running = run
	ticks := w.ticks
	w.g.wg.Add(1)
	go func() {
		defer w.g.wg.Done()
		defer close(run.done)
		if ticks == nil {
			t := time.NewTicker(mon.Interval())
			defer t.Stop()
			ticks = t.C
		}
		mon.RunTicks(ctx, ticks)
	}()
	w.g.log.Info("certificate-transparency monitoring started", "logs", len(plan.cfg.Logs), "domains", len(plan.cfg.Domains),
		"known_keys", len(plan.cfg.KnownKeys), "interval", mon.Interval())
}

// stopLocked stops the running monitor and waits for it; w.mu is held.
func (w *ctWatch) stopLocked() {
	if w.running == nil {
		return
	}
	w.running.cancel()
	<-w.running.done
	w.running = nil
}

// current returns the running monitor, or nil.
func (w *ctWatch) current() *ct.Monitor {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running == nil {
		return nil
	}
	return w.running.mon
}

// ctSink forwards the monitor's events to the gateway's audit log,
// counting rogue certificates and rate-limiting poll failures per log.
type ctSink struct{ w *ctWatch }

// Write implements audit.Sink.
func (s ctSink) Write(e audit.Event) {
	log, _ := e.Fields["log"].(string)
	switch e.Type {
	case ct.EventUnknownKey:
		s.w.rogue.WithLabelValues(log).Inc()
	case ct.EventPollFailed:
		if !s.w.failureDue(log, e) {
			return
		}
	}
	s.w.g.audit.Emit(e)
}

// failureDue reports whether a poll failure of log is emitted now: the
// first one, then at most one per ctFailureEvery, carrying the number held
// back in between.
func (w *ctWatch) failureDue(log string, e audit.Event) bool {
	w.failMu.Lock()
	defer w.failMu.Unlock()
	if last, ok := w.lastFail[log]; ok && e.Time.Sub(last) < ctFailureEvery {
		w.held[log]++
		return false
	}
	w.lastFail[log] = e.Time
	if n := w.held[log]; n > 0 {
		e.Fields["suppressed"] = n
	}
	w.held[log] = 0
	return true
}

// ctCollector exposes the running monitor's per-log status. It reads a
// snapshot that polls do not hold: a scrape never waits for a log.
type ctCollector struct{ w *ctWatch }

var (
	ctTreeSizeDesc = prometheus.NewDesc("warden_ct_tree_size",
		"Size of the last verified signed tree head of each certificate-transparency log.", []string{"log"}, nil)
	ctSinceDesc = prometheus.NewDesc("warden_ct_seconds_since_success",
		"Seconds since each certificate-transparency log was last polled and verified without error (since monitoring started, if never).", []string{"log"}, nil)
)

// Describe implements prometheus.Collector.
func (c ctCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- ctTreeSizeDesc
	ch <- ctSinceDesc
}

// Collect implements prometheus.Collector.
func (c ctCollector) Collect(ch chan<- prometheus.Metric) {
	mon := c.w.current()
	if mon == nil {
		return
	}
	now := time.Now
	if c.w.g.env0Now != nil {
		now = c.w.g.env0Now
	}
	t := now()
	for _, s := range mon.Status() {
		last := s.LastSuccess
		if last.IsZero() {
			last = mon.Started()
		}
		ch <- prometheus.MustNewConstMetric(ctTreeSizeDesc, prometheus.GaugeValue, float64(s.TreeSize), s.Name)
		ch <- prometheus.MustNewConstMetric(ctSinceDesc, prometheus.GaugeValue, max(0, t.Sub(last).Seconds()), s.Name)
	}
}
