package stream_test

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/window"
)

type wkey struct {
	key int
	w   window.Window
}

// lateOracle restates allowed lateness sequentially for one split read one
// record at a time (so a watermark follows every record): it returns the
// sequence of counts each (key, window) emits and the late records.
func lateOracle(evs []event, a window.Assigner, bound, lateness int64) (map[wkey][]int64, []event) {
	emits := map[wkey][]int64{}
	state := map[wkey]int64{}
	var late []event
	wm := int64(math.MinInt64)
	maxTs := int64(math.MinInt64)
	for _, e := range evs {
		accepted := false
		for _, w := range a.Assign(e.TS, nil) {
			if w.End-1+lateness <= wm {
				continue
			}
			accepted = true
			k := wkey{e.Key, w}
			state[k]++
			if w.End-1 <= wm {
				emits[k] = append(emits[k], state[k])
			}
		}
		if !accepted {
			late = append(late, e)
		}
		maxTs = max(maxTs, e.TS)
		if nw := maxTs - bound - 1; nw > wm {
			for k, n := range state {
				if k.w.End-1 > wm && k.w.End-1 <= nw {
					emits[k] = append(emits[k], n)
				}
				if k.w.End-1+lateness <= nw {
					delete(state, k)
				}
			}
			wm = nw
		}
	}
	for k, n := range state { // the final watermark
		if k.w.End-1 > wm {
			emits[k] = append(emits[k], n)
		}
	}
	return emits, late
}

// TestLatenessMatchesOracle: events out of order beyond the bound, so some
// are late; windows with allowed lateness re-emit updated counts, and
// records past the lateness go to the side output. Checked at parallelism 1
// to 4 against lateOracle.
func TestLatenessMatchesOracle(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) { testLatenessMatchesOracle(t, backend) })
	}
}

func testLatenessMatchesOracle(t *testing.T, backend string) {
	r := newRand(t)
	assigners := []window.Assigner{
		window.Tumbling(20 * time.Millisecond),
		window.Sliding(30*time.Millisecond, 10*time.Millisecond),
		// Windows from Assign alone (the path of custom assigners).
		customAssigner{window.Sliding(30*time.Millisecond, 10*time.Millisecond)},
	}
	for _, a := range assigners {
		for p := 1; p <= 4; p++ {
			bound := int64(r.IntN(10))
			lateness := int64(r.IntN(30))
			var evs []event
			for i := range 300 {
				evs = append(evs, event{Key: r.IntN(5), TS: int64(i)*2 + r.Int64N(4*bound+20), Value: int64(i)})
			}
			wantEmits, wantLate := lateOracle(evs, a, bound, lateness)
			reemits := 0
			for _, v := range wantEmits {
				reemits += len(v) - 1
			}
			t.Logf("%T p=%d: %d windows, %d re-emissions, %d late", a, p, len(wantEmits), reemits, len(wantLate))
			name := fmt.Sprintf("%T p=%d bound=%d lateness=%d", a, p, bound, lateness)
			checkLateCounts(t, name, backend, p, evs, a, bound, lateness, wantEmits, wantLate)
		}
	}
}

// checkLateCounts runs a keyed count over evs in windows of a with the
// given out-of-orderness bound and allowed lateness, late records to a
// side output, on backend at parallelism p, and fails t unless it emits
// wantEmits (per key and window, in order) and sends wantLate (in input
// order) to the side output.
func checkLateCounts(t *testing.T, name, backend string, p int, evs []event, a window.Assigner, bound, lateness int64, wantEmits map[wkey][]int64, wantLate []event) {
	t.Helper()
	env := stream.New(append(backendOpts(t, backend), stream.WithParallelism(p), stream.WithBatchSize(1))...)
	src := stream.FromSource(env, "events", stream.FromSlice(evs, 1),
		stream.BoundedOutOfOrderness(func(e event) int64 { return e.TS }, time.Duration(bound)*time.Millisecond))
	tag := stream.NewOutputTag[event]("late")
	counts := stream.Aggregate(stream.Window(stream.KeyBy(src, func(e event) int { return e.Key }), a).
		AllowedLateness(time.Duration(lateness)*time.Millisecond).SideOutputLate(tag), stream.Count[event]())
	got := stream.Collect(counts)
	gotLate := stream.Collect(stream.SideOutput(counts, tag))
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	gotEmits := map[wkey][]int64{}
	for _, w := range got.Values() {
		k := wkey{w.Key, w.Window}
		gotEmits[k] = append(gotEmits[k], w.Value)
	}
	if !maps.EqualFunc(gotEmits, wantEmits, slices.Equal[[]int64]) {
		for k, v := range wantEmits {
			if !slices.Equal(gotEmits[k], v) {
				t.Errorf("%s: %v emitted %v, want %v", name, k, gotEmits[k], v)
			}
		}
		for k, v := range gotEmits {
			if _, ok := wantEmits[k]; !ok {
				t.Errorf("%s: %v emitted %v, want nothing", name, k, v)
			}
		}
		t.FailNow()
	}
	gl := gotLate.Values()
	sort.Slice(gl, func(i, j int) bool { return gl[i].Value < gl[j].Value })
	if !slices.Equal(gl, wantLate) {
		t.Fatalf("%s: late %v, want %v", name, gl, wantLate)
	}
}

// customAssigner hides the window.Fixed of the assigner it wraps, so that
// the operators take the windows Assign gives, as for a custom assigner.
type customAssigner struct{ a window.Assigner }

func (c customAssigner) Assign(ts int64, dst []window.Window) []window.Window {
	return c.a.Assign(ts, dst)
}
func (c customAssigner) Domain() window.Domain { return c.a.Domain() }
func (c customAssigner) Gap() int64            { return c.a.Gap() }
