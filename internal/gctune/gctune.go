// Package gctune gives the garbage collector a heap floor: the collector
// does not run before the heap has grown by about floor bytes over the
// live heap, and behaves as GOGC=100 once the live heap is large.
//
// The runtime's heap goal is live + base × percent/100, where base is what
// the collector scans: the live heap, goroutine stacks and globals. After
// every GC cycle the tuner reads base and sets the percent to
// max(100, ⌈100 × floor / base⌉) (at most MaxPercent), so that the goal is
// live + max(base, floor): about live + floor for a small heap, GOGC=100's
// own goal for a large one. A small live heap, as a gateway's, then costs
// far fewer collections under load, for up to floor more heap. (Counting
// only the live heap would let many goroutine stacks, which clients can
// add by opening connections, multiply the goal far past the floor.)
//
// The operator's GOGC wins: with GOGC set in the environment the tuner does
// nothing. GOMEMLIMIT coexists with it: the runtime's memory limit still
// applies on top of the raised percent, so the collector runs earlier when
// the process nears the limit.
package gctune

import (
	"log/slog"
	"math/bits"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// MaxPercent caps the GC percent the tuner sets, whatever the floor: the
// heap goal is at most about live + 100 × base (see Percent).
const MaxPercent = 10_000

// minBase is the runtime's minimum heap goal at GOGC=100 (4 MiB; it scales
// with the percent). A base below it is counted as minBase: otherwise a
// tiny heap would give a huge percent, and a minimum heap (4 MiB ×
// percent/100) far above live + floor.
const minBase = 4 << 20

// Percent is the GC percent that makes the runtime's heap goal (live +
// base × percent/100) at least live + floor, base being the live heap plus
// goroutine stacks plus globals: max(100, ⌈100 × floor / base⌉), at most
// MaxPercent, with base counted as at least 4 MiB (the runtime's own
// minimum heap). A floor of 0 gives 100.
func Percent(base, floor uint64) int {
	if floor == 0 {
		return 100
	}
	base = max(base, minBase)
	if floor/base >= MaxPercent/100 {
		return MaxPercent
	}
	// floor < 100 × base here, so the quotient fits: no overflow.
	hi, lo := bits.Mul64(floor, 100)
	q, r := bits.Div64(hi, lo, base)
	if r != 0 {
		q++
	}
	return max(100, int(q))
}

// GOGCSet reports whether the operator set GOGC in the environment, in
// which case the tuner does not run.
func GOGCSet() bool { return os.Getenv("GOGC") != "" }

// Tuner adjusts the GC percent after every GC cycle. Its methods are safe
// for concurrent use.
type Tuner struct {
	log  *slog.Logger
	hook func(percent int, rearmed bool) // tests: called after each GC cycle's adjustment

	mu      sync.Mutex
	floor   uint64
	prev    int  // the percent before Start, restored by Stop and by a floor of 0
	percent int  // the percent last set
	armed   bool // a sentinel is waiting for the next GC cycle
	off     bool // GOGC is set or Stop was called: the tuner does nothing
}

// Start starts a tuner with the given floor in bytes (0: off, the GC
// percent stays as it is). With GOGC set in the environment it logs that
// the floor is ignored and the returned tuner does nothing. log may be nil.
func Start(floor uint64, log *slog.Logger) *Tuner { return start(floor, log, nil) }

func start(floor uint64, log *slog.Logger, hook func(int, bool)) *Tuner {
	if log == nil {
		log = slog.Default()
	}
	t := &Tuner{log: log, hook: hook}
	if GOGCSet() {
		t.off = true
		if floor > 0 {
			log.Info("gc_heap_floor ignored: GOGC is set in the environment", "GOGC", os.Getenv("GOGC"))
		}
		return t
	}
	t.prev = debug.SetGCPercent(100)
	debug.SetGCPercent(t.prev)
	t.percent = t.prev
	t.SetFloor(floor)
	return t
}

// SetFloor changes the floor (on a config reload). 0 restores the percent
// the process had before Start and stops adjusting it.
func (t *Tuner) SetFloor(floor uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.off || floor == t.floor {
		return
	}
	t.floor = floor
	if floor == 0 {
		t.set(t.prev)
		t.log.Info("GC heap floor off", "gc_percent", t.prev)
		return // the armed sentinel, if any, fires once more and stops
	}
	t.set(Percent(scanBase(), floor))
	t.log.Info("GC heap floor", "floor_bytes", floor, "gc_percent", t.percent)
	if !t.armed {
		t.armed = true
		arm(t)
	}
}

// Stop stops adjusting and restores the percent the process had before
// Start.
func (t *Tuner) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.off {
		return
	}
	t.off = true
	t.floor = 0
	t.set(t.prev)
}

// set sets the GC percent if it changes (with t.mu).
func (t *Tuner) set(p int) {
	if p != t.percent {
		debug.SetGCPercent(p)
		t.percent = p
	}
}

// sentinel is the object whose finalizer runs after each GC cycle. It
// holds a pointer, so it is never a tiny allocation: tiny (pointer-free,
// under 16 bytes) objects share a block with others and their finalizers
// may never run.
//
// A finalizer rather than runtime.AddCleanup: a finalizer resurrects its
// object, so the same sentinel is re-armed with SetFinalizer (no
// allocation per cycle) — the established pattern of GC tuners. A cleanup
// would need a fresh object each cycle, and the cleanup's argument must
// not reach that object.
type sentinel struct {
	t *Tuner
	_ [16]byte
}

func arm(t *Tuner) {
	runtime.SetFinalizer(&sentinel{t: t}, (*sentinel).fire)
}

// fire runs on the finalizer goroutine once a GC cycle found the sentinel
// unreachable: it adjusts the percent to what that cycle marked and scanned,
// and re-arms unless the tuner was stopped or its floor set to 0.
func (s *sentinel) fire() {
	t := s.t
	t.mu.Lock()
	rearm := !t.off && t.floor > 0
	p := t.percent
	if rearm {
		p = Percent(scanBase(), t.floor)
		t.set(p)
		runtime.SetFinalizer(s, (*sentinel).fire)
	} else {
		t.armed = false
	}
	hook := t.hook
	t.mu.Unlock()
	if hook != nil {
		hook(p, rearm)
	}
}

// scanBase is what the runtime's heap goal grows from: the heap the last
// GC cycle marked live, plus the goroutine stacks and globals it scans
// (0 before the first cycle).
func scanBase() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	metrics.Read(s)
	var n uint64
	for _, v := range s {
		if v.Value.Kind() == metrics.KindUint64 {
			n += v.Value.Uint64()
		}
	}
	return n
}
