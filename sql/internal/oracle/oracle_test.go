package oracle

import (
	"fmt"
	"math/rand"
	"sort"
	"testing"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/types"
)

// TestAssignBruteForce checks window assignment against scanning every
// window start in a range around the timestamp.
func TestAssignBruteForce(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		slide := int64(1 + r.Intn(10))
		size := slide * int64(1+r.Intn(4))
		offset := int64(r.Intn(int(slide)))
		ts := int64(r.Intn(200) - 100)
		for _, fn := range []string{"TUMBLE", "HOP", "CUMULATE"} {
			sl := slide
			if fn == "TUMBLE" {
				sl = size
			}
			var want [][2]int64
			for s := offset - 1000*size; s <= ts+size; s += sl {
				switch fn {
				case "TUMBLE", "HOP":
					if ts >= s && ts < s+size {
						want = append(want, [2]int64{s, s + size})
					}
				case "CUMULATE":
					// Periods start at multiples of size; the windows of
					// a period end at each step.
					if (s-offset)%size != 0 {
						continue
					}
					for e := s + sl; e <= s+size; e += sl {
						if ts >= s && ts < e {
							want = append(want, [2]int64{s, e})
						}
					}
				}
			}
			got := assign(fn, ts, size, sl, offset)
			sortWindows(want)
			sortWindows(got)
			if len(got) != len(want) {
				t.Fatalf("%s(ts=%d, size=%d, slide=%d, offset=%d): got %v, want %v", fn, ts, size, sl, offset, got, want)
			}
			for k := range got {
				if got[k] != want[k] {
					t.Fatalf("%s(ts=%d, size=%d, slide=%d, offset=%d): got %v, want %v", fn, ts, size, sl, offset, got, want)
				}
			}
		}
	}
}

func sortWindows(w [][2]int64) {
	sort.Slice(w, func(i, j int) bool { return w[i][0] < w[j][0] || w[i][0] == w[j][0] && w[i][1] < w[j][1] })
}

// TestSessions checks session merging: rows of one key less than a gap
// apart share a window that ends a gap after the last of them.
func TestSessions(t *testing.T) {
	ts := types.Type{Kind: types.Timestamp, Precision: 3}
	in := &rel{cols: []Column{{Path: []string{"k"}, Type: types.TBigInt}, {Path: []string{"t"}, Type: ts}, {Path: []string{"ws"}, Type: ts}, {Path: []string{"we"}, Type: ts}, {Path: []string{"wt"}, Type: ts}}}
	for _, r := range [][2]int64{{1, 10}, {1, 14}, {2, 12}, {1, 30}, {1, 20}, {1, 5}} {
		in.add([]row.Value{row.Int(r[0]), row.Timestamp(r[1]), {}, {}, {}}, noWatermark)
	}
	out := sessions(in, 1, 5, 2, func(v []row.Value) string { return v[0].String() })
	got := map[string]bool{}
	for _, v := range out.rows {
		got[fmt.Sprintf("%d:%d@%d-%d", v[0].AsInt(), v[1].AsInt(), v[2].AsInt(), v[3].AsInt())] = true
	}
	// key 1: 5 → [5, 10) (touching windows do not merge); 10, 14 →
	// [10, 19); 20 → [20, 25); 30 → [30, 35). key 2: [12, 17).
	for _, w := range []string{"1:5@5-10", "1:10@10-19", "1:14@10-19", "1:20@20-25", "1:30@30-35", "2:12@12-17"} {
		if !got[w] {
			t.Errorf("missing %s in %v", w, got)
		}
	}
	if len(out.rows) != 6 {
		t.Errorf("%d rows, want 6", len(out.rows))
	}
}
