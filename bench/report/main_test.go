package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/wardengw/warden/bench/internal/benchjson"
)

// Hand-made runs: one per target and phase unless a case says otherwise.
func ka(name string, rps, cpu float64) Run {
	return Run{Name: name, Mode: "keepalive", RPS: rps, TargetCPUPct: cpu, Concurrency: 32}
}

func lat(name string, p99 float64) Run {
	return Run{Name: name, Mode: "keepalive", Rate: 2000, RPS: 2000, P99us: p99, Concurrency: 32}
}

func hs(name, kx string, rps float64) Run {
	return Run{Name: name, Mode: "handshake", KeyExchange: kx, RPS: rps, TargetCPUPct: 80, Concurrency: 8}
}

// base is a bench/run.sh run: nginx-equiv has no handshake runs.
func base() []Run {
	return []Run{
		ka("direct", 80000, 100), ka("warden", 40000, 100), ka("nginx", 50000, 80), ka("nginx-equiv", 45000, 90),
		lat("direct", 250), lat("warden", 500), lat("nginx", 400), lat("nginx-equiv", 250),
		hs("direct", "X25519", 4000), hs("warden", "X25519", 3000), hs("nginx", "X25519", 2000),
		hs("direct", "X25519MLKEM768", 3000), hs("warden", "X25519MLKEM768", 2500),
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		name  string
		runs  []Run
		peers []string
		want  []Versus // nil: no comparison
	}{
		{
			name:  "both nginx configurations",
			runs:  base(),
			peers: []string{"nginx", "nginx-equiv"},
			want: []Versus{
				// per core: warden 40000, nginx 62500, nginx-equiv 50000.
				{Peer: "nginx", KeepaliveRPS: 0.8, KeepalivePerCore: 0.64, LatencyP99: 1.25, HandshakeRPS: 1.5,
					KeepaliveRounds: []float64{0.8}, KeepaliveMedian: 0.8},
				{Peer: "nginx-equiv", KeepaliveRPS: 0.889, KeepalivePerCore: 0.8, LatencyP99: 2,
					KeepaliveRounds: []float64{0.889}, KeepaliveMedian: 0.889},
			},
		},
		{
			name: "a disturbed run counts only when there is no clean one",
			runs: append(base(),
				Run{Name: "nginx", Mode: "keepalive", RPS: 99000, TargetCPUPct: 99, Disturbed: true},
				Run{Name: "warden", Mode: "keepalive", RPS: 44000, TargetCPUPct: 100},
				Run{Name: "nginx-equiv", Mode: "keepalive", Rate: 2000, P99us: 100, Disturbed: true}),
			peers: []string{"nginx", "nginx-equiv"},
			want: []Versus{
				// Rounds pair runs in order, disturbed ones included:
				// 40000/50000 and 44000/99000.
				{Peer: "nginx", KeepaliveRPS: 0.88, KeepalivePerCore: 0.704, LatencyP99: 1.25, HandshakeRPS: 1.5,
					KeepaliveRounds: []float64{0.8, 0.444}, KeepaliveMedian: 0.622},
				{Peer: "nginx-equiv", KeepaliveRPS: 0.978, KeepalivePerCore: 0.88, LatencyP99: 2,
					KeepaliveRounds: []float64{0.889}, KeepaliveMedian: 0.889},
			},
		},
		{
			name:  "missing peers are skipped, in the order given",
			runs:  base(),
			peers: []string{"nginx-equiv", "caddy", "warden"},
			want: []Versus{{Peer: "nginx-equiv", KeepaliveRPS: 0.889, KeepalivePerCore: 0.8, LatencyP99: 2,
				KeepaliveRounds: []float64{0.889}, KeepaliveMedian: 0.889}},
		},
		{
			name:  "no peer ran",
			runs:  base(),
			peers: []string{"caddy"},
		},
		{
			name: "no subject (Warden did not build)",
			runs: []Run{
				ka("direct", 80000, 100), ka("nginx", 50000, 80),
			},
			peers: []string{"nginx"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, _, err := summarize(tt.runs, "direct")
			if err != nil {
				t.Fatal(err)
			}
			cmp := compare(rows, tt.runs, "warden", tt.peers)
			if tt.want == nil {
				if cmp != nil {
					t.Fatalf("compare = %+v, want nil", *cmp)
				}
				return
			}
			if cmp == nil {
				t.Fatal("compare = nil")
			}
			if cmp.Subject != "warden" {
				t.Errorf("subject = %q", cmp.Subject)
			}
			if len(cmp.Peers) != len(tt.want) {
				t.Fatalf("peers = %+v, want %+v", cmp.Peers, tt.want)
			}
			for i, w := range tt.want {
				if !reflect.DeepEqual(cmp.Peers[i], w) {
					t.Errorf("peer %d = %+v, want %+v", i, cmp.Peers[i], w)
				}
			}
		})
	}
}

// il is an interleaved run of one schedule (t, the shared start time).
func il(name, t string, rps, cpuUs []float64) Run {
	r := Run{Name: name, Mode: "interleave", Time: t, SliceRPS: rps, SliceCPUUs: cpuUs, Concurrency: 32, Seconds: float64(len(rps))}
	for _, v := range rps {
		r.RPS += v / float64(len(rps))
	}
	return r
}

// TestInterleaved: the interleaved phase pairs the subject's and each
// peer's slices cycle by cycle, from the same schedule only (an older
// schedule's runs are ignored), and renders its table and summary lines.
func TestInterleaved(t *testing.T) {
	runs := append(base(),
		il("direct", "old", []float64{1, 1}, nil), il("warden", "old", []float64{1, 1}, nil), il("nginx", "old", []float64{9, 9}, nil),
		il("direct", "t1", []float64{200, 200, 200, 200}, []float64{10, 10, 10, 10}),
		il("warden", "t1", []float64{100, 90, 120, 50}, []float64{20, 25, 20, 40}),
		il("nginx", "t1", []float64{100, 100, 100, 100}, []float64{18, 20, 30, 20}),
		Run{Name: "direct", Mode: "interleave", Rate: 2000, Time: "t2", P50us: 100, P99us: 400, SliceP99us: []float64{300, 5000, 200}},
		Run{Name: "warden", Mode: "interleave", Rate: 2000, Time: "t2", P50us: 250, P99us: 900, SliceP99us: []float64{700, 500, 9000}},
		Run{Name: "nginx", Mode: "interleave", Rate: 2000, Time: "t2", P50us: 200, P99us: 600, SliceP99us: []float64{400, 350, 8000}},
	)
	rows, chosen, err := summarize(runs, "direct")
	if err != nil {
		t.Fatal(err)
	}
	cmp := compare(rows, runs, "warden", []string{"nginx", "nginx-equiv"})
	v := cmp.Peers[0]
	// req/s ratios 1, 0.9, 1.2, 0.5: median 0.95, quartiles 0.7 and 1.1;
	// CPU ratios 0.9, 0.8, 1.5, 0.5: median 0.85.
	if v.InterleaveRPS != 0.95 || v.InterleaveRPSQ1 != 0.7 || v.InterleaveRPSQ3 != 1.1 || v.InterleaveCPU != 0.85 || v.InterleaveCycles != 4 {
		t.Errorf("versus nginx = %+v", v)
	}
	if w := cmp.Peers[1]; w.InterleaveCycles != 0 || w.InterleaveRPS != 0 {
		t.Errorf("nginx-equiv had no interleaved run: %+v", w)
	}
	md := markdown(rows, chosen, cmp)
	wantAll(t, md,
		"the targets take turns in 4 cycles",
		"| warden | 90 | 0.45× |",
		"| keep-alive req/s, interleaved: median of the per-cycle ratios | 0.95× | — |",
		"| CPU per request, interleaved: peer's ÷ subject's, median per cycle | 0.85× | — |",
		"Interleaved req/s ÷ nginx: median 0.95 over 4 cycles, quartiles 0.70–1.10.",
		"Latency at a fixed 2000 req/s, interleaved",
		// Slice p99 medians: direct 300, warden 700, nginx 400.
		"| warden | 700 | +400 | 250 | 900 | – | +150 | +500 |",
		"| p99 at a fixed 2000 req/s, interleaved, median of the slices' (lower is better) | 1.75× | — |",
	)
}

// TestRoundRatios: the k-th keep-alive runs are paired, other phases and
// targets ignored, a target's extra runs left unpaired; the median is the
// middle ratio, or the mean of the middle two.
func TestRoundRatios(t *testing.T) {
	runs := []Run{
		ka("warden", 100, 90), ka("nginx", 200, 90), lat("warden", 5), lat("nginx", 1),
		ka("warden", 150, 90), ka("direct", 1, 1), ka("nginx", 100, 90),
		ka("warden", 120, 90), ka("nginx", 100, 90), ka("warden", 999, 90),
	}
	got := roundRatios(runs, "warden", "nginx")
	if want := []float64{0.5, 1.5, 1.2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("roundRatios = %v, want %v", got, want)
	}
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{0.5, 1.5, 1.2}, 1.2}, {[]float64{1.5, 0.5}, 1}, {[]float64{0.9}, 0.9}} {
		if m := benchjson.Median(tt.in); m != tt.want {
			t.Errorf("benchjson.Median(%v) = %v, want %v", tt.in, m, tt.want)
		}
	}
}

func TestSummarizeNoCeiling(t *testing.T) {
	if _, _, err := summarize([]Run{ka("warden", 1, 1)}, "direct"); err == nil {
		t.Error("no error without ceiling runs")
	}
	if _, _, err := summarize(nil, "direct"); err == nil {
		t.Error("no error without runs")
	}
}

// TestMarkdownTargetWithoutHandshakes checks that a target with no runs in
// a phase has no row in its table, and that the summary renders.
func TestMarkdownTargetWithoutHandshakes(t *testing.T) {
	rows, chosen, err := summarize(base(), "direct")
	if err != nil {
		t.Fatal(err)
	}
	md := markdown(rows, chosen, compare(rows, base(), "warden", []string{"nginx", "nginx-equiv"}))
	hsTable := md[strings.Index(md, "Full TLS 1.3 handshakes"):strings.Index(md, "Errors:")]
	if strings.Contains(hsTable, "| nginx-equiv |") {
		t.Errorf("handshake table has a row for nginx-equiv:\n%s", hsTable)
	}
	if !strings.Contains(hsTable, "Not run in this phase: nginx-equiv.") {
		t.Errorf("handshake table does not say nginx-equiv did not run:\n%s", hsTable)
	}
	if strings.Count(md, "| nginx-equiv |") != 2 {
		t.Errorf("nginx-equiv should have a keep-alive and a latency row:\n%s", md)
	}
	wantAll(t, md,
		"| measure | ÷ nginx | ÷ nginx-equiv |",
		"| keep-alive req/s, separate runs: best ÷ best | 0.80× | 0.89× |",
		"| keep-alive req/s, median of the per-round ratios | 0.80× | 0.89× |",
		"| keep-alive req/s per core | 0.64× | 0.80× |",
		"Keep-alive req/s ÷ nginx, round by round: 0.80.",
		"| p99 at a fixed 2000 req/s, separate runs (lower is better) | 1.25× | 2.00× |",
		"| full handshakes/s, X25519 | 1.50× | — |",
	)
}

// TestPairedPeer: a "subject:peer" entry of -peers compares another target
// (Warden configured as the minimal nginx, say) with that peer, labelled
// with both names; an entry whose subject did not run is left out.
func TestPairedPeer(t *testing.T) {
	runs := append(base(),
		il("direct", "t1", []float64{200, 200}, []float64{10, 10}),
		il("warden", "t1", []float64{100, 90}, []float64{20, 25}),
		il("warden-minimal", "t1", []float64{110, 120}, []float64{20, 20}),
		il("nginx", "t1", []float64{100, 100}, []float64{18, 20}),
	)
	rows, chosen, err := summarize(runs, "direct")
	if err != nil {
		t.Fatal(err)
	}
	cmp := compare(rows, runs, "warden", []string{"nginx", "warden-minimal:nginx", "absent:nginx"})
	if len(cmp.Peers) != 2 {
		t.Fatalf("peers = %+v", cmp.Peers)
	}
	// warden ÷ nginx per cycle: 1, 0.9; warden-minimal ÷ nginx: 1.1, 1.2.
	if v := cmp.Peers[0]; v.Subject != "" || v.InterleaveRPS != 0.95 {
		t.Errorf("warden ÷ nginx = %+v", v)
	}
	if v := cmp.Peers[1]; v.Subject != "warden-minimal" || v.Peer != "nginx" || v.InterleaveRPS != 1.15 || v.InterleaveCPU != 0.95 {
		t.Errorf("warden-minimal ÷ nginx = %+v", v)
	}
	md := markdown(rows, chosen, cmp)
	wantAll(t, md,
		"| measure | ÷ nginx | warden-minimal ÷ nginx |",
		"| keep-alive req/s, interleaved: median of the per-cycle ratios | 0.95× | 1.15× |",
		"Interleaved req/s warden-minimal ÷ nginx: median 1.15 over 2 cycles",
	)
}

// TestInterleavedSkipsEmptySlices: a cycle in which either side served
// nothing (a dead target, a stall) has no ratio, for req/s as for CPU.
func TestInterleavedSkipsEmptySlices(t *testing.T) {
	runs := append(base(),
		il("warden", "t1", []float64{100, 0, 120}, []float64{20, 0, 20}),
		il("nginx", "t1", []float64{100, 100, 0}, []float64{20, 20, 0}),
	)
	rows, _, err := summarize(runs, "direct")
	if err != nil {
		t.Fatal(err)
	}
	v := compare(rows, runs, "warden", []string{"nginx"}).Peers[0]
	if v.InterleaveCycles != 1 || v.InterleaveRPS != 1 || v.InterleaveCPU != 1 {
		t.Errorf("versus nginx = %+v, want one cycle at 1", v)
	}
}

// wantAll requires md to contain each of wants.
func wantAll(t *testing.T, md string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(md, w) {
			t.Errorf("markdown lacks %q:\n%s", w, md)
		}
	}
}
