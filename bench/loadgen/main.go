// Command loadgen is Warden's HTTPS load generator for bench/run.sh.
//
// Modes:
//
//   - keepalive: -c workers, each with its own keep-alive TLS connection,
//     send sequential GETs (closed loop) as fast as the server answers. With
//     -rate, requests are instead scheduled at a fixed rate (open loop) and
//     spread over the -c connections; latency is measured from the moment
//     a request is released by the schedule, so a stalled server is charged
//     for the requests that queue up behind it (no coordinated omission).
//   - handshake: every request opens a new TCP+TLS connection with a full
//     handshake (no session cache, no tickets: resumption is impossible and
//     a resumed connection is counted as an error), sends one GET with
//     "Connection: close" and reads the answer.
//
// With -cert/-key the client presents that certificate when the server asks
// for one (mTLS), in both modes; in handshake mode every connection then
// also signs a CertificateVerify with the client key.
//
// Every run is bounded twice: at most -n measured requests AND at most -d of
// measuring (after -warmup). Each request also has a -timeout. Errors
// (dial, TLS, I/O, timeout, non-200 status, malformed response) are counted
// and reported, never ignored.
//
// HTTP/1.1 is spoken by a small built-in client (one bufio reader per
// connection, the request bytes built once) so that the load generator costs
// far less CPU than net/http's client; -h2 uses net/http with HTTP/2 instead
// (one multiplexed connection per worker).
//
// Output: one human line on stderr and one JSON line on stdout (also
// appended to -out when given):
//
//	{"name":..,"mode":..,"requests":..,"errors":..,"rps":..,"p50_us":..,"p99_us":..,"p999_us":.., ...}
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxRequests caps -n so latency samples (8 bytes each) stay bounded.
const maxRequests = 20_000_000

type options struct {
	name       string
	url        *url.URL
	conc       int
	n          int64
	dur        time.Duration
	warmup     time.Duration
	mode       string
	rate       float64
	h2         bool
	timeout    time.Duration
	tlsConf    *tls.Config
	addr       string
	reqBytes   []byte
	out        string
	watchPID   int
	watchCore  int
	maxForeign float64
	round      int
	mtls       bool
}

// Result is the JSON line.
type Result struct {
	Name        string         `json:"name"`
	Mode        string         `json:"mode"`
	Requests    int64          `json:"requests"`
	Errors      int64          `json:"errors"`
	RPS         float64        `json:"rps"`
	P50us       float64        `json:"p50_us"`
	P99us       float64        `json:"p99_us"`
	P999us      float64        `json:"p999_us"`
	MeanUs      float64        `json:"mean_us"`
	MaxUs       float64        `json:"max_us"`
	Concurrency int            `json:"concurrency"`
	Rate        float64        `json:"rate,omitempty"`
	Unsent      int64          `json:"unsent,omitempty"`
	Seconds     float64        `json:"seconds"`
	Proto       string         `json:"proto"`
	TLSVersion  string         `json:"tls_version,omitempty"`
	KeyExchange string         `json:"key_exchange,omitempty"`
	ClientCert  bool           `json:"client_cert,omitempty"`
	Round       int            `json:"round,omitempty"`
	ErrorKinds  map[string]int `json:"error_kinds,omitempty"`
	// CPU accounting over the measured window (Linux /proc): the watched
	// process's CPU use in % of one core, and each core's busy %.
	WatchPID     int       `json:"watch_pid,omitempty"`
	TargetCPUPct float64   `json:"target_cpu_pct,omitempty"`
	CoreBusyPct  []float64 `json:"core_busy_pct,omitempty"`
	LoadAvg      string    `json:"loadavg,omitempty"`
	// ForeignPct is the watched core's busy % not used by the watched
	// process: other processes (and interrupt work) competing with the
	// target. Disturbed is set when it exceeds -max-foreign.
	ForeignPct float64 `json:"foreign_cpu_pct,omitempty"`
	Disturbed  bool    `json:"disturbed,omitempty"`
	URL        string  `json:"url"`
	Time       string  `json:"time"`
	// -interleave only: the slice length, and per measured slice (in
	// cycle order) its req/s, the watched process's CPU µs per request,
	// its CPU % and the slice's p99 latency; CPUUsPerReq over all slices.
	SliceS      float64   `json:"slice_s,omitempty"`
	SliceRPS    []float64 `json:"slice_rps,omitempty"`
	SliceCPUUs  []float64 `json:"slice_cpu_us_per_req,omitempty"`
	SliceCPUPct []float64 `json:"slice_cpu_pct,omitempty"`
	SliceP99us  []float64 `json:"slice_p99_us,omitempty"`
	CPUUsPerReq float64   `json:"cpu_us_per_req,omitempty"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
}

func run() error {
	var o options
	var rawURL, cacert, curves, leafPin, clientCert, clientKey string
	flag.StringVar(&o.name, "name", "", "label for the result (default: the URL host)")
	flag.StringVar(&rawURL, "url", "", "target https:// URL")
	flag.IntVar(&o.conc, "c", 32, "concurrency: connections (keepalive) or parallel handshakers")
	flag.Int64Var(&o.n, "n", 1_000_000, "at most this many measured requests")
	flag.DurationVar(&o.dur, "d", 10*time.Second, "at most this long measuring (after -warmup)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before measuring")
	flag.StringVar(&o.mode, "mode", "keepalive", "keepalive or handshake")
	flag.StringVar(&cacert, "cacert", "", "PEM CA bundle the server must chain to (default: system roots)")
	flag.BoolVar(&o.h2, "h2", false, "HTTP/2 (net/http client) instead of the built-in HTTP/1.1 client; keepalive mode only")
	flag.Float64Var(&o.rate, "rate", 0, "open loop: requests per second in total (0 = closed loop, as fast as possible)")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Second, "per-request timeout (dial + handshake + request)")
	flag.StringVar(&curves, "curves", "", "client key-exchange groups, comma-separated: x25519, p256, p384, x25519mlkem768 (default: Go's)")
	flag.StringVar(&o.out, "out", "", "also append the JSON line to this file")
	flag.IntVar(&o.watchCore, "watch-core", -1, "the core the -watch-pid process is pinned to: report how busy other work kept it")
	flag.Float64Var(&o.maxForeign, "max-foreign", 0, "with -watch-core: mark the run disturbed and exit 3 when other work used more than this % of the core (0 = off)")
	flag.IntVar(&o.watchPID, "watch-pid", 0, "report this process's CPU use (and every core's) over the measured window, from /proc")
	flag.StringVar(&leafPin, "pin-leaf", "", "PEM certificate the server must present as its leaf, compared byte for byte, instead of chain verification (-cacert); cheaper for the client in handshake mode")
	flag.StringVar(&clientCert, "cert", "", "PEM client certificate (chain) to present when the server asks for one (mTLS); with -key")
	flag.StringVar(&clientKey, "key", "", "PEM private key of -cert")
	flag.IntVar(&o.round, "round", 0, "round number recorded in the JSON line (for pairing runs across targets)")
	var interleaveSpec string
	var slice time.Duration
	var cycles int
	flag.StringVar(&interleaveSpec, "interleave", "", "name=url[@pid],...: keep-alive load (closed loop, or at -rate) on every target in turn, one -slice each per cycle, -cycles cycles after a warm-up cycle of -warmup slices; one JSON line per target (mode \"interleave\") with each slice's req/s and, with @pid, the process's CPU µs per request (-url, -d, -n unused)")
	flag.DurationVar(&slice, "slice", time.Second, "with -interleave: one target's turn")
	flag.IntVar(&cycles, "cycles", 20, "with -interleave: measured cycles")
	flag.Parse()

	if interleaveSpec != "" {
		rawURL = "https://interleaved.invalid/" // each target has its own
	}
	if rawURL == "" {
		return errors.New("-url is required")
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("-url must be an https:// URL, got %q", rawURL)
	}
	o.url = u
	if o.conc < 1 || o.conc > 10000 {
		return errors.New("-c must be in 1..10000")
	}
	if o.n < 1 || o.n > maxRequests {
		return fmt.Errorf("-n must be in 1..%d", maxRequests)
	}
	if o.dur <= 0 || o.dur > time.Hour {
		return errors.New("-d must be in (0, 1h]")
	}
	if o.warmup < 0 || o.warmup > 10*time.Minute {
		return errors.New("-warmup must be in [0, 10m]")
	}
	if o.mode != "keepalive" && o.mode != "handshake" {
		return fmt.Errorf("-mode must be keepalive or handshake, got %q", o.mode)
	}
	if o.rate < 0 || o.rate > 1e7 {
		return errors.New("-rate must be in [0, 1e7]")
	}
	if o.h2 && o.mode != "keepalive" {
		return errors.New("-h2 is for keepalive mode only")
	}
	if o.timeout <= 0 {
		return errors.New("-timeout must be positive")
	}
	if o.name == "" {
		o.name = u.Host
	}

	o.tlsConf = &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Full handshakes in handshake mode; harmless for keepalive.
		ClientSessionCache:     nil,
		SessionTicketsDisabled: true,
		NextProtos:             []string{"http/1.1"},
	}
	if o.h2 {
		o.tlsConf.NextProtos = []string{"h2"}
	}
	if cacert != "" {
		pemBytes, err := os.ReadFile(cacert)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return fmt.Errorf("%s: no PEM certificates", cacert)
		}
		o.tlsConf.RootCAs = pool
	}
	if leafPin != "" {
		if cacert != "" {
			return errors.New("-pin-leaf and -cacert are exclusive")
		}
		pemBytes, err := os.ReadFile(leafPin)
		if err != nil {
			return err
		}
		blk, _ := pem.Decode(pemBytes)
		if blk == nil || blk.Type != "CERTIFICATE" {
			return fmt.Errorf("%s: no PEM certificate", leafPin)
		}
		want := blk.Bytes
		// Chain verification is replaced, not dropped: the connection is
		// refused unless the server presents exactly this certificate (and,
		// as always, proves possession of its key in CertificateVerify).
		o.tlsConf.InsecureSkipVerify = true
		o.tlsConf.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, want) {
				return errors.New("server leaf certificate does not match -pin-leaf")
			}
			return nil
		}
	}
	if (clientCert == "") != (clientKey == "") {
		return errors.New("-cert and -key go together")
	}
	if clientCert != "" {
		pair, err := tls.LoadX509KeyPair(clientCert, clientKey)
		if err != nil {
			return fmt.Errorf("client certificate: %w", err)
		}
		o.tlsConf.Certificates = []tls.Certificate{pair}
		o.mtls = true
	}
	if curves != "" {
		ids, err := parseCurves(curves)
		if err != nil {
			return err
		}
		o.tlsConf.CurvePreferences = ids
	}
	if interleaveSpec != "" {
		if o.mode != "keepalive" || o.h2 {
			return errors.New("-interleave is for the HTTP/1.1 keepalive mode only")
		}
		if slice <= 0 || slice > time.Minute || cycles < 1 || cycles > 1000 || time.Duration(cycles)*slice > time.Hour {
			return errors.New("-slice must be in (0, 1m], -cycles in 1..1000, and the two at most an hour per target")
		}
		ts, err := parseInterleave(interleaveSpec, &o)
		if err != nil {
			return err
		}
		// Every target's result is written before a failure is reported:
		// one dead target must not lose the others' run.
		var dead []string
		for _, res := range interleave(&o, ts, slice, cycles) {
			if err := emit(res, o.out); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "%-11s interleaved c=%-3d %d×%v: %8d ok %6d errors %10.0f req/s  p50 %7.0fus  p99 %7.0fus  (target cpu %.0f%%, %.1f µs/request)\n",
				res.Name, res.Concurrency, cycles, slice, res.Requests, res.Errors, res.RPS, res.P50us, res.P99us, res.TargetCPUPct, res.CPUUsPerReq)
			if res.Requests == 0 {
				dead = append(dead, res.Name)
			}
		}
		if len(dead) > 0 {
			return fmt.Errorf("no request succeeded for %s", strings.Join(dead, ", "))
		}
		return nil
	}
	o.setTarget(u)

	res := execute(&o)
	if err := emit(res, o.out); err != nil {
		return err
	}
	loop := "closed loop"
	if o.rate > 0 {
		loop = fmt.Sprintf("open loop %.0f/s", o.rate)
	}
	fmt.Fprintf(os.Stderr, "%-10s %-9s c=%-3d %s: %8d ok %6d errors %10.0f req/s  p50 %7.0fus  p99 %7.0fus  p99.9 %7.0fus  (%s %s %s, %.1fs; target cpu %.0f%%, cores busy %v, foreign %.0f%%)\n",
		res.Name, res.Mode, res.Concurrency, loop, res.Requests, res.Errors, res.RPS, res.P50us, res.P99us, res.P999us,
		res.Proto, res.TLSVersion, res.KeyExchange, res.Seconds, res.TargetCPUPct, res.CoreBusyPct, res.ForeignPct)
	for k, v := range res.ErrorKinds {
		fmt.Fprintf(os.Stderr, "    error x%d: %s\n", v, k)
	}
	if res.Requests == 0 {
		return errors.New("no request succeeded")
	}
	if res.Disturbed {
		fmt.Fprintf(os.Stderr, "loadgen: disturbed run: other work used %.0f%% of core %d\n", res.ForeignPct, o.watchCore)
		os.Exit(3)
	}
	return nil
}

// setTarget points o at u: the address to dial, the name to verify and
// the request to send. o.tlsConf is cloned first.
func (o *options) setTarget(u *url.URL) {
	o.url = u
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "443"
	}
	o.addr = net.JoinHostPort(host, port)
	o.tlsConf = o.tlsConf.Clone()
	o.tlsConf.ServerName = host
	var b strings.Builder
	b.WriteString("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUser-Agent: warden-bench-loadgen\r\nAccept: */*\r\n")
	if o.mode == "handshake" {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	o.reqBytes = []byte(b.String())
}

// emit prints res as a JSON line, and appends it to the file out if set.
func emit(res Result, out string) error {
	line, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Println(string(line))
	if out == "" {
		return nil
	}
	f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_, werr := f.Write(append(line, '\n'))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	return werr
}

func parseCurves(s string) ([]tls.CurveID, error) {
	var ids []tls.CurveID
	for _, name := range strings.Split(s, ",") {
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "x25519":
			ids = append(ids, tls.X25519)
		case "p256", "p-256", "secp256r1":
			ids = append(ids, tls.CurveP256)
		case "p384", "p-384", "secp384r1":
			ids = append(ids, tls.CurveP384)
		case "x25519mlkem768":
			ids = append(ids, tls.X25519MLKEM768)
		default:
			return nil, fmt.Errorf("unknown curve %q", name)
		}
	}
	return ids, nil
}

// shared is the state all workers update.
type shared struct {
	o         *options
	measureAt time.Time // start of the measured window
	deadline  time.Time // end of the measured window
	issued    atomic.Int64
	unsent    atomic.Int64

	mu       sync.Mutex
	errKinds map[string]int
	nErrors  int64
	lat      [][]time.Duration
	connInfo atomic.Pointer[tls.ConnectionState]
}

func (s *shared) fail(err error) {
	k := errKind(err)
	s.mu.Lock()
	s.nErrors++
	if len(s.errKinds) < 20 || s.errKinds[k] > 0 {
		s.errKinds[k]++
	} else {
		s.errKinds["(other)"]++
	}
	s.mu.Unlock()
}

func errKind(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	msg := err.Error()
	if len(msg) > 160 {
		msg = msg[:160]
	}
	return msg
}

func (s *shared) noteConn(cs tls.ConnectionState) {
	if s.connInfo.Load() == nil {
		s.connInfo.Store(&cs)
	}
}

// take reserves one measured request slot; false once -n is reached.
// Requests started before measureAt are warm-up and not counted.
func (s *shared) take(start time.Time) (measured, ok bool) {
	if start.Before(s.measureAt) {
		return false, true
	}
	if !start.Before(s.deadline) {
		return false, false
	}
	if s.issued.Add(1) > s.o.n {
		return false, false
	}
	return true, true
}

func execute(o *options) Result {
	start := time.Now()
	s := &shared{
		o:         o,
		measureAt: start.Add(o.warmup),
		errKinds:  map[string]int{},
		lat:       make([][]time.Duration, o.conc),
	}
	s.deadline = s.measureAt.Add(o.dur)
	// Hard stop for everything, including requests queued in open loop.
	ctx, cancel := context.WithDeadline(context.Background(), s.deadline.Add(o.timeout))
	defer cancel()

	var jobs chan time.Time
	if o.rate > 0 {
		total := int64(math.Ceil(o.rate*(o.warmup+o.dur).Seconds())) + 1
		if total > o.n+int64(math.Ceil(o.rate*o.warmup.Seconds()))+1 {
			total = o.n + int64(math.Ceil(o.rate*o.warmup.Seconds())) + 1
		}
		jobs = make(chan time.Time, total)
		go dispatch(ctx, s, jobs, start, total)
	}

	var before, after cpuSnap
	var endOnce sync.Once
	snapEnd := func() { endOnce.Do(func() { after = takeSnap(o.watchPID) }) }
	startTimer := time.AfterFunc(time.Until(s.measureAt), func() {
		before = takeSnap(o.watchPID)
		time.AfterFunc(time.Until(s.deadline), snapEnd)
	})
	if o.warmup == 0 {
		startTimer.Stop()
		before = takeSnap(o.watchPID)
		time.AfterFunc(time.Until(s.deadline), snapEnd)
	}

	var wg sync.WaitGroup
	for i := range o.conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var w worker
			w.s = s
			w.id = i
			switch {
			case o.mode == "handshake":
				w.handshakeLoop(ctx)
			case o.h2:
				w.h2Loop(ctx, jobs)
			default:
				w.keepaliveLoop(ctx, jobs)
			}
			w.close()
			s.lat[i] = w.lat
		}()
	}
	wg.Wait()
	snapEnd()
	end := time.Now()
	if end.After(s.deadline) {
		end = s.deadline
	}
	if jobs != nil {
		// Scheduled inside the window but never sent: the server was too slow.
		for t := range drain(jobs) {
			if !t.Before(s.measureAt) {
				s.unsent.Add(1)
			}
		}
	}

	all := slices.Concat(s.lat...)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	elapsed := end.Sub(s.measureAt).Seconds()
	if elapsed <= 0 {
		elapsed = math.SmallestNonzeroFloat64
	}
	res := Result{
		Name:        o.name,
		Mode:        o.mode,
		Requests:    int64(len(all)),
		Errors:      s.nErrors + s.unsent.Load(),
		Unsent:      s.unsent.Load(),
		RPS:         round1(float64(len(all)) / elapsed),
		Concurrency: o.conc,
		Rate:        o.rate,
		Seconds:     round1(elapsed),
		Proto:       "http/1.1",
		ClientCert:  o.mtls,
		Round:       o.round,
		URL:         o.url.String(),
		Time:        time.Now().UTC().Format(time.RFC3339),
	}
	if s.unsent.Load() > 0 {
		s.errKinds["unsent: scheduled but not sent before the deadline"] += int(s.unsent.Load())
	}
	if len(s.errKinds) > 0 {
		res.ErrorKinds = s.errKinds
	}
	if o.h2 {
		res.Proto = "h2"
	}
	if cs := s.connInfo.Load(); cs != nil {
		res.TLSVersion = tls.VersionName(cs.Version)
		res.KeyExchange = cs.CurveID.String()
		if cs.NegotiatedProtocol != "" {
			res.Proto = cs.NegotiatedProtocol
		}
	}
	if o.watchPID != 0 {
		res.WatchPID = o.watchPID
	}
	before.fill(&res, after)
	if o.watchCore >= 0 && o.watchCore < len(res.CoreBusyPct) && o.watchPID != 0 {
		res.ForeignPct = round1(max(0, res.CoreBusyPct[o.watchCore]-res.TargetCPUPct))
		res.Disturbed = o.maxForeign > 0 && res.ForeignPct > o.maxForeign
	}
	res.setLatency(all)
	return res
}

// setLatency fills res's latency fields from sorted, the measured
// latencies in ascending order (none: left zero).
func (res *Result) setLatency(sorted []time.Duration) {
	if len(sorted) == 0 {
		return
	}
	var sum time.Duration
	for _, d := range sorted {
		sum += d
	}
	res.MeanUs = us(sum / time.Duration(len(sorted)))
	res.P50us = us(quantile(sorted, 0.50))
	res.P99us = us(quantile(sorted, 0.99))
	res.P999us = us(quantile(sorted, 0.999))
	res.MaxUs = us(sorted[len(sorted)-1])
}

func drain(ch chan time.Time) chan time.Time {
	out := make(chan time.Time, len(ch))
	for {
		select {
		case t, ok := <-ch:
			if !ok {
				close(out)
				return out
			}
			out <- t
		default:
			close(out)
			return out
		}
	}
}

// dispatch releases request i at start+i/rate (catching up at once after a
// late wake-up). The channel is sized for every request, so a slow server
// never slows the schedule down (open loop).
func dispatch(ctx context.Context, s *shared, jobs chan<- time.Time, start time.Time, total int64) {
	defer close(jobs)
	interval := float64(time.Second) / s.o.rate
	for i := range total {
		at := start.Add(time.Duration(float64(i) * interval))
		if !at.Before(s.deadline) {
			return
		}
		if d := time.Until(at); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		// The latency clock starts when the request is released, not at its
		// nominal slot: Go's timers may wake up to ~1ms late when the process
		// is idle, and that lateness belongs to the load generator. Time
		// spent queued behind busy connections still counts.
		jobs <- time.Now()
	}
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func us(d time.Duration) float64 { return round1(float64(d) / float64(time.Microsecond)) }

func round1(f float64) float64 { return math.Round(f*10) / 10 }

type worker struct {
	s    *shared
	id   int
	conn *tls.Conn
	br   *bufio.Reader
	lat  []time.Duration
	h2c  *http.Client
}

func (w *worker) close() {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
	if w.h2c != nil {
		w.h2c.CloseIdleConnections()
	}
}

func (w *worker) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: w.s.o.timeout}
	dctx, cancel := context.WithTimeout(ctx, w.s.o.timeout)
	defer cancel()
	raw, err := d.DialContext(dctx, "tcp", w.s.o.addr)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	c := tls.Client(raw, w.s.o.tlsConf)
	if err := c.HandshakeContext(dctx); err != nil {
		raw.Close()
		return fmt.Errorf("tls handshake: %w", err)
	}
	cs := c.ConnectionState()
	if cs.DidResume {
		c.Close()
		return errors.New("tls session was resumed (expected a full handshake)")
	}
	w.s.noteConn(cs)
	w.conn = c
	if w.br == nil {
		w.br = bufio.NewReaderSize(c, 16<<10)
	} else {
		w.br.Reset(c)
	}
	return nil
}

// roundTrip sends the request on the current connection and reads one
// response. keep reports whether the connection may be reused.
func (w *worker) roundTrip() (keep bool, err error) {
	c := w.conn
	if err := c.SetDeadline(time.Now().Add(w.s.o.timeout)); err != nil {
		return false, err
	}
	if _, err := c.Write(w.s.o.reqBytes); err != nil {
		return false, fmt.Errorf("write: %w", err)
	}
	return readResponse(w.br)
}

// record stores a measured latency or counts an error. On error, the
// connection is dropped and, to avoid spinning on a dead server, the worker
// pauses briefly.
func (w *worker) record(measured bool, start time.Time, err error) {
	if err != nil {
		if measured || !start.Before(w.s.measureAt) {
			w.s.fail(err)
		}
		if w.conn != nil {
			w.conn.Close()
			w.conn = nil
		}
		time.Sleep(10 * time.Millisecond)
		return
	}
	if measured {
		w.lat = append(w.lat, time.Since(start))
	}
}

func (w *worker) keepaliveLoop(ctx context.Context, jobs <-chan time.Time) {
	for {
		var start time.Time
		if jobs != nil {
			var ok bool
			select {
			case <-ctx.Done():
				return
			case start, ok = <-jobs:
				if !ok {
					return
				}
			}
		} else {
			start = time.Now()
		}
		if ctx.Err() != nil {
			return
		}
		measured, ok := w.s.take(start)
		if !ok {
			if jobs != nil {
				continue // keep draining: later jobs are past the window too
			}
			return
		}
		w.record(measured, start, w.keepaliveOnce(ctx))
	}
}

func (w *worker) keepaliveOnce(ctx context.Context) error {
	if w.conn == nil {
		if err := w.dial(ctx); err != nil {
			return err
		}
	}
	keep, err := w.roundTrip()
	if err == nil && !keep {
		w.conn.Close()
		w.conn = nil
	}
	return err
}

func (w *worker) handshakeLoop(ctx context.Context) {
	for ctx.Err() == nil {
		start := time.Now()
		measured, ok := w.s.take(start)
		if !ok {
			return
		}
		err := w.dial(ctx)
		if err == nil {
			_, err = w.roundTrip()
			w.conn.Close()
			w.conn = nil
		}
		w.record(measured, start, err)
	}
}

func (w *worker) h2Loop(ctx context.Context, jobs <-chan time.Time) {
	tr := &http.Transport{
		TLSClientConfig:     w.s.o.tlsConf.Clone(),
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 1,
		DisableCompression:  true,
	}
	w.h2c = &http.Client{Transport: tr, Timeout: w.s.o.timeout}
	target := w.s.o.url.String()
	for {
		var start time.Time
		if jobs != nil {
			var ok bool
			select {
			case <-ctx.Done():
				return
			case start, ok = <-jobs:
				if !ok {
					return
				}
			}
		} else {
			start = time.Now()
		}
		if ctx.Err() != nil {
			return
		}
		measured, ok := w.s.take(start)
		if !ok {
			if jobs != nil {
				continue
			}
			return
		}
		err := func() error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
			if err != nil {
				return err
			}
			resp, err := w.h2c.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.TLS != nil {
				w.s.noteConn(*resp.TLS)
			}
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			if resp.ProtoMajor != 2 {
				return fmt.Errorf("got %s, want HTTP/2", resp.Proto)
			}
			return nil
		}()
		w.record(measured, start, err)
	}
}

var errMalformed = errors.New("malformed response")

// readResponse reads one HTTP/1.1 response (Content-Length or chunked) and
// discards its body. A non-200 status is an error, after the body is read.
func readResponse(br *bufio.Reader) (keep bool, err error) {
	line, err := readLine(br)
	if err != nil {
		return false, fmt.Errorf("read status: %w", err)
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return false, fmt.Errorf("%w: status line %q", errMalformed, trunc(line))
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return false, fmt.Errorf("%w: status line %q", errMalformed, trunc(line))
	}
	keep = line[7] == '1'
	contentLength := int64(-1)
	chunked := false
	for {
		h, err := readLine(br)
		if err != nil {
			return false, fmt.Errorf("read header: %w", err)
		}
		if len(h) == 0 {
			break
		}
		colon := bytes.IndexByte(h, ':')
		if colon <= 0 {
			return false, fmt.Errorf("%w: header %q", errMalformed, trunc(h))
		}
		name, val := h[:colon], bytes.TrimSpace(h[colon+1:])
		switch {
		case asciiEqualFold(name, "content-length"):
			contentLength, err = strconv.ParseInt(string(val), 10, 64)
			if err != nil || contentLength < 0 {
				return false, fmt.Errorf("%w: content-length %q", errMalformed, trunc(val))
			}
		case asciiEqualFold(name, "transfer-encoding"):
			chunked = asciiEqualFold(val, "chunked")
			if !chunked {
				return false, fmt.Errorf("%w: transfer-encoding %q", errMalformed, trunc(val))
			}
		case asciiEqualFold(name, "connection"):
			if asciiEqualFold(val, "close") {
				keep = false
			}
		}
	}
	switch {
	case chunked:
		if err := discardChunked(br); err != nil {
			return false, err
		}
	case contentLength >= 0:
		if _, err := br.Discard(int(contentLength)); err != nil {
			return false, fmt.Errorf("read body: %w", err)
		}
	case status == 204 || status == 304 || status/100 == 1:
	default:
		// Body delimited by connection close.
		if _, err := io.Copy(io.Discard, br); err != nil {
			return false, fmt.Errorf("read body: %w", err)
		}
		keep = false
	}
	if status != 200 {
		return keep, fmt.Errorf("status %d", status)
	}
	return keep, nil
}

func discardChunked(br *bufio.Reader) error {
	for {
		line, err := readLine(br)
		if err != nil {
			return fmt.Errorf("read chunk size: %w", err)
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || size < 0 {
			return fmt.Errorf("%w: chunk size %q", errMalformed, trunc(line))
		}
		if size == 0 {
			for { // trailers
				t, err := readLine(br)
				if err != nil {
					return fmt.Errorf("read trailer: %w", err)
				}
				if len(t) == 0 {
					return nil
				}
			}
		}
		if _, err := br.Discard(int(size)); err != nil {
			return fmt.Errorf("read chunk: %w", err)
		}
		if crlf, err := readLine(br); err != nil || len(crlf) != 0 {
			return fmt.Errorf("%w: chunk not followed by CRLF", errMalformed)
		}
	}
}

// readLine returns one line without its CRLF; the slice is valid until the
// next read.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: line longer than %d bytes", errMalformed, br.Size())
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func trunc(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}

// cpuSnap is a /proc reading: per-core busy and idle jiffies, and the
// watched process's user+system jiffies.
type cpuSnap struct {
	at        time.Time
	ok        bool
	busy      []uint64
	idle      []uint64
	procTicks uint64
	procOK    bool
	loadavg   string
}

func takeSnap(pid int) cpuSnap {
	sn := cpuSnap{at: time.Now()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 8 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
				continue
			}
			var v [8]uint64
			for i := range 7 {
				v[i], _ = strconv.ParseUint(f[i+1], 10, 64)
			}
			// user nice system idle iowait irq softirq
			sn.busy = append(sn.busy, v[0]+v[1]+v[2]+v[5]+v[6])
			sn.idle = append(sn.idle, v[3]+v[4])
		}
		sn.ok = len(sn.busy) > 0
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			sn.loadavg = strings.Join(f[:3], " ")
		}
	}
	if pid > 0 {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			// Fields after the ")" that ends the command name; utime and
			// stime are fields 14 and 15 of the whole line.
			str := string(b)
			if i := strings.LastIndexByte(str, ')'); i >= 0 {
				f := strings.Fields(str[i+1:])
				if len(f) > 12 {
					ut, err1 := strconv.ParseUint(f[11], 10, 64)
					st, err2 := strconv.ParseUint(f[12], 10, 64)
					if err1 == nil && err2 == nil {
						sn.procTicks = ut + st
						sn.procOK = true
					}
				}
			}
		}
	}
	return sn
}

// clkTck is USER_HZ, 100 on every Linux platform Go supports.
const clkTck = 100

func (b cpuSnap) fill(res *Result, a cpuSnap) {
	wall := a.at.Sub(b.at).Seconds()
	if wall <= 0 {
		return
	}
	if b.procOK && a.procOK {
		res.TargetCPUPct = round1(100 * float64(a.procTicks-b.procTicks) / clkTck / wall)
	}
	if b.ok && a.ok && len(a.busy) == len(b.busy) {
		for i := range a.busy {
			db, di := float64(a.busy[i]-b.busy[i]), float64(a.idle[i]-b.idle[i])
			pct := 0.0
			if db+di > 0 {
				pct = round1(100 * db / (db + di))
			}
			res.CoreBusyPct = append(res.CoreBusyPct, pct)
		}
	}
	res.LoadAvg = b.loadavg
}
