// Command report turns the JSON lines written by loadgen (-out) during
// bench/run.sh into the results: a table on standard output, a JSON document
// (-json) and a markdown table (-md), each with absolute numbers and ratios
// to the ceiling (the "direct" target: the backend alone, TLS-terminating on
// the proxies' core).
//
// Phases are recognised from the runs themselves: keep-alive closed loop
// (mode keepalive, no rate), fixed-rate latency (mode keepalive with a
// rate), and full handshakes per key exchange (mode handshake). When a phase
// ran several times for a target (rounds), the run with the most requests/s
// is kept for throughput phases and the one with the lowest p99 for the
// fixed-rate phase (interference from other work only makes numbers worse);
// runs marked disturbed are used only when there is no other. All runs stay
// in the JSON.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
)

// Run is what report needs from a loadgen JSON line.
type Run struct {
	Name         string         `json:"name"`
	Mode         string         `json:"mode"`
	Requests     int64          `json:"requests"`
	Errors       int64          `json:"errors"`
	RPS          float64        `json:"rps"`
	P50us        float64        `json:"p50_us"`
	P99us        float64        `json:"p99_us"`
	P999us       float64        `json:"p999_us"`
	MeanUs       float64        `json:"mean_us"`
	MaxUs        float64        `json:"max_us"`
	Concurrency  int            `json:"concurrency"`
	Rate         float64        `json:"rate,omitempty"`
	Unsent       int64          `json:"unsent,omitempty"`
	Seconds      float64        `json:"seconds"`
	Proto        string         `json:"proto"`
	TLSVersion   string         `json:"tls_version,omitempty"`
	KeyExchange  string         `json:"key_exchange,omitempty"`
	ErrorKinds   map[string]int `json:"error_kinds,omitempty"`
	TargetCPUPct float64        `json:"target_cpu_pct,omitempty"`
	CoreBusyPct  []float64      `json:"core_busy_pct,omitempty"`
	LoadAvg      string         `json:"loadavg,omitempty"`
	ForeignPct   float64        `json:"foreign_cpu_pct,omitempty"`
	Disturbed    bool           `json:"disturbed,omitempty"`
	URL          string         `json:"url"`
	Time         string         `json:"time"`
}

func (r Run) phase() string {
	switch {
	case r.Mode == "handshake":
		return "handshake " + r.KeyExchange
	case r.Rate > 0:
		return "latency"
	default:
		return "keepalive"
	}
}

// perCore is requests/s per fully used core of the target: rps divided by
// the target process's measured CPU share. It corrects for a target that
// was not saturated (e.g. when the load generator was the bottleneck).
func (r Run) perCore() float64 {
	if r.TargetCPUPct <= 0 {
		return 0
	}
	return math.Round(r.RPS / (r.TargetCPUPct / 100))
}

// Row is one target's summary.
type Row struct {
	Target string `json:"target"`

	KeepaliveRPS       float64 `json:"keepalive_rps"`
	KeepaliveRatio     float64 `json:"keepalive_ratio_to_ceiling"`
	KeepaliveP50us     float64 `json:"keepalive_p50_us"`
	KeepaliveP99us     float64 `json:"keepalive_p99_us"`
	KeepaliveCPUPct    float64 `json:"keepalive_target_cpu_pct"`
	KeepalivePerCore   float64 `json:"keepalive_rps_per_core"`
	KeepalivePerCoreRt float64 `json:"keepalive_rps_per_core_ratio_to_ceiling"`

	LatencyRate     float64  `json:"latency_rate"`
	LatencyP50us    float64  `json:"latency_p50_us"`
	LatencyP99us    float64  `json:"latency_p99_us"`
	LatencyP999us   float64  `json:"latency_p999_us"`
	AddedP50us      float64  `json:"latency_added_p50_us"`
	AddedP99us      float64  `json:"latency_added_p99_us"`
	LatencyCPUPct   float64  `json:"latency_target_cpu_pct"`
	HandshakeRPS    float64  `json:"handshake_x25519_rps"`
	HandshakeRatio  float64  `json:"handshake_x25519_ratio_to_ceiling"`
	HandshakeCPUPct float64  `json:"handshake_x25519_target_cpu_pct"`
	HandshakePer    float64  `json:"handshake_x25519_per_core"`
	HandshakePerRt  float64  `json:"handshake_x25519_per_core_ratio_to_ceiling"`
	HandshakePQRPS  float64  `json:"handshake_x25519mlkem768_rps,omitempty"`
	HandshakePQRt   float64  `json:"handshake_x25519mlkem768_ratio_to_ceiling,omitempty"`
	HandshakePQPer  float64  `json:"handshake_x25519mlkem768_per_core,omitempty"`
	Errors          int64    `json:"errors"`
	Disturbed       []string `json:"disturbed_phases,omitempty"`
}

func main() {
	jsonOut := flag.String("json", "", "write the results document here")
	mdOut := flag.String("md", "", "write the markdown table here")
	meta := flag.String("meta", "", "JSON object of run metadata (date, machine, versions) to embed")
	ceiling := flag.String("ceiling", "direct", "target name of the ceiling")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: report [-json f] [-md f] [-meta json] results.jsonl...")
		os.Exit(2)
	}
	if err := run(flag.Args(), *jsonOut, *mdOut, *meta, *ceiling); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(files []string, jsonOut, mdOut, meta, ceiling string) error {
	var runs []Run
	for _, f := range files {
		rs, err := readRuns(f)
		if err != nil {
			return err
		}
		runs = append(runs, rs...)
	}
	if len(runs) == 0 {
		return errors.New("no runs")
	}
	var order []string
	chosen := map[string]map[string]Run{} // target -> phase -> run
	group := map[string]map[string][]Run{}
	for _, r := range runs {
		if group[r.Name] == nil {
			group[r.Name] = map[string][]Run{}
			chosen[r.Name] = map[string]Run{}
			order = append(order, r.Name)
		}
		group[r.Name][r.phase()] = append(group[r.Name][r.phase()], r)
	}
	for t, phases := range group {
		for p, rs := range phases {
			// Runs disturbed by other work on the target's core only count
			// when there is nothing else.
			var clean []Run
			for _, r := range rs {
				if !r.Disturbed {
					clean = append(clean, r)
				}
			}
			if len(clean) > 0 {
				rs = clean
			}
			if p == "latency" {
				// Best of the rounds: interference only ever adds latency.
				sort.Slice(rs, func(i, j int) bool { return rs[i].P99us < rs[j].P99us })
				chosen[t][p] = rs[0]
			} else {
				sort.Slice(rs, func(i, j int) bool { return rs[i].RPS > rs[j].RPS })
				chosen[t][p] = rs[0]
			}
		}
	}
	base, ok := chosen[ceiling]
	if !ok {
		return fmt.Errorf("no runs for the ceiling %q", ceiling)
	}
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return math.Round(a/b*1000) / 1000
	}
	var rows []Row
	for _, t := range order {
		c := chosen[t]
		var errs int64
		for _, rs := range group[t] {
			for _, r := range rs {
				errs += r.Errors
			}
		}
		row := Row{Target: t, Errors: errs}
		for _, p := range []string{"keepalive", "latency", "handshake X25519", "handshake X25519MLKEM768"} {
			if r, ok := c[p]; ok && r.Disturbed {
				row.Disturbed = append(row.Disturbed, p)
			}
		}
		if k, ok := c["keepalive"]; ok {
			row.KeepaliveRPS, row.KeepaliveP50us, row.KeepaliveP99us = k.RPS, k.P50us, k.P99us
			row.KeepaliveRatio = ratio(k.RPS, base["keepalive"].RPS)
			row.KeepaliveCPUPct = k.TargetCPUPct
			row.KeepalivePerCore = k.perCore()
			row.KeepalivePerCoreRt = ratio(k.perCore(), base["keepalive"].perCore())
		}
		if l, ok := c["latency"]; ok {
			row.LatencyRate, row.LatencyP50us, row.LatencyP99us, row.LatencyP999us = l.Rate, l.P50us, l.P99us, l.P999us
			row.AddedP50us = math.Round((l.P50us-base["latency"].P50us)*10) / 10
			row.AddedP99us = math.Round((l.P99us-base["latency"].P99us)*10) / 10
			row.LatencyCPUPct = l.TargetCPUPct
		}
		if h, ok := c["handshake X25519"]; ok {
			row.HandshakeRPS = h.RPS
			row.HandshakeRatio = ratio(h.RPS, base["handshake X25519"].RPS)
			row.HandshakeCPUPct = h.TargetCPUPct
			row.HandshakePer = h.perCore()
			row.HandshakePerRt = ratio(h.perCore(), base["handshake X25519"].perCore())
		}
		if h, ok := c["handshake X25519MLKEM768"]; ok {
			row.HandshakePQRPS = h.RPS
			row.HandshakePQRt = ratio(h.RPS, base["handshake X25519MLKEM768"].RPS)
			row.HandshakePQPer = h.perCore()
		}
		rows = append(rows, row)
	}

	md := markdown(rows, chosen)
	fmt.Print(md)
	if mdOut != "" {
		if err := os.WriteFile(mdOut, []byte(md), 0o644); err != nil {
			return err
		}
	}
	if jsonOut != "" {
		doc := map[string]any{"summary": rows, "runs": runs}
		if meta != "" {
			var m map[string]any
			if err := json.Unmarshal([]byte(meta), &m); err != nil {
				return fmt.Errorf("-meta: %w", err)
			}
			doc["meta"] = m
		}
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func markdown(rows []Row, chosen map[string]map[string]Run) string {
	var b strings.Builder
	f0 := func(v float64) string {
		if v == 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f", v)
	}
	f2 := func(v float64) string {
		if v == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f×", v)
	}
	signed := func(v float64) string { return fmt.Sprintf("%+.0f", v) }
	conc, rate, hsConc := 0, 0.0, 0
	for _, byPhase := range chosen {
		if r, ok := byPhase["keepalive"]; ok {
			conc = r.Concurrency
		}
		if r, ok := byPhase["latency"]; ok {
			rate = r.Rate
		}
		if r, ok := byPhase["handshake X25519"]; ok {
			hsConc = r.Concurrency
		}
	}
	fmt.Fprintf(&b, "Keep-alive throughput (HTTP/1.1, c=%d, closed loop):\n\n", conc)
	b.WriteString("| target | req/s | × ceiling | p50 µs | p99 µs | target CPU | req/s per core | per core × ceiling |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s%% | %s | %s |\n", r.Target, f0(r.KeepaliveRPS), f2(r.KeepaliveRatio),
			f0(r.KeepaliveP50us), f0(r.KeepaliveP99us), f0(r.KeepaliveCPUPct), f0(r.KeepalivePerCore), f2(r.KeepalivePerCoreRt))
	}
	fmt.Fprintf(&b, "\nLatency at a fixed %.0f req/s (open loop, c=%d connections); added = target − direct:\n\n", rate, conc)
	b.WriteString("| target | p50 µs | p99 µs | p99.9 µs | added p50 µs | added p99 µs | target CPU |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s%% |\n", r.Target, f0(r.LatencyP50us), f0(r.LatencyP99us), f0(r.LatencyP999us),
			signed(r.AddedP50us), signed(r.AddedP99us), f0(r.LatencyCPUPct))
	}
	fmt.Fprintf(&b, "\nFull TLS 1.3 handshakes (ECDSA P-256 certificate, new connection + one GET each, c=%d):\n\n", hsConc)
	b.WriteString("| target | X25519 /s | × ceiling | target CPU | per core | per core × ceiling | X25519MLKEM768 /s | × ceiling | per core |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s%% | %s | %s | %s | %s | %s |\n", r.Target, f0(r.HandshakeRPS), f2(r.HandshakeRatio),
			f0(r.HandshakeCPUPct), f0(r.HandshakePer), f2(r.HandshakePerRt), f0(r.HandshakePQRPS), f2(r.HandshakePQRt), f0(r.HandshakePQPer))
	}
	var errs []string
	for _, r := range rows {
		if r.Errors > 0 {
			errs = append(errs, fmt.Sprintf("%s: %d", r.Target, r.Errors))
		}
	}
	var dist []string
	for _, r := range rows {
		if len(r.Disturbed) > 0 {
			dist = append(dist, r.Target+" ("+strings.Join(r.Disturbed, ", ")+")")
		}
	}
	if len(dist) > 0 {
		fmt.Fprintf(&b, "\nDisturbed (other work used the target core even after retries): %s\n", strings.Join(dist, "; "))
	}
	if len(errs) > 0 {
		fmt.Fprintf(&b, "\nErrors (all phases): %s\n", strings.Join(errs, ", "))
	} else {
		b.WriteString("\nErrors: none in any phase.\n")
	}
	return b.String()
}

func readRuns(path string) ([]Run, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var runs []Run
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var r Run
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		runs = append(runs, r)
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return runs, nil
}
