package stream

import (
	"fmt"
	"strings"
	"testing"

	rt "github.com/sluicehq/sluice/internal/runtime"
)

// recHead records what a gate hands to its operator.
type recHead struct{ events []string }

func (h *recHead) push(vals []int, _ []int64) {
	for _, v := range vals {
		h.events = append(h.events, fmt.Sprint(v))
	}
}
func (h *recHead) watermark(wm int64) { h.events = append(h.events, fmt.Sprintf("wm%d", wm)) }
func (h *recHead) idle()              {}
func (h *recHead) barrier(id uint64)  { h.events = append(h.events, fmt.Sprintf("B%d", id)) }
func (h *recHead) end()               { h.events = append(h.events, "end") }

// TestGateOvertakenBarrier: when a checkpoint is aborted before every
// source emitted its barrier, a channel delivers the next barrier while
// the gate still aligns the old one. The gate abandons the old alignment
// (replaying what it held back), aligns the new barrier, and drops the
// old barrier when it arrives late on another channel.
func TestGateOvertakenBarrier(t *testing.T) {
	for _, tc := range []struct {
		name  string
		msgs  []string // "ch:kind:arg"
		want  string
		align bool
	}{
		{"aligned", []string{"0:B:1", "0:D:10", "1:D:20", "1:B:1", "1:D:21"}, "20 B1 10 21", true},
		{"overtaken", []string{"0:B:1", "0:D:10", "1:B:2", "0:D:11", "0:B:2", "0:D:12"}, "10 11 B2 12", true},
		{"overtaken twice by the replay", []string{"0:B:1", "0:D:10", "0:B:3", "0:D:11", "1:B:2", "1:D:20", "1:B:3", "1:D:21"}, "10 20 B3 11 21", true},
		{"late old barrier dropped", []string{"0:B:2", "1:B:1", "1:D:20", "1:B:2", "0:D:10"}, "20 B2 10", true},
		{"at least once", []string{"0:B:1", "0:D:10", "1:D:20", "1:B:1"}, "10 20 B1", false},
		// The end of channel 1 completes the alignment, whose replay
		// handles the held end of channel 0: one end all the same.
		{"ends during an alignment", []string{"0:B:1", "0:D:10", "0:E:0", "1:D:20", "1:E:0"}, "20 B1 10 wm9223372036854775807 end", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			free := make(chan *batch[int], 64)
			g := newGate[int, int](2, 8, nil, true)
			h := &recHead{}
			g.bind(collector[int](h))
			g.wms = rt.NewWatermarkTracker(2)
			g.aligner = rt.NewAligner(2)
			g.held = make([][]gateMsg[int, int], 2)
			g.noAlign = !tc.align
			g.t = &task{stats: rt.NewTaskStats()}
			for _, m := range tc.msgs {
				var ch int32
				var kind string
				var arg int64
				fmt.Sscanf(strings.ReplaceAll(m, ":", " "), "%d %s %d", &ch, &kind, &arg)
				b := &batch[int]{ch: ch, free: free}
				switch kind {
				case "B":
					b.kind, b.arg = rt.KindBarrier, arg
				case "E":
					b.kind = rt.KindEnd
				default:
					b.kind = rt.KindData
					b.vals, b.ts = []int{int(arg)}, []int64{0}
				}
				g.handle(gateMsg[int, int]{a: b})
			}
			if got := strings.Join(h.events, " "); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
