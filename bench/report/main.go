// Command report turns the JSON lines written by loadgen (-out) during
// bench/run.sh into the results: a table on standard output, a JSON document
// (-json) and a markdown table (-md), each with absolute numbers and ratios
// to the ceiling (the "direct" target: the backend alone, TLS-terminating on
// the proxies' core).
//
// Phases are recognised from the runs themselves: interleaved keep-alive
// (mode interleave: the targets took turns in slices, see loadgen's
// -interleave) closed loop and at a fixed rate, keep-alive closed loop
// (mode keepalive, no rate), fixed-rate latency (mode keepalive with a
// rate), and full handshakes per key exchange (mode handshake). When a phase
// ran several times for a target (rounds), the run with the most requests/s
// is kept for throughput phases and the one with the lowest p99 for the
// fixed-rate phase (interference from other work only makes numbers worse);
// runs marked disturbed are used only when there is no other. All runs stay
// in the JSON. A target that did not run a phase has no row in that phase's
// table.
//
// Last comes the comparison the target is judged by: the subject
// (-subject, "warden") divided by each peer (-peers, the two nginx
// configurations) for keep-alive requests/s, requests/s per core, p99 at
// the fixed rate and X25519 handshakes/s, as a table and as "vs_nginx" in
// the JSON. For keep-alive req/s it also pairs the rounds (the subject's
// k-th run ÷ the peer's k-th) and gives their median; from the
// interleaved phases, it pairs the slices cycle by cycle and gives the
// median of the req/s and CPU-per-request ratios, and the p99 ratio.
package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/wardengw/warden/bench/internal/benchjson"
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
	// Interleaved runs (mode "interleave"): each measured slice's req/s
	// and target CPU µs per request, in cycle order, and the CPU µs per
	// request over all of them.
	SliceRPS    []float64 `json:"slice_rps,omitempty"`
	SliceCPUUs  []float64 `json:"slice_cpu_us_per_req,omitempty"`
	SliceP99us  []float64 `json:"slice_p99_us,omitempty"`
	CPUUsPerReq float64   `json:"cpu_us_per_req,omitempty"`
}

// Phase names, as Run.phase returns them.
const (
	phaseInterleave  = "interleave"
	phaseILatency    = "interleave latency"
	phaseKeepalive   = "keepalive"
	phaseLatency     = "latency"
	phaseHandshake   = "handshake X25519"
	phaseHandshakePQ = "handshake X25519MLKEM768"
)

func (r Run) phase() string {
	switch {
	case r.Mode == "handshake":
		return "handshake " + r.KeyExchange
	case r.Mode == "interleave" && r.Rate > 0:
		return phaseILatency
	case r.Mode == "interleave":
		return phaseInterleave
	case r.Rate > 0:
		return phaseLatency
	default:
		return phaseKeepalive
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

	InterleaveRPS   float64 `json:"interleave_rps,omitempty"`
	InterleaveRatio float64 `json:"interleave_ratio_to_ceiling,omitempty"`
	InterleaveCPUUs float64 `json:"interleave_cpu_us_per_req,omitempty"`
	InterleaveP99us float64 `json:"interleave_p99_us,omitempty"`

	ILatencyRate    float64 `json:"interleave_latency_rate,omitempty"`
	ILatencyP50us   float64 `json:"interleave_latency_p50_us,omitempty"`
	ILatencyP99us   float64 `json:"interleave_latency_p99_us,omitempty"`
	ILatencyP999us  float64 `json:"interleave_latency_p999_us,omitempty"`
	ILatencyAdded50 float64 `json:"interleave_latency_added_p50_us,omitempty"`
	ILatencyAdded99 float64 `json:"interleave_latency_added_p99_us,omitempty"`
	// The median over the slices of each slice's p99, and its difference
	// from the ceiling's: a slice holds rate × slice requests, and the
	// median leaves out the slices the host stalled in.
	ILatencySliceP99 float64 `json:"interleave_latency_slice_p99_median_us,omitempty"`
	ILatencyAddedS99 float64 `json:"interleave_latency_added_slice_p99_us,omitempty"`

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

// Versus is the subject's result divided by one peer's, phase by phase,
// from the runs the tables show. For the throughput ratios above 1 favours
// the subject; LatencyP99 is a ratio of latencies, so there below 1 does.
// 0 (omitted in the JSON): the subject or the peer has no run in the phase.
type Versus struct {
	// Subject is set when this comparison's subject is not the
	// Comparison's (a "subject:peer" entry of -peers).
	Subject          string  `json:"subject,omitempty"`
	Peer             string  `json:"peer"`
	KeepaliveRPS     float64 `json:"keepalive_rps,omitempty"`
	KeepalivePerCore float64 `json:"keepalive_rps_per_core,omitempty"`
	LatencyP99       float64 `json:"latency_p99,omitempty"`
	HandshakeRPS     float64 `json:"handshake_x25519_rps,omitempty"`
	// KeepaliveRounds pairs the subject's and the peer's keep-alive runs
	// round by round (the k-th of each, undisturbed or not): run.sh
	// interleaves the targets, so a pair shares the machine's state of the
	// moment. KeepaliveMedian is their median: less swayed by one lucky
	// or unlucky run than KeepaliveRPS, a ratio of best runs.
	KeepaliveRounds []float64 `json:"keepalive_rps_rounds,omitempty"`
	KeepaliveMedian float64   `json:"keepalive_rps_rounds_median,omitempty"`
	// From the interleaved phase, cycle by cycle (the subject's k-th
	// slice ÷ the peer's k-th, a few seconds apart): the median of the
	// req/s ratios with their quartiles, and the median of the CPU
	// ratios, peer's CPU µs per request ÷ the subject's (above 1 favours
	// the subject, as for req/s).
	InterleaveRPS    float64 `json:"interleave_rps_median,omitempty"`
	InterleaveRPSQ1  float64 `json:"interleave_rps_q1,omitempty"`
	InterleaveRPSQ3  float64 `json:"interleave_rps_q3,omitempty"`
	InterleaveCPU    float64 `json:"interleave_cpu_median,omitempty"`
	InterleaveCycles int     `json:"interleave_cycles,omitempty"`
	// The interleaved fixed-rate phase: the subject's p99 ÷ the peer's,
	// each the median of its slices' (below 1 favours the subject).
	InterleaveLatencyP99 float64 `json:"interleave_latency_p99,omitempty"`
}

// Comparison is the subject (Warden) against each peer that ran, in the
// order the peers were given.
type Comparison struct {
	Subject string   `json:"subject"`
	Peers   []Versus `json:"peers"`
}

func main() {
	jsonOut := flag.String("json", "", "write the results document here")
	mdOut := flag.String("md", "", "write the markdown table here")
	meta := flag.String("meta", "", "JSON object of run metadata (date, machine, versions) to embed")
	ceiling := flag.String("ceiling", "direct", "target name of the ceiling")
	subject := flag.String("subject", "warden", "target compared with each of -peers in the summary")
	peers := flag.String("peers", "nginx,nginx-equiv", "comma-separated targets the subject is divided by in the summary; an entry other:peer divides the target other instead")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: report [-json f] [-md f] [-meta json] [-subject t] [-peers t,t] results.jsonl...")
		os.Exit(2)
	}
	if err := run(flag.Args(), *jsonOut, *mdOut, *meta, *ceiling, *subject, splitList(*peers)); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func run(files []string, jsonOut, mdOut, meta, ceiling, subject string, peers []string) error {
	metaDoc, err := benchjson.ParseMeta(meta) // before anything is written
	if err != nil {
		return err
	}
	var runs []Run
	for _, f := range files {
		rs, err := benchjson.ReadLines[Run](f)
		if err != nil {
			return err
		}
		runs = append(runs, rs...)
	}
	rows, chosen, err := summarize(runs, ceiling)
	if err != nil {
		return err
	}
	cmp := compare(rows, runs, subject, peers)

	md := markdown(rows, chosen, cmp)
	fmt.Print(md)
	if mdOut != "" {
		if err := os.WriteFile(mdOut, []byte(md), 0o644); err != nil {
			return fmt.Errorf("write -md: %w", err)
		}
	}
	if jsonOut != "" {
		doc := map[string]any{"summary": rows, "runs": runs}
		if cmp != nil {
			doc["vs_nginx"] = cmp
		}
		if err := benchjson.WriteDoc(jsonOut, doc, metaDoc); err != nil {
			return err
		}
	}
	return nil
}

// summarize picks each target's run per phase (see the package comment)
// and builds one Row per target, in the order the targets first appear,
// with ratios to the ceiling's runs. It also returns the chosen runs by
// target and phase.
func summarize(runs []Run, ceiling string) ([]Row, map[string]map[string]Run, error) {
	if len(runs) == 0 {
		return nil, nil, errors.New("no runs")
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
			chosen[t][p] = pick(p, rs)
		}
	}
	base, ok := chosen[ceiling]
	if !ok {
		return nil, nil, fmt.Errorf("no runs for the ceiling %q", ceiling)
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
		for _, p := range []string{phaseKeepalive, phaseLatency, phaseHandshake, phaseHandshakePQ} {
			if r, ok := c[p]; ok && r.Disturbed {
				row.Disturbed = append(row.Disturbed, p)
			}
		}
		if k, ok := c[phaseInterleave]; ok {
			row.InterleaveRPS, row.InterleaveCPUUs, row.InterleaveP99us = k.RPS, k.CPUUsPerReq, k.P99us
			row.InterleaveRatio = benchjson.Ratio(k.RPS, base[phaseInterleave].RPS)
		}
		if l, ok := c[phaseILatency]; ok {
			row.ILatencyRate, row.ILatencyP50us, row.ILatencyP99us, row.ILatencyP999us = l.Rate, l.P50us, l.P99us, l.P999us
			row.ILatencyAdded50 = math.Round((l.P50us-base[phaseILatency].P50us)*10) / 10
			row.ILatencyAdded99 = math.Round((l.P99us-base[phaseILatency].P99us)*10) / 10
			row.ILatencySliceP99 = benchjson.Median(l.SliceP99us)
			row.ILatencyAddedS99 = math.Round((row.ILatencySliceP99-benchjson.Median(base[phaseILatency].SliceP99us))*10) / 10
		}
		if k, ok := c[phaseKeepalive]; ok {
			row.KeepaliveRPS, row.KeepaliveP50us, row.KeepaliveP99us = k.RPS, k.P50us, k.P99us
			row.KeepaliveRatio = benchjson.Ratio(k.RPS, base[phaseKeepalive].RPS)
			row.KeepaliveCPUPct = k.TargetCPUPct
			row.KeepalivePerCore = k.perCore()
			row.KeepalivePerCoreRt = benchjson.Ratio(k.perCore(), base[phaseKeepalive].perCore())
		}
		if l, ok := c[phaseLatency]; ok {
			row.LatencyRate, row.LatencyP50us, row.LatencyP99us, row.LatencyP999us = l.Rate, l.P50us, l.P99us, l.P999us
			row.AddedP50us = math.Round((l.P50us-base[phaseLatency].P50us)*10) / 10
			row.AddedP99us = math.Round((l.P99us-base[phaseLatency].P99us)*10) / 10
			row.LatencyCPUPct = l.TargetCPUPct
		}
		if h, ok := c[phaseHandshake]; ok {
			row.HandshakeRPS = h.RPS
			row.HandshakeRatio = benchjson.Ratio(h.RPS, base[phaseHandshake].RPS)
			row.HandshakeCPUPct = h.TargetCPUPct
			row.HandshakePer = h.perCore()
			row.HandshakePerRt = benchjson.Ratio(h.perCore(), base[phaseHandshake].perCore())
		}
		if h, ok := c[phaseHandshakePQ]; ok {
			row.HandshakePQRPS = h.RPS
			row.HandshakePQRt = benchjson.Ratio(h.RPS, base[phaseHandshakePQ].RPS)
			row.HandshakePQPer = h.perCore()
		}
		rows = append(rows, row)
	}
	return rows, chosen, nil
}

// pick chooses the run that represents one target in one phase: among the
// undisturbed runs (all runs if every one was disturbed), the lowest p99
// for the fixed-rate phase (interference only ever adds latency), the
// highest requests/s otherwise.
func pick(phase string, rs []Run) Run {
	var clean []Run
	for _, r := range rs {
		if !r.Disturbed {
			clean = append(clean, r)
		}
	}
	if len(clean) > 0 {
		rs = clean
	}
	best := rs[0]
	for _, r := range rs[1:] {
		if phase == phaseLatency && r.P99us < best.P99us || phase != phaseLatency && r.RPS > best.RPS {
			best = r
		}
	}
	return best
}

// compare divides the subject's row by each peer's that exists, in the
// order of peers. It returns nil when the subject or every peer is missing
// (e.g. Warden did not build).
func compare(rows []Row, runs []Run, subject string, peers []string) *Comparison {
	byName := map[string]Row{}
	for _, r := range rows {
		byName[r.Target] = r
	}
	s, ok := byName[subject]
	if !ok {
		return nil
	}
	main := subject
	cmp := &Comparison{Subject: subject}
	for _, name := range peers {
		subject, s := main, s
		if other, peer, pair := strings.Cut(name, ":"); pair {
			subject, name = other, peer
			if s, ok = byName[subject]; !ok {
				continue
			}
		}
		p, ok := byName[name]
		if !ok || name == subject {
			continue
		}
		rounds := roundRatios(runs, subject, name)
		v := Versus{
			Peer:             name,
			KeepaliveRPS:     benchjson.Ratio(s.KeepaliveRPS, p.KeepaliveRPS),
			KeepalivePerCore: benchjson.Ratio(s.KeepalivePerCore, p.KeepalivePerCore),
			LatencyP99:       benchjson.Ratio(s.LatencyP99us, p.LatencyP99us),
			HandshakeRPS:     benchjson.Ratio(s.HandshakeRPS, p.HandshakeRPS),
			KeepaliveRounds:  rounds,
			KeepaliveMedian:  benchjson.Median(rounds),
		}
		if a, b, ok := interleaved(runs, subject, name); ok {
			var rps, cpu []float64
			for k := 0; k < len(a.SliceRPS) && k < len(b.SliceRPS); k++ {
				if a.SliceRPS[k] > 0 && b.SliceRPS[k] > 0 { // a slice with nothing served has no ratio
					rps = append(rps, benchjson.Ratio(a.SliceRPS[k], b.SliceRPS[k]))
				}
			}
			for k := 0; k < len(a.SliceCPUUs) && k < len(b.SliceCPUUs); k++ {
				if a.SliceCPUUs[k] > 0 && b.SliceCPUUs[k] > 0 {
					cpu = append(cpu, benchjson.Ratio(b.SliceCPUUs[k], a.SliceCPUUs[k]))
				}
			}
			v.InterleaveRPS, v.InterleaveCPU, v.InterleaveCycles = benchjson.Median(rps), benchjson.Median(cpu), len(rps)
			v.InterleaveRPSQ1, v.InterleaveRPSQ3 = quartiles(rps)
		}
		v.InterleaveLatencyP99 = benchjson.Ratio(s.ILatencySliceP99, p.ILatencySliceP99)
		if subject != main {
			v.Subject = subject
		}
		cmp.Peers = append(cmp.Peers, v)
	}
	if len(cmp.Peers) == 0 {
		return nil
	}
	return cmp
}

// roundRatios divides the subject's k-th keep-alive run by the peer's k-th,
// for every k both have, in run order.
func roundRatios(runs []Run, subject, peer string) []float64 {
	a, b := runsOf(runs, phaseKeepalive, subject, peer)
	var out []float64
	for k := 0; k < len(a) && k < len(b); k++ {
		out = append(out, benchjson.Ratio(a[k].RPS, b[k].RPS))
	}
	return out
}

// runsOf returns, in run order, the runs of phase by target a and by b.
func runsOf(runs []Run, phase, a, b string) (as, bs []Run) {
	for _, r := range runs {
		if r.phase() != phase {
			continue
		}
		switch r.Name {
		case a:
			as = append(as, r)
		case b:
			bs = append(bs, r)
		}
	}
	return as, bs
}

// interleaved returns the last interleaved runs of subject and peer,
// which ran in the same schedule (the same loadgen invocation, so the
// same Time); ok is false if there is no such pair.
func interleaved(runs []Run, subject, peer string) (a, b Run, ok bool) {
	as, bs := runsOf(runs, phaseInterleave, subject, peer)
	for i := len(as) - 1; i >= 0; i-- {
		for j := len(bs) - 1; j >= 0; j-- {
			if as[i].Time == bs[j].Time {
				return as[i], bs[j], true
			}
		}
	}
	return Run{}, Run{}, false
}

// quartiles returns the first and third quartiles of vs (the medians of
// its lower and upper halves); zeros for fewer than two values.
func quartiles(vs []float64) (q1, q3 float64) {
	if len(vs) < 2 {
		return 0, 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	h := len(s) / 2
	return benchjson.Median(s[:h]), benchjson.Median(s[len(s)-h:])
}

// markdown renders the tables. A target appears in a phase's table only if
// it ran that phase; the targets left out are named under the table.
func markdown(rows []Row, chosen map[string]map[string]Run, cmp *Comparison) string {
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
	pct := func(v float64) string {
		if v == 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f%%", v)
	}
	signed := func(v float64) string { return fmt.Sprintf("%+.0f", v) }
	conc, rate, hsConc := 0, 0.0, 0
	for _, byPhase := range chosen {
		if r, ok := byPhase[phaseKeepalive]; ok {
			conc = r.Concurrency
		}
		if r, ok := byPhase[phaseLatency]; ok {
			rate = r.Rate
		}
		if r, ok := byPhase[phaseHandshake]; ok {
			hsConc = r.Concurrency
		}
	}
	if in, out := ranPhase(rows, chosen, phaseInterleave); len(in) > 0 {
		sl := chosen[in[0].Target][phaseInterleave] // one schedule: any target's run describes it
		fmt.Fprintf(&b, "Keep-alive throughput, interleaved (HTTP/1.1, c=%d, closed loop; the targets take turns in %d cycles of 1 slice each, %.1f s measured per target):\n\n",
			sl.Concurrency, len(sl.SliceRPS), sl.Seconds)
		b.WriteString("| target | req/s | × ceiling | p50 µs | p99 µs | target CPU | CPU µs per request |\n")
		b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, r := range in {
			k := chosen[r.Target][phaseInterleave]
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", r.Target, f0(r.InterleaveRPS), f2(r.InterleaveRatio),
				f0(k.P50us), f0(k.P99us), pct(k.TargetCPUPct), fmt.Sprintf("%.1f", r.InterleaveCPUUs))
		}
		notRun(&b, out)
		b.WriteString("\n")
	}
	if in, out := ranPhase(rows, chosen, phaseILatency); len(in) > 0 {
		fmt.Fprintf(&b, "Latency at a fixed %.0f req/s, interleaved (open loop, the targets taking turns as above); added = target − direct:\n\n",
			in[0].ILatencyRate)
		b.WriteString("| target | p99 µs, median of the slices' | added µs | p50 µs | p99 µs, all slices | p99.9 µs | added p50 µs | added p99 µs, all slices |\n")
		b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, r := range in {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Target, f0(r.ILatencySliceP99), signed(r.ILatencyAddedS99),
				f0(r.ILatencyP50us), f0(r.ILatencyP99us), f0(r.ILatencyP999us), signed(r.ILatencyAdded50), signed(r.ILatencyAdded99))
		}
		notRun(&b, out)
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "Keep-alive throughput (HTTP/1.1, c=%d, closed loop):\n\n", conc)
	b.WriteString("| target | req/s | × ceiling | p50 µs | p99 µs | target CPU | req/s per core | per core × ceiling |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	in, out := ranPhase(rows, chosen, phaseKeepalive)
	for _, r := range in {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Target, f0(r.KeepaliveRPS), f2(r.KeepaliveRatio),
			f0(r.KeepaliveP50us), f0(r.KeepaliveP99us), pct(r.KeepaliveCPUPct), f0(r.KeepalivePerCore), f2(r.KeepalivePerCoreRt))
	}
	notRun(&b, out)
	fmt.Fprintf(&b, "\nLatency at a fixed %.0f req/s (open loop, c=%d connections); added = target − direct:\n\n", rate, conc)
	b.WriteString("| target | p50 µs | p99 µs | p99.9 µs | added p50 µs | added p99 µs | target CPU |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	in, out = ranPhase(rows, chosen, phaseLatency)
	for _, r := range in {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", r.Target, f0(r.LatencyP50us), f0(r.LatencyP99us), f0(r.LatencyP999us),
			signed(r.AddedP50us), signed(r.AddedP99us), pct(r.LatencyCPUPct))
	}
	notRun(&b, out)
	fmt.Fprintf(&b, "\nFull TLS 1.3 handshakes (ECDSA P-256 certificate, new connection + one GET each, c=%d):\n\n", hsConc)
	b.WriteString("| target | X25519 /s | × ceiling | target CPU | per core | per core × ceiling | X25519MLKEM768 /s | × ceiling | per core |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	in, out = ranPhase(rows, chosen, phaseHandshake, phaseHandshakePQ)
	for _, r := range in {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Target, f0(r.HandshakeRPS), f2(r.HandshakeRatio),
			pct(r.HandshakeCPUPct), f0(r.HandshakePer), f2(r.HandshakePerRt), f0(r.HandshakePQRPS), f2(r.HandshakePQRt), f0(r.HandshakePQPer))
	}
	notRun(&b, out)
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
	if cmp != nil {
		b.WriteString(comparisonTable(cmp, rate))
	}
	return b.String()
}

// ranPhase splits rows into the targets that have a chosen run in any of
// phases and the names of those that have none.
func ranPhase(rows []Row, chosen map[string]map[string]Run, phases ...string) (in []Row, out []string) {
	for _, r := range rows {
		ran := false
		for _, p := range phases {
			if _, ok := chosen[r.Target][p]; ok {
				ran = true
			}
		}
		if ran {
			in = append(in, r)
		} else {
			out = append(out, r.Target)
		}
	}
	return in, out
}

// notRun notes, under a table, the targets that did not run its phase.
func notRun(b *strings.Builder, targets []string) {
	if len(targets) > 0 {
		fmt.Fprintf(b, "\nNot run in this phase: %s.\n", strings.Join(targets, ", "))
	}
}

// label names the comparison in a column head: "÷ peer", or "other ÷
// peer" when its subject is not the Comparison's.
func (v Versus) label() string {
	if v.Subject != "" {
		return v.Subject + " ÷ " + v.Peer
	}
	return "÷ " + v.Peer
}

// comparisonTable renders cmp: one row per measure, one column per peer,
// "—" where the subject or the peer did not run the phase.
func comparisonTable(cmp *Comparison, rate float64) string {
	var b strings.Builder
	f := func(v float64) string {
		if v == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f×", v)
	}
	fmt.Fprintf(&b, "\nSummary, %s ÷ each nginx configuration, and any other pair its column names (same run, the runs shown above; above 1× favours the divided target, except p99 where below 1× does):\n\n", cmp.Subject)
	b.WriteString("| measure")
	for _, p := range cmp.Peers {
		fmt.Fprintf(&b, " | %s", p.label())
	}
	b.WriteString(" |\n| ---")
	b.WriteString(strings.Repeat(" | ---:", len(cmp.Peers)))
	b.WriteString(" |\n")
	lines := []struct {
		name string
		get  func(Versus) float64
	}{
		{"keep-alive req/s, interleaved: median of the per-cycle ratios", func(v Versus) float64 { return v.InterleaveRPS }},
		{"CPU per request, interleaved: peer's ÷ subject's, median per cycle", func(v Versus) float64 { return v.InterleaveCPU }},
		{"keep-alive req/s, separate runs: best ÷ best", func(v Versus) float64 { return v.KeepaliveRPS }},
		{"keep-alive req/s, median of the per-round ratios", func(v Versus) float64 { return v.KeepaliveMedian }},
		{"keep-alive req/s per core", func(v Versus) float64 { return v.KeepalivePerCore }},
		{fmt.Sprintf("p99 at a fixed %.0f req/s, interleaved, median of the slices' (lower is better)", rate), func(v Versus) float64 { return v.InterleaveLatencyP99 }},
		{fmt.Sprintf("p99 at a fixed %.0f req/s, separate runs (lower is better)", rate), func(v Versus) float64 { return v.LatencyP99 }},
		{"full handshakes/s, X25519", func(v Versus) float64 { return v.HandshakeRPS }},
	}
	for _, l := range lines {
		ran := false
		for _, p := range cmp.Peers {
			ran = ran || l.get(p) != 0
		}
		if !ran {
			continue // a phase no peer ran (the interleaved one, say)
		}
		b.WriteString("| " + l.name)
		for _, p := range cmp.Peers {
			b.WriteString(" | " + f(l.get(p)))
		}
		b.WriteString(" |\n")
	}
	for _, p := range cmp.Peers {
		if p.InterleaveCycles > 0 {
			fmt.Fprintf(&b, "\nInterleaved req/s %s: median %.2f over %d cycles, quartiles %.2f–%.2f.", p.label(), p.InterleaveRPS, p.InterleaveCycles, p.InterleaveRPSQ1, p.InterleaveRPSQ3)
		}
	}
	for _, p := range cmp.Peers {
		if len(p.KeepaliveRounds) > 0 {
			rs := make([]string, len(p.KeepaliveRounds))
			for i, v := range p.KeepaliveRounds {
				rs[i] = fmt.Sprintf("%.2f", v)
			}
			fmt.Fprintf(&b, "\nKeep-alive req/s %s, round by round: %s.", p.label(), strings.Join(rs, ", "))
		}
	}
	b.WriteString("\n")
	return b.String()
}
