package memlimit

import (
	"runtime"
	"sync/atomic"
	"testing"
)

func TestFloorPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name               string
		floor, live, roots uint64
		base, want         int
	}{
		{"live above the floor keeps GOGC", 64 * mib, 80 * mib, mib, 100, 100},
		{"live at the floor keeps GOGC", 64 * mib, 64 * mib, 0, 100, 100},
		{"small heap raised to the floor", 64 * mib, 11 * mib, mib, 100, 442}, // ceil(53/12*100)
		{"half the floor is GOGC 100", 64 * mib, 32 * mib, 0, 100, 100},
		{"a larger own GOGC wins", 64 * mib, 11 * mib, mib, 500, 500},
		{"empty heap is capped", 64 * mib, 0, 0, 100, maxFloorPercent},
		{"tiny heap is capped", 64 * mib, 10, 10, 100, maxFloorPercent},
	} {
		if got := floorPercent(c.floor, c.live, c.roots, c.base); got != c.want {
			t.Errorf("%s: floorPercent(%d, %d, %d, %d) = %d, want %d", c.name, c.floor, c.live, c.roots, c.base, got, c.want)
		}
		// The goal the runtime computes from the percentage reaches the
		// floor whenever the percentage is not capped or the base.
		if got := floorPercent(c.floor, c.live, c.roots, c.base); got != c.base && got != maxFloorPercent {
			if goal := c.live + (c.live+c.roots)*uint64(got)/100; goal < c.floor {
				t.Errorf("%s: goal %d below the floor %d", c.name, goal, c.floor)
			}
		}
	}
}

func TestBaseGCPercent(t *testing.T) {
	for env, want := range map[string]int{"": 100, "off": -1, "200": 200, "50": 50, "0": 0, "x1": 100, "-5": 100, "99999999999": 100} {
		if got := baseGCPercent(env); got != want {
			t.Errorf("baseGCPercent(%q) = %d, want %d", env, got, want)
		}
	}
}

// TestHeapFloorFollowsCollections drives real collections and checks
// that the floor re-reads the heap after each one and sets the
// percentage the heap calls for; the runtime's GOGC is not touched (the
// setter is a fake).
func TestHeapFloorFollowsCollections(t *testing.T) {
	const mib = 1 << 20
	var live atomic.Uint64
	live.Store(16 * mib)
	var current atomic.Int64
	adjusted := make(chan int, 64)
	h := &HeapFloor{
		floor:    64 * mib,
		base:     100,
		set:      func(p int) int { return int(current.Swap(int64(p))) },
		heap:     func() (uint64, uint64) { return live.Load(), 0 },
		onAdjust: func(p int) { adjusted <- p },
	}
	h.start()
	if p := <-adjusted; p != 300 {
		t.Fatalf("first percentage %d, want 300 (16 MiB live, 64 MiB floor)", p)
	}
	// next collects until the floor has adjusted once more.
	next := func() int {
		for {
			select {
			case p := <-adjusted:
				return p
			default:
				runtime.GC()
			}
		}
	}
	live.Store(8 * mib)
	if p := next(); p != 700 {
		t.Fatalf("after a collection with 8 MiB live: %d, want 700", p)
	}
	live.Store(100 * mib)
	if p := next(); p != 100 {
		t.Fatalf("after a collection with 100 MiB live: %d, want the base 100", p)
	}
	h.Stop()
	if got := current.Load(); got != 100 {
		t.Fatalf("Stop left GOGC %d, want the base 100", got)
	}
	live.Store(mib)
	h.adjust() // a collection's callback after Stop changes nothing
	select {
	case p := <-adjusted:
		t.Fatalf("adjusted to %d after Stop", p)
	default:
	}
	if got := current.Load(); got != 100 {
		t.Fatalf("GOGC %d after Stop, want 100", got)
	}
}

func TestStartHeapFloorOff(t *testing.T) {
	t.Setenv("GOGC", "off")
	h := StartHeapFloor(DefaultHeapFloor)
	if !h.stopped.Load() {
		t.Fatal("GOGC=off: the floor started")
	}
	h.Stop()
	t.Setenv("GOGC", "")
	h = StartHeapFloor(0)
	if !h.stopped.Load() {
		t.Fatal("floor 0: the floor started")
	}
	h.Stop()
}
