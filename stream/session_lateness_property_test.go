package stream_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/sluicehq/sluice/window"
)

// sessionLateOracle restates session windows with allowed lateness
// sequentially for one split read one record at a time (a watermark
// follows every record), as Flink's merging window operator does: a
// record's session [ts, ts+gap) merges with the key's open sessions it
// overlaps; one that overlaps none and is past its cleanup time is late;
// a merged session whose end the watermark already passed fires at once
// (a late update), the others when the watermark reaches their end; a
// session is dropped at its end plus the lateness. It returns the counts
// each (key, session) emits, in order, and the late records.
func sessionLateOracle(evs []event, gap, bound, lateness int64) (map[wkey][]int64, []event) {
	type sess struct {
		w window.Window
		n int64
	}
	open := map[int][]sess{}
	emits := map[wkey][]int64{}
	var late []event
	wm := int64(math.MinInt64)
	maxTs := int64(math.MinInt64)
	emit := func(k int, s sess) { emits[wkey{k, s.w}] = append(emits[wkey{k, s.w}], s.n) }
	for _, e := range evs {
		nw := window.Window{Start: e.TS, End: e.TS + gap}
		merged := sess{w: nw, n: 1}
		var rest []sess
		hit := false
		for _, s := range open[e.Key] {
			if s.w.Overlaps(nw) {
				hit = true
				merged.w = merged.w.Cover(s.w)
				merged.n += s.n
				continue
			}
			rest = append(rest, s)
		}
		if !hit && nw.End-1+lateness <= wm {
			late = append(late, e)
		} else {
			open[e.Key] = append(rest, merged)
			if merged.w.End-1 <= wm {
				emit(e.Key, merged)
			}
		}
		maxTs = max(maxTs, e.TS)
		if nwm := maxTs - bound - 1; nwm > wm {
			for k, ss := range open {
				var keep []sess
				for _, s := range ss {
					if s.w.End-1 > wm && s.w.End-1 <= nwm {
						emit(k, s)
					}
					if s.w.End-1+lateness > nwm {
						keep = append(keep, s)
					}
				}
				open[k] = keep
			}
			wm = nwm
		}
	}
	for k, ss := range open { // the final watermark
		for _, s := range ss {
			if s.w.End-1 > wm {
				emit(k, s)
			}
		}
	}
	return emits, late
}

// TestSessionLatenessMatchesOracle: session windows with allowed lateness
// and a late side output, on records out of order beyond the bound, so
// that late records merge into fired sessions, bridge them, or are late.
// Checked on both state backends at parallelism 1 to 3 against
// sessionLateOracle.
func TestSessionLatenessMatchesOracle(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) { testSessionLatenessMatchesOracle(t, backend) })
	}
}

func testSessionLatenessMatchesOracle(t *testing.T, backend string) {
	r := newRand(t)
	for round := range 6 {
		p := 1 + round%3
		gap := int64(3 + r.IntN(10))
		bound := int64(r.IntN(10))
		lateness := int64(r.IntN(30))
		var evs []event
		for i := range 300 {
			evs = append(evs, event{Key: r.IntN(4), TS: int64(i)*3 + r.Int64N(4*bound+30), Value: int64(i)})
		}
		wantEmits, wantLate := sessionLateOracle(evs, gap, bound, lateness)
		name := fmt.Sprintf("p=%d gap=%d bound=%d lateness=%d", p, gap, bound, lateness)
		checkLateCounts(t, name, backend, p, evs, window.Session(time.Duration(gap)*time.Millisecond), bound, lateness, wantEmits, wantLate)
	}
}
