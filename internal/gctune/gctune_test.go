package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30
)

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		name        string
		live, floor uint64
		want        int
	}{
		{"floor 0: off", 100 * mib, 0, 100},
		{"floor 0, live 0", 0, 0, 100},
		{"base 0 counts as 4MiB", 0, 32 * mib, 800},
		{"base under 4MiB counts as 4MiB", 1 * mib, 32 * mib, 800},
		{"live much smaller than floor", 8 * mib, 64 * mib, 800},
		{"rounded up", 10 * mib, 32 * mib, 320},
		{"rounded up, not exact", 30 * mib, 32 * mib, 107},
		{"live equals floor", 32 * mib, 32 * mib, 100},
		{"live just under floor", 32*mib - kib, 32 * mib, 101},
		{"live much larger than floor: GOGC=100", 1 * gib, 32 * mib, 100},
		{"capped", 4 * mib, 16 * gib, MaxPercent},
		{"just under the cap", 4 * mib, 99 * 4 * mib, 9900},
		{"no overflow with a huge floor", 1 << 62, 1<<64 - 1, 400},
		{"huge floor on a small heap", 0, 1<<64 - 1, MaxPercent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percent(tc.live, tc.floor); got != tc.want {
				t.Errorf("Percent(%d, %d) = %d, want %d", tc.live, tc.floor, got, tc.want)
			}
		})
	}
}

func readMetric(t *testing.T, name string) uint64 {
	t.Helper()
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		t.Fatalf("metric %s unavailable", name)
	}
	return s[0].Value.Uint64()
}

// restorePercent puts back the process's GC percent when the test ends.
func restorePercent(t *testing.T) {
	prev := debug.SetGCPercent(100)
	debug.SetGCPercent(prev)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
}

type event struct {
	percent int
	rearmed bool
}

// startTest starts a tuner whose GC-cycle adjustments are sent on the
// returned channel (never blocking the finalizer goroutine).
func startTest(t *testing.T, floor uint64) (*Tuner, <-chan event) {
	ch := make(chan event, 64)
	tu := start(floor, nil, func(p int, rearmed bool) {
		select {
		case ch <- event{p, rearmed}:
		default:
		}
	})
	t.Cleanup(tu.Stop)
	return tu, ch
}

// nextCycle runs GCs until the tuner reports a GC cycle, for at most 10s.
func nextCycle(t *testing.T, ch <-chan event) event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		runtime.GC()
		select {
		case e := <-ch:
			return e
		case <-deadline:
			t.Fatal("the tuner saw no GC cycle within 10s")
		default:
			runtime.Gosched()
		}
	}
}

// nextDisarmed runs GCs until the tuner reports a cycle after which its
// sentinel did not re-arm, for at most 10s. (A cycle that began before the
// tuner was stopped may still report a re-arm.)
func nextDisarmed(t *testing.T, ch <-chan event) event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if e := nextCycle(t, ch); !e.rearmed {
			return e
		}
	}
	t.Fatal("the sentinel kept re-arming for 10s")
	return event{}
}

// Not parallel: these tests change the process-wide GC percent.
func TestTunerRaisesGoalAndStopRestores(t *testing.T) {
	if GOGCSet() {
		t.Skip("GOGC is set: the tuner does not run")
	}
	restorePercent(t)
	debug.SetGCPercent(150) // a percent other than the default, to see Stop restore it
	const floor = 64 * mib
	tu, ch := startTest(t, floor)

	// Several cycles: the sentinel re-arms itself after each.
	for i := range 3 {
		e := nextCycle(t, ch)
		if !e.rearmed || e.percent <= 100 {
			t.Fatalf("cycle %d: got %+v, want a percent over 100 and re-armed", i, e)
		}
	}
	if p := readMetric(t, "/gc/gogc:percent"); p <= 100 {
		t.Errorf("/gc/gogc:percent = %d, want > 100", p)
	}
	checkGoal(t, floor)

	tu.Stop()
	if p := readMetric(t, "/gc/gogc:percent"); p != 150 {
		t.Errorf("after Stop /gc/gogc:percent = %d, want 150 (the percent before Start)", p)
	}
	// The armed sentinel fires once more and does not re-arm.
	nextDisarmed(t, ch)
	if p := readMetric(t, "/gc/gogc:percent"); p != 150 {
		t.Errorf("after Stop and a GC /gc/gogc:percent = %d, want 150", p)
	}
}

func TestSetFloor(t *testing.T) {
	if GOGCSet() {
		t.Skip("GOGC is set: the tuner does not run")
	}
	restorePercent(t)
	debug.SetGCPercent(100)
	tu, ch := startTest(t, 64*mib)
	if p := readMetric(t, "/gc/gogc:percent"); p <= 100 {
		t.Fatalf("after Start /gc/gogc:percent = %d, want > 100 at once", p)
	}

	// Floor 0: back to the percent before Start, and no more re-arming.
	tu.SetFloor(0)
	if p := readMetric(t, "/gc/gogc:percent"); p != 100 {
		t.Errorf("floor 0: /gc/gogc:percent = %d, want 100", p)
	}
	if e := nextDisarmed(t, ch); e.percent != 100 {
		t.Errorf("floor 0: got %+v, want percent 100", e)
	}

	// A floor again: re-armed.
	tu.SetFloor(256 * mib)
	e := nextCycle(t, ch)
	if !e.rearmed {
		t.Fatalf("floor set again: got %+v, want re-armed", e)
	}
	if e.percent <= 100 {
		t.Errorf("floor 256MiB: percent %d, want > 100", e.percent)
	}
	if p := readMetric(t, "/gc/gogc:percent"); p <= 100 {
		t.Errorf("floor 256MiB: /gc/gogc:percent = %d, want > 100", p)
	}
}

func TestGOGCWins(t *testing.T) {
	restorePercent(t)
	t.Setenv("GOGC", "100")
	before := readMetric(t, "/gc/gogc:percent")
	tu, _ := startTest(t, 64*mib)
	tu.SetFloor(128 * mib)
	runtime.GC()
	if p := readMetric(t, "/gc/gogc:percent"); p != before {
		t.Errorf("with GOGC set /gc/gogc:percent = %d, want %d unchanged", p, before)
	}
	tu.mu.Lock()
	defer tu.mu.Unlock()
	if tu.armed {
		t.Error("with GOGC set a sentinel was armed")
	}
}

// checkGoal checks the runtime's heap goal against the floor: at least
// live + 0.9 × floor, and at most live + max(base, floor) (+5% and 1 MiB
// for rounding and what the runtime adds), base being live heap + stacks +
// globals — not floor × (stacks + globals) / live past it.
func checkGoal(t *testing.T, floor uint64) {
	t.Helper()
	live, goal := readMetric(t, "/gc/heap/live:bytes"), readMetric(t, "/gc/heap/goal:bytes")
	base := live + readMetric(t, "/gc/scan/stack:bytes") + readMetric(t, "/gc/scan/globals:bytes")
	if want := live + floor*9/10; goal < want {
		t.Errorf("/gc/heap/goal:bytes = %d, want at least live %d + 0.9 × floor = %d", goal, live, want)
	}
	if most := live + max(base, floor)*105/100 + mib; goal > most {
		t.Errorf("/gc/heap/goal:bytes = %d, want at most live %d + max(base %d, floor %d) = %d", goal, live, base, floor, most)
	}
}

// grow uses about n KiB of stack, then waits on release.
func grow(n int, release <-chan struct{}, done func()) {
	var pad [1024]byte
	if n > 1 {
		grow(n-1, release, done)
		pad[0]++ // keep the frame
		return
	}
	done()
	<-release
	_ = pad
}

// TestGoalWithManyStacks: goroutine stacks (which clients add by opening
// connections) count in the base, so they do not multiply the goal past
// live + max(base, floor).
func TestGoalWithManyStacks(t *testing.T) {
	if GOGCSet() {
		t.Skip("GOGC is set: the tuner does not run")
	}
	restorePercent(t)
	release := make(chan struct{})
	var wg sync.WaitGroup
	const goroutines, kibEach = 1000, 32 // about 32 MiB of stacks
	wg.Add(goroutines)
	for range goroutines {
		go grow(kibEach, release, wg.Done)
	}
	wg.Wait()
	defer close(release)
	const floor = 64 * mib
	_, ch := startTest(t, floor)
	for range 2 {
		nextCycle(t, ch)
	}
	if s := readMetric(t, "/gc/scan/stack:bytes"); s < 16*mib {
		t.Fatalf("only %d bytes of stacks: the test does not test what it says", s)
	}
	checkGoal(t, floor)
}
