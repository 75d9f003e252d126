package exec_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/stream"
)

// rankInput makes a random changelog of rows [p, a, b, v]; with updates
// it retracts earlier rows (-D, or -U then +U of a new row).
func rankInput(r *rand.Rand, n int, updates bool) []ev {
	var live [][]row.Value
	var log []ev
	for i := range n {
		if updates && len(live) > 0 && r.IntN(3) == 0 {
			j := r.IntN(len(live))
			old := live[j]
			live = append(live[:j], live[j+1:]...)
			if r.IntN(2) == 0 {
				log = append(log, ev{C: exec.Change{Op: exec.Delete, Vals: old}, Ts: int64(i)})
				continue
			}
			nv := []row.Value{old[0], ival(r, 5, 10), ival(r, 3, 0), ival(r, 2, 0)}
			live = append(live, nv)
			log = append(log, ev{C: exec.Change{Op: exec.UpdateBefore, Vals: old}, Ts: int64(i)},
				ev{C: exec.Change{Op: exec.UpdateAfter, Vals: nv}, Ts: int64(i)})
			continue
		}
		v := []row.Value{ival(r, 3, 10), ival(r, 5, 10), ival(r, 3, 0), ival(r, 2, 0)}
		live = append(live, v)
		log = append(log, ev{C: exec.Change{Op: exec.Insert, Vals: v}, Ts: int64(i)})
	}
	return log
}

// oracleCmp orders two rows by the sort keys, written plainly.
func oracleCmp(order []exec.SortKey, a, b []row.Value) int {
	for _, k := range order {
		x, y := a[k.Col], b[k.Col]
		if x.IsNull() || y.IsNull() {
			if x.IsNull() && y.IsNull() {
				continue
			}
			c := 1
			if x.IsNull() {
				c = -1
			}
			if !k.NullsFirst {
				c = -c
			}
			return c
		}
		c := row.Compare(x, y)
		if k.Desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// rankOracle replays the changelog into a list of (row, arrival) — a
// retraction removes the earliest arrival of an equal row — then sorts
// each partition of the final multiset by the keys and arrival and takes
// the first limit.
func rankOracle(evs []ev, part int, order []exec.SortKey, limit int, rowNumber bool) map[string]int {
	type arr struct {
		vals []row.Value
		seq  int
	}
	var live []arr
	for i, e := range evs {
		if !e.C.Op.IsRetract() {
			live = append(live, arr{e.C.Vals, i})
			continue
		}
		best := -1
		for j, a := range live {
			if rowStr(a.vals) == rowStr(e.C.Vals) && (best < 0 || a.seq < live[best].seq) {
				best = j
			}
		}
		if best >= 0 {
			live = append(live[:best], live[best+1:]...)
		}
	}
	parts := map[string][]arr{}
	for _, a := range live {
		k := rowStr(a.vals[part : part+1])
		parts[k] = append(parts[k], a)
	}
	want := map[string]int{}
	for _, p := range parts {
		slices.SortFunc(p, func(x, y arr) int {
			if c := oracleCmp(order, x.vals, y.vals); c != 0 {
				return c
			}
			return x.seq - y.seq
		})
		for i, a := range p[:min(limit, len(p))] {
			v := a.vals
			if rowNumber {
				v = append(slices.Clip(v), row.Int(int64(i+1)))
			}
			want[rowStr(v)]++
		}
	}
	return want
}

func randomOrder(r *rand.Rand) []exec.SortKey {
	cols := []int{1, 2, 3}
	r.Shuffle(len(cols), func(i, j int) { cols[i], cols[j] = cols[j], cols[i] })
	order := make([]exec.SortKey, 1+r.IntN(2))
	for i := range order {
		order[i] = exec.SortKey{Col: cols[i], Desc: r.IntN(2) == 0, NullsFirst: r.IntN(2) == 0}
	}
	return order
}

// TestRankProperty: the materialised output of Rank equals the top-N of
// the final multiset per partition, for append-only and updating inputs,
// with and without the row number, at parallelism 1 and 2.
func TestRankProperty(t *testing.T) {
	for _, updates := range []bool{false, true} {
		for _, rowNumber := range []bool{false, true} {
			for _, par := range []int{1, 2} {
				for seed := range uint64(6) {
					t.Run(fmt.Sprintf("updates=%v/rownum=%v/p%d/%d", updates, rowNumber, par, seed), func(t *testing.T) {
						r := rand.New(rand.NewPCG(seed, uint64(par)))
						evs := rankInput(r, 150, updates)
						order := randomOrder(r)
						limit := 1 + r.IntN(4)
						env := stream.New(stream.WithParallelism(par), stream.WithBatchSize(6))
						cfg := exec.RankConfig{Name: "top", InputAppendOnly: !updates}
						outs := collect(t, env, exec.Rank(source(env, "in", evs, 0), []int{0}, order, int64(limit), rowNumber, cfg))
						sameMultiset(t, materialise(t, outs), rankOracle(evs, 0, order, limit, rowNumber))
						if rowNumber {
							checkRankOps(t, outs)
						}
					})
				}
			}
		}
	}
}

// checkRankOps checks that with row numbers each partition's changelog
// keeps one row per position: +I fills an empty position, -U/+U replace,
// -D empties it.
func checkRankOps(t *testing.T, all []out) {
	t.Helper()
	// One partition's changes come in order from one subtask; the
	// subtasks' batches interleave.
	byPart := map[string][]out{}
	for _, o := range all {
		k := rowStr(o.C.Vals[:1])
		byPart[k] = append(byPart[k], o)
	}
	for _, outs := range byPart {
		checkPartitionOps(t, outs)
	}
}

func checkPartitionOps(t *testing.T, outs []out) {
	t.Helper()
	held := map[string]string{} // position → row
	for i := 0; i < len(outs); i++ {
		c := outs[i].C
		pos := rowStr([]row.Value{c.Vals[0], c.Vals[len(c.Vals)-1]})
		switch c.Op {
		case exec.Insert:
			if h, ok := held[pos]; ok {
				t.Fatalf("+I %s at a held position (holding %s)", rowStr(c.Vals), h)
			}
			held[pos] = rowStr(c.Vals)
		case exec.UpdateBefore, exec.Delete:
			if held[pos] != rowStr(c.Vals) {
				t.Fatalf("%s %s but the position holds %q", c.Op, rowStr(c.Vals), held[pos])
			}
			delete(held, pos)
			if c.Op == exec.UpdateBefore {
				if i+1 >= len(outs) || outs[i+1].C.Op != exec.UpdateAfter {
					t.Fatalf("-U %s not followed by +U", rowStr(c.Vals))
				}
			}
		case exec.UpdateAfter:
			held[pos] = rowStr(c.Vals)
		}
	}
}

// TestDeduplicate: keep-first and keep-last by rowtime against a brute
// force; keep-first over in-order input emits only +I.
func TestDeduplicate(t *testing.T) {
	for _, keepLast := range []bool{false, true} {
		for _, inOrder := range []bool{false, true} {
			for seed := range uint64(4) {
				t.Run(fmt.Sprintf("last=%v/inorder=%v/%d", keepLast, inOrder, seed), func(t *testing.T) {
					r := rand.New(rand.NewPCG(seed, 3))
					var evs []ev
					for i := range 200 {
						ts := int64(i / 3)
						if !inOrder {
							ts = int64(r.IntN(40))
						}
						evs = append(evs, ev{C: exec.Change{Vals: []row.Value{ival(r, 6, 0), row.Timestamp(ts), row.Int(int64(i))}}, Ts: ts})
					}
					best := map[string][]row.Value{}
					for _, e := range evs {
						k := rowStr(e.C.Vals[:1])
						b, ok := best[k]
						if !ok {
							best[k] = e.C.Vals
							continue
						}
						c := row.Compare(e.C.Vals[1], b[1])
						if (!keepLast && c < 0) || (keepLast && c >= 0) {
							best[k] = e.C.Vals
						}
					}
					want := map[string]int{}
					for _, b := range best {
						want[rowStr(append(slices.Clip(b), row.Int(1)))]++
					}
					env := stream.New(stream.WithParallelism(2))
					outs := collect(t, env, exec.Deduplicate(source(env, "in", evs, 1000), []int{0}, 1, keepLast, true, exec.RankConfig{}))
					sameMultiset(t, materialise(t, outs), want)
					if inOrder && !keepLast {
						for _, o := range outs {
							if o.C.Op != exec.Insert {
								t.Fatalf("keep-first over in-order input emitted %s", o.C.Op)
							}
						}
						if len(outs) != len(want) {
							t.Fatalf("%d rows emitted, want one per partition (%d)", len(outs), len(want))
						}
					}
				})
			}
		}
	}
}

// TestDeduplicateFirstOnWatermark: keep-first by rowtime with
// WaitForWatermark over out-of-order on-time rows emits exactly one +I per
// partition: the row with the smallest rowtime, the first among equals.
func TestDeduplicateFirstOnWatermark(t *testing.T) {
	for _, par := range []int{1, 2} {
		for seed := range uint64(4) {
			t.Run(fmt.Sprintf("p%d/%d", par, seed), func(t *testing.T) {
				r := rand.New(rand.NewPCG(seed, 9))
				const delay = 10
				var evs []ev
				for i, e := range onTime(r, 300, 8, delay) {
					evs = append(evs, ev{C: exec.Change{Vals: []row.Value{e.C.Vals[0], row.Timestamp(e.Ts), row.Int(int64(i))}}, Ts: e.Ts})
				}
				best := map[string][]row.Value{}
				for _, e := range evs {
					k := rowStr(e.C.Vals[:1])
					if b, ok := best[k]; !ok || row.Compare(e.C.Vals[1], b[1]) < 0 {
						best[k] = e.C.Vals
					}
				}
				want := map[string]int{}
				for _, b := range best {
					want[rowStr(b)]++
				}
				env := stream.New(stream.WithParallelism(par), stream.WithBatchSize(4))
				outs := collect(t, env, exec.Deduplicate(source(env, "in", evs, delay), []int{0}, 1, false, false, exec.RankConfig{WaitForWatermark: true}))
				for _, o := range outs {
					if o.C.Op != exec.Insert {
						t.Fatalf("emitted %s: the output must be append-only", o.C.Op)
					}
					if o.Ts != o.C.Vals[1].AsInt() {
						t.Fatalf("row %s stamped %d, want its rowtime", rowStr(o.C.Vals), o.Ts)
					}
				}
				if len(outs) != len(want) {
					t.Fatalf("%d rows emitted, want %d (one per partition)", len(outs), len(want))
				}
				sameMultiset(t, materialise(t, outs), want)
			})
		}
	}
}
