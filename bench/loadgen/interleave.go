package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Interleaved keep-alive load (-interleave): several targets take turns
// on one schedule of short slices, each with its own -c kept-alive
// connections (opened once, idle while another target has the turn). A
// cycle gives every target one slice, in the order given; -cycles cycles
// are measured after one warm-up cycle of -warmup slices. On a host whose
// speed drifts over seconds to minutes, the k-th slices of two targets
// are seconds apart, so their ratio is far steadier than that of two runs
// a minute apart: the report pairs them cycle by cycle.
//
// A slice counts the requests that completed inside it. When it ends, no
// new request starts on that target and the next target's slice begins
// only after the last one in flight has completed, so two targets never
// share the machine. The watched process's CPU time is read around each
// slice, drain included, and divided by every request the slice served.

// interleaveTarget is one -interleave entry.
type interleaveTarget struct {
	o   options // the target's copy: name, url, addr, tlsConf, reqBytes
	pid int
	s   *shared

	workers []chan *sliceRun

	// The results so far, written by run between slices (no worker runs
	// then) and read by result after the last.
	lat     []time.Duration
	rps     []float64 // per measured slice
	cpuUs   []float64 // target CPU µs per request, per measured slice
	cpuPct  []float64 // target CPU % over each measured slice
	p99     []float64 // each measured slice's p99 latency, µs
	done    int64     // measured requests, completed inside their slice
	served  int64     // measured requests, drain included (the CPU's divisor)
	seconds float64   // measured slice time
	cpuTick uint64
}

// sliceRun is one slice of one target.
type sliceRun struct {
	end      time.Time
	measured bool
	jobs     chan time.Time // open loop (-rate): release times; nil: closed loop
	in, out  atomic.Int64   // requests completed inside the slice, after it (drain)
	wg       sync.WaitGroup
	mu       sync.Mutex
	lat      []time.Duration
}

// parseInterleave parses "name=url@pid,name=url@pid,..." (@pid optional).
func parseInterleave(spec string, base *options) ([]*interleaveTarget, error) {
	var ts []*interleaveTarget
	names := map[string]bool{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		name, rest, ok := strings.Cut(item, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("-interleave: %q is not name=url[@pid]", item)
		}
		if names[name] {
			return nil, fmt.Errorf("-interleave: target %q twice", name)
		}
		names[name] = true
		t := &interleaveTarget{o: *base}
		if i := strings.LastIndexByte(rest, '@'); i >= 0 {
			pid, err := strconv.Atoi(rest[i+1:])
			if err != nil || pid <= 0 {
				return nil, fmt.Errorf("-interleave: %q: bad pid", item)
			}
			t.pid, rest = pid, rest[:i]
		}
		u, err := url.Parse(rest)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("-interleave: %q: not an https:// URL", item)
		}
		t.o.name = name
		t.o.setTarget(u)
		ts = append(ts, t)
	}
	if len(ts) < 2 {
		return nil, errors.New("-interleave needs at least two targets")
	}
	return ts, nil
}

// interleave runs the schedule and returns one Result per target.
func interleave(o *options, ts []*interleaveTarget, slice time.Duration, cycles int) []Result {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for _, t := range ts {
		t.s = &shared{o: &t.o, errKinds: map[string]int{}}
		for i := range o.conc {
			ch := make(chan *sliceRun, 1)
			t.workers = append(t.workers, ch)
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := &worker{s: t.s, id: i}
				defer w.close()
				for {
					select {
					case <-ctx.Done():
						return
					case sl := <-ch:
						w.runSlice(ctx, sl)
					}
				}
			}()
		}
	}
	start := time.Now()
	if o.warmup > 0 {
		for _, t := range ts {
			t.run(ctx, o.warmup, false)
		}
	}
	for range cycles {
		for _, t := range ts {
			t.run(ctx, slice, true)
		}
	}
	cancel()
	wg.Wait()

	var out []Result
	for _, t := range ts {
		out = append(out, t.result(o, slice, start))
	}
	return out
}

// run gives t one slice of length d and waits for its last request.
func (t *interleaveTarget) run(ctx context.Context, d time.Duration, measured bool) {
	before := takeSnap(t.pid)
	begin := time.Now()
	sl := &sliceRun{end: begin.Add(d), measured: measured}
	if t.o.rate > 0 {
		// Open loop: dispatch releases the slice's requests on schedule;
		// the workers serve every one released, late ones included.
		total := int64(t.o.rate*d.Seconds()) + 1
		sl.jobs = make(chan time.Time, total)
		go dispatch(ctx, &shared{o: &t.o, deadline: sl.end}, sl.jobs, begin, total)
	}
	sl.wg.Add(len(t.workers))
	for _, ch := range t.workers {
		ch <- sl
	}
	sl.wg.Wait()
	after := takeSnap(t.pid)
	if !measured {
		return
	}
	in, all := sl.in.Load(), sl.in.Load()+sl.out.Load()
	secs := d.Seconds()
	t.rps = append(t.rps, round1(float64(in)/secs))
	t.done += in
	t.served += all
	t.seconds += secs
	t.lat = append(t.lat, sl.lat...)
	if len(sl.lat) > 0 {
		sort.Slice(sl.lat, func(i, j int) bool { return sl.lat[i] < sl.lat[j] })
		t.p99 = append(t.p99, us(quantile(sl.lat, 0.99)))
	} else {
		t.p99 = append(t.p99, 0)
	}
	if t.pid > 0 && !(before.procOK && after.procOK) {
		// Keep the slices aligned with t.rps: 0 is "no reading", which
		// the report skips.
		t.cpuPct, t.cpuUs = append(t.cpuPct, 0), append(t.cpuUs, 0)
	} else if before.procOK && after.procOK {
		ticks := after.procTicks - before.procTicks
		t.cpuTick += ticks
		wall := after.at.Sub(before.at).Seconds()
		cpuSec := float64(ticks) / clkTck
		t.cpuPct = append(t.cpuPct, round1(100*cpuSec/wall))
		if all > 0 {
			t.cpuUs = append(t.cpuUs, round1(cpuSec/float64(all)*1e6))
		} else {
			t.cpuUs = append(t.cpuUs, 0)
		}
	}
}

// runSlice sends requests back to back until the slice ends; the one in
// flight then completes (and counts as drain).
func (w *worker) runSlice(ctx context.Context, sl *sliceRun) {
	defer sl.wg.Done()
	var lat []time.Duration
	for ctx.Err() == nil {
		start := time.Now()
		if sl.jobs != nil {
			// Open loop: the latency clock starts at the release. A
			// target that has not caught up -timeout after the slice's
			// end (it stalled) leaves the rest unserved: a slice is
			// bounded in time as in count.
			rel, ok := <-sl.jobs
			if !ok || time.Since(sl.end) > w.s.o.timeout {
				break
			}
			start = rel
		} else if !start.Before(sl.end) {
			break
		}
		err := w.keepaliveOnce(ctx)
		end := time.Now()
		if err != nil {
			if sl.measured {
				w.s.fail(err)
			}
			if w.conn != nil {
				w.conn.Close()
				w.conn = nil
			}
			time.Sleep(10 * time.Millisecond) // a dead target must not spin
			continue
		}
		if !sl.measured {
			continue
		}
		if end.After(sl.end) && sl.jobs == nil {
			sl.out.Add(1)
			continue
		}
		sl.in.Add(1)
		lat = append(lat, end.Sub(start))
	}
	if len(lat) > 0 {
		sl.mu.Lock()
		sl.lat = append(sl.lat, lat...)
		sl.mu.Unlock()
	}
}

// result is t's JSON line.
func (t *interleaveTarget) result(o *options, slice time.Duration, start time.Time) Result {
	all := t.lat
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	res := Result{
		Name:        t.o.name,
		Mode:        "interleave",
		Rate:        o.rate,
		Requests:    t.done,
		Errors:      t.s.nErrors,
		Concurrency: o.conc,
		Seconds:     round1(t.seconds),
		Proto:       "http/1.1",
		Round:       o.round,
		URL:         t.o.url.String(),
		Time:        start.UTC().Format(time.RFC3339),
		SliceS:      slice.Seconds(),
		SliceRPS:    t.rps,
		SliceCPUUs:  t.cpuUs,
		SliceCPUPct: t.cpuPct,
		SliceP99us:  t.p99,
	}
	if t.seconds > 0 {
		res.RPS = round1(float64(t.done) / t.seconds)
		res.TargetCPUPct = round1(100 * float64(t.cpuTick) / clkTck / t.seconds)
	}
	if t.served > 0 && t.pid > 0 {
		res.CPUUsPerReq = round1(float64(t.cpuTick) / clkTck / float64(t.served) * 1e6)
		res.WatchPID = t.pid
	}
	if len(t.s.errKinds) > 0 {
		res.ErrorKinds = t.s.errKinds
	}
	if cs := t.s.connInfo.Load(); cs != nil {
		res.TLSVersion, res.KeyExchange = tls.VersionName(cs.Version), cs.CurveID.String()
	}
	res.setLatency(all)
	return res
}
