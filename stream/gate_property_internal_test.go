package stream

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	rt "github.com/sluicehq/sluice/internal/runtime"
)

// gateItem is one event of a channel in TestGateAlignmentOracle.
type gateItem struct {
	kind rt.Kind
	arg  int64 // data value, barrier id or watermark
}

// seqHead records what a gate hands to its operator, in order.
type seqHead struct {
	data     []int       // values pushed
	barriers []uint64    // barriers forwarded
	at       map[int]int // value -> number of barriers forwarded before it
	bAt      []int       // barrier i -> values pushed before it
	wms      []int64
	ends     int
}

func (h *seqHead) push(vals []int, _ []int64) {
	for _, v := range vals {
		h.at[v] = len(h.barriers)
		h.data = append(h.data, v)
	}
}
func (h *seqHead) watermark(wm int64) { h.wms = append(h.wms, wm) }
func (h *seqHead) idle()              {}
func (h *seqHead) barrier(id uint64) {
	h.barriers = append(h.barriers, id)
	h.bAt = append(h.bAt, len(h.data))
}
func (h *seqHead) end() { h.ends++ }

// TestGateAlignmentOracle feeds a gate random interleavings of channels
// that each deliver records, rising watermarks, a rising subset of the
// checkpoint barriers (a source skips the barrier of a checkpoint aborted
// before it read again) and their end, and checks exactly-once alignment
// against what the channels sent: every record goes through once, in its
// channel's order; a barrier goes through iff every channel delivered it
// or ended without a later one, after exactly the records its channels
// sent before it (one barrier delivered somewhere is needed to start
// its alignment); barriers and watermarks only rise; the end comes once,
// after the final watermark.
func TestGateAlignmentOracle(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 5))
	for round := range 2000 {
		nch := 1 + r.IntN(4)
		maxB := 1 + r.IntN(5)
		chans := make([][]gateItem, nch)
		next := 0
		for c := range chans {
			wm := int64(0)
			for id := 1; id <= maxB; id++ {
				for range r.IntN(3) {
					if r.IntN(3) == 0 {
						wm += int64(1 + r.IntN(5))
						chans[c] = append(chans[c], gateItem{rt.KindWatermark, wm})
					}
					chans[c] = append(chans[c], gateItem{rt.KindData, int64(next)})
					next++
				}
				if r.IntN(4) > 0 {
					chans[c] = append(chans[c], gateItem{rt.KindBarrier, int64(id)})
				}
				if r.IntN(8) == 0 {
					break // the channel ends early
				}
			}
			chans[c] = append(chans[c], gateItem{rt.KindWatermark, rt.MaxWatermark}, gateItem{rt.KindEnd, 0})
		}
		// Which barriers must go through, and which records precede each.
		var want []uint64
		for id := 1; id <= maxB; id++ {
			ok, some := true, false
			for _, items := range chans {
				has, later := false, false
				for _, it := range items {
					if it.kind == rt.KindBarrier && it.arg == int64(id) {
						has = true
					}
					if it.kind == rt.KindBarrier && it.arg > int64(id) {
						later = true
					}
				}
				if !has && later {
					ok = false
				}
				some = some || has
			}
			if ok && some {
				want = append(want, uint64(id))
			}
		}
		name := fmt.Sprintf("round %d: channels %v", round, chans)

		free := make(chan *batch[int], 1024)
		g := newGate[int, int](nch, 8, nil, true)
		h := &seqHead{at: map[int]int{}}
		g.bind(collector[int](h))
		g.wms = rt.NewWatermarkTracker(nch)
		g.aligner = rt.NewAligner(nch)
		g.held = make([][]gateMsg[int, int], nch)
		g.t = &task{stats: rt.NewTaskStats()}
		pos := make([]int, nch)
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("%s: gate panicked: %v", name, p)
				}
			}()
			for {
				var open []int
				for c := range chans {
					if pos[c] < len(chans[c]) {
						open = append(open, c)
					}
				}
				if len(open) == 0 {
					break
				}
				c := open[r.IntN(len(open))]
				it := chans[c][pos[c]]
				pos[c]++
				b := &batch[int]{ch: int32(c), free: free, kind: it.kind, arg: it.arg}
				if it.kind == rt.KindData {
					b.vals, b.ts = []int{int(it.arg)}, []int64{0}
				}
				g.handle(gateMsg[int, int]{a: b})
				for len(free) > 0 {
					<-free
				}
			}
		}()
		if !slices.Equal(h.barriers, want) {
			t.Fatalf("%s: barriers %v, want %v", name, h.barriers, want)
		}
		if len(h.data) != next {
			t.Fatalf("%s: %d records through, want %d", name, len(h.data), next)
		}
		for c, items := range chans {
			last := -1
			passed := 0 // barriers of want this channel delivered so far
			for _, it := range items {
				switch it.kind {
				case rt.KindBarrier:
					if slices.Contains(want, uint64(it.arg)) {
						passed = slices.Index(want, uint64(it.arg)) + 1
					}
				case rt.KindData:
					v := int(it.arg)
					got, ok := h.at[v]
					if !ok {
						t.Fatalf("%s: record %d lost", name, v)
					}
					if i := slices.Index(h.data, v); i <= last {
						t.Fatalf("%s: channel %d out of order at %d", name, c, v)
					} else {
						last = i
					}
					// The record is after exactly the barriers its
					// channel delivered before it, and before the
					// others (a channel that ended without a barrier
					// had its records before it).
					if got != passed {
						t.Fatalf("%s: record %d of channel %d after %d barriers, want %d", name, v, c, got, passed)
					}
				}
			}
		}
		for i := 1; i < len(h.wms); i++ {
			if h.wms[i] <= h.wms[i-1] {
				t.Fatalf("%s: watermarks %v do not rise", name, h.wms)
			}
		}
		if len(h.wms) == 0 || h.wms[len(h.wms)-1] != rt.MaxWatermark || h.ends != 1 {
			t.Fatalf("%s: watermarks %v, %d ends", name, h.wms, h.ends)
		}
	}
}
