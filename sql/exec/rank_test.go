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

// oracleTie is the ranking's tie rule written plainly: the rows' columns
// in column order by row.Compare (NULL first), then the shorter row.
func oracleTie(a, b []row.Value) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := row.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

// rankOracle replays the changelog into a list of (row, arrival) — a
// retraction removes the earliest arrival of an equal row — then sorts
// each partition of the final multiset by the keys, the whole row and
// arrival and takes the first limit.
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
			if c := oracleTie(x.vals, y.vals); c != 0 {
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

// dedupBest is the brute force of deduplication: per partition (column
// 0) the row with the smallest (keep-first) or largest (keep-last)
// rowtime (column 1), the smallest row among equal rowtimes.
func dedupBest(evs []ev, keepLast bool) map[string][]row.Value {
	best := map[string][]row.Value{}
	for _, e := range evs {
		k := rowStr(e.C.Vals[:1])
		b, ok := best[k]
		if !ok {
			best[k] = e.C.Vals
			continue
		}
		c := row.Compare(e.C.Vals[1], b[1])
		if keepLast {
			c = -c
		}
		if c < 0 || (c == 0 && oracleTie(e.C.Vals, b) < 0) {
			best[k] = e.C.Vals
		}
	}
	return best
}

// TestDeduplicate: keep-first and keep-last by rowtime against a brute
// force, ties on the rowtime broken by the whole row; keep-first over
// in-order input replaces a row only by one of the same rowtime.
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
						evs = append(evs, ev{C: exec.Change{Vals: []row.Value{ival(r, 6, 0), row.Timestamp(ts), ival(r, 4, 20)}}, Ts: ts})
					}
					want := map[string]int{}
					for _, b := range dedupBest(evs, keepLast) {
						want[rowStr(append(slices.Clip(b), row.Int(1)))]++
					}
					env := stream.New(stream.WithParallelism(2))
					outs := collect(t, env, exec.Deduplicate(source(env, "in", evs, 1000), []int{0}, 1, keepLast, true, exec.RankConfig{}))
					sameMultiset(t, materialise(t, outs), want)
					checkRankOps(t, outs)
					if inOrder && !keepLast {
						byPart := map[string][]out{}
						for _, o := range outs {
							byPart[rowStr(o.C.Vals[:1])] = append(byPart[rowStr(o.C.Vals[:1])], o)
						}
						for _, po := range byPart {
							for i, o := range po {
								if o.C.Op == exec.UpdateAfter && row.Compare(o.C.Vals[1], po[i-1].C.Vals[1]) != 0 {
									t.Fatalf("keep-first over in-order input replaced %s by %s", rowStr(po[i-1].C.Vals), rowStr(o.C.Vals))
								}
							}
						}
					}
				})
			}
		}
	}
}

// TestDeduplicateFirstOnWatermark: keep-first by rowtime with
// WaitForWatermark over out-of-order on-time rows emits exactly one +I per
// partition: the row with the smallest rowtime, the smallest row among
// equal rowtimes.
func TestDeduplicateFirstOnWatermark(t *testing.T) {
	for _, par := range []int{1, 2} {
		for seed := range uint64(4) {
			t.Run(fmt.Sprintf("p%d/%d", par, seed), func(t *testing.T) {
				r := rand.New(rand.NewPCG(seed, 9))
				const delay = 10
				var evs []ev
				for i, e := range onTime(r, 300, 8, delay) {
					evs = append(evs, ev{C: exec.Change{Vals: []row.Value{e.C.Vals[0], row.Timestamp(e.Ts), row.Int(int64(300 - i))}}, Ts: e.Ts})
				}
				want := map[string]int{}
				for _, b := range dedupBest(evs, false) {
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

// TestRankTies: rows equal on the ORDER BY keys rank by their whole row
// (smaller first, NULL first), whatever their arrival order and the
// parallelism, in every ranking operator.
func TestRankTies(t *testing.T) {
	ts := row.Timestamp(5)
	// [p, t, a, b]: equal p and t; a and b decide.
	rows := [][]row.Value{
		{row.Int(1), ts, row.Int(2), row.String("a")},
		{row.Int(1), ts, row.Int(1), row.String("b")},
		{row.Int(1), ts, row.Int(1), row.String("ab")},
		{row.Int(1), ts, row.Null(), row.String("z")},
		{row.Int(1), ts, row.Int(1), row.String("b")}, // identical to the second
	}
	// In rank order: NULL first, then by a, then by b's bytes.
	ranked := []int{3, 2, 1, 4, 0}
	orders := [][]int{{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {2, 0, 4, 1, 3}}
	want := func(n int) map[string]int {
		m := map[string]int{}
		for i, k := range ranked[:n] {
			m[rowStr(append(slices.Clip(rows[k]), row.Int(int64(i+1))))]++
		}
		return m
	}
	for oi, ord := range orders {
		var evs []ev
		for _, k := range ord {
			evs = append(evs, ev{C: exec.Change{Vals: rows[k]}, Ts: 5})
		}
		for _, par := range []int{1, 2} {
			name := fmt.Sprintf("order%d/p%d", oi, par)
			t.Run("rank/"+name, func(t *testing.T) {
				for _, appendOnly := range []bool{false, true} {
					env := stream.New(stream.WithParallelism(par), stream.WithBatchSize(1))
					order := []exec.SortKey{{Col: 1, Desc: true}}
					outs := collect(t, env, exec.Rank(source(env, "in", evs, 0), []int{0}, order, 3, true, exec.RankConfig{InputAppendOnly: appendOnly}))
					sameMultiset(t, materialise(t, outs), want(3))
				}
			})
			t.Run("window/"+name, func(t *testing.T) {
				env := stream.New(stream.WithParallelism(par), stream.WithBatchSize(1))
				w := windowed(evs, 10) // window columns 4 and 5
				order := []exec.SortKey{{Col: 1}}
				outs := collect(t, env, exec.WindowRank(source(env, "in", w, 0), []int{0}, [2]int{4, 5}, order, 4, true, exec.RankConfig{}))
				got := map[string]int{}
				for _, o := range outs {
					v := append(slices.Clip(o.C.Vals[:4]), o.C.Vals[6])
					got[rowStr(v)]++
				}
				sameMultiset(t, got, want(4))
			})
			for _, keepLast := range []bool{false, true} {
				for _, wait := range []bool{false, true} {
					if keepLast && wait {
						continue
					}
					t.Run(fmt.Sprintf("dedup-last=%v-wait=%v/%s", keepLast, wait, name), func(t *testing.T) {
						env := stream.New(stream.WithParallelism(par), stream.WithBatchSize(1))
						outs := collect(t, env, exec.Deduplicate(source(env, "in", evs, 0), []int{0}, 1, keepLast, true, exec.RankConfig{WaitForWatermark: wait}))
						sameMultiset(t, materialise(t, outs), want(1))
					})
				}
			}
		}
	}
}
