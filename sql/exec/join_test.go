package exec_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/stream"
)

// ev is a test input record: a change and its event time.
type ev struct {
	C  exec.Change
	Ts int64
}

// out is an output record with its timestamp.
type out struct {
	C  exec.Change
	Ts int64
}

func source(env *stream.Env, name string, evs []ev, delay int64) stream.Stream[exec.Change] {
	s := stream.FromSource(env, name, stream.FromSlice(evs, 1), stream.WatermarkStrategy[ev]{
		Timestamp:         func(e ev) int64 { return e.Ts },
		MaxOutOfOrderness: msDur(delay),
	})
	return stream.Map(s, func(e ev) exec.Change { return e.C }, stream.Name(name+"-change"), stream.Parallelism(1))
}

// collect runs the job and returns the output with record timestamps.
func collect(t *testing.T, env *stream.Env, s stream.Stream[exec.Change]) []out {
	t.Helper()
	c := stream.Collect(stream.FlatMap(s, func(v exec.Change, e *stream.Emitter[out]) {
		e.Emit(out{C: v, Ts: e.Timestamp()})
	}, stream.Name("stamp")))
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c.Values()
}

func rowStr(vals []row.Value) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		if v.IsNull() {
			parts[i] = "∅"
		} else {
			parts[i] = v.String()
		}
	}
	return "(" + strings.Join(parts, ",") + ")"
}

// materialise applies a changelog to a multiset; it reports a row whose
// count goes negative at the end.
func materialise(t *testing.T, outs []out) map[string]int {
	t.Helper()
	m := map[string]int{}
	for _, o := range outs {
		k := rowStr(o.C.Vals)
		if o.C.Op.IsRetract() {
			m[k]--
		} else {
			m[k]++
		}
	}
	for k, n := range m {
		if n < 0 {
			t.Errorf("row %s retracted more often than inserted (%d)", k, n)
		}
		if n == 0 {
			delete(m, k)
		}
	}
	return m
}

func sameMultiset(t *testing.T, got, want map[string]int) {
	t.Helper()
	var diff []string
	for k, n := range want {
		if got[k] != n {
			diff = append(diff, fmt.Sprintf("%s: got %d want %d", k, got[k], n))
		}
	}
	for k, n := range got {
		if _, ok := want[k]; !ok {
			diff = append(diff, fmt.Sprintf("%s: got %d want 0", k, n))
		}
	}
	if len(diff) > 0 {
		slices.Sort(diff)
		if len(diff) > 15 {
			diff = diff[:15]
		}
		t.Fatalf("%d rows differ:\n%s", len(diff), strings.Join(diff, "\n"))
	}
}

func ival(r *rand.Rand, n int, nullPct int) row.Value {
	if r.IntN(100) < nullPct {
		return row.Null()
	}
	return row.Int(int64(r.IntN(n)))
}

// changelog makes a random changelog of rows [key, v]: inserts, and
// retractions (-D, or -U followed by +U of a new row) of rows inserted
// before and not yet retracted. It returns the log and the final
// multiset.
func changelog(r *rand.Rand, n int, keys int, ts func(i int) int64) ([]ev, [][]row.Value) {
	var live [][]row.Value
	var log []ev
	for i := range n {
		if len(live) > 0 && r.IntN(3) == 0 {
			j := r.IntN(len(live))
			old := live[j]
			live = append(live[:j], live[j+1:]...)
			if r.IntN(2) == 0 {
				log = append(log, ev{C: exec.Change{Op: exec.Delete, Vals: old}, Ts: ts(i)})
			} else {
				nv := []row.Value{old[0], ival(r, 4, 0)}
				log = append(log, ev{C: exec.Change{Op: exec.UpdateBefore, Vals: old}, Ts: ts(i)},
					ev{C: exec.Change{Op: exec.UpdateAfter, Vals: nv}, Ts: ts(i)})
				live = append(live, nv)
			}
			continue
		}
		v := []row.Value{ival(r, keys, 8), ival(r, 4, 5)}
		live = append(live, v)
		log = append(log, ev{C: exec.Change{Op: exec.Insert, Vals: v}, Ts: ts(i)})
	}
	return log, live
}

func cat(l, r []row.Value, lw, rw int) []row.Value {
	o := make([]row.Value, lw+rw)
	copy(o, l)
	copy(o[lw:], r)
	return o
}

// nestedLoop is the oracle: the join of the final multisets.
func nestedLoop(kind exec.JoinKind, ls, rs [][]row.Value, lk, rk []int, cond func(l, r []row.Value) bool, lw, rw int) map[string]int {
	m := map[string]int{}
	eq := func(l, r []row.Value) bool {
		for i := range lk {
			if l[lk[i]].IsNull() || r[rk[i]].IsNull() || !row.Equal(l[lk[i]], r[rk[i]]) {
				return false
			}
		}
		return cond == nil || cond(l, r)
	}
	rMatched := make([]bool, len(rs))
	for _, l := range ls {
		n := 0
		for j, r := range rs {
			if eq(l, r) {
				n++
				rMatched[j] = true
				if kind != exec.JoinSemi && kind != exec.JoinAnti {
					m[rowStr(cat(l, r, lw, rw))]++
				}
			}
		}
		switch {
		case kind == exec.JoinSemi && n > 0, kind == exec.JoinAnti && n == 0:
			m[rowStr(l)]++
		case (kind == exec.JoinLeft || kind == exec.JoinFull) && n == 0:
			m[rowStr(cat(l, nil, lw, rw))]++
		}
	}
	if kind == exec.JoinRight || kind == exec.JoinFull {
		for j, r := range rs {
			if !rMatched[j] {
				m[rowStr(cat(nil, r, lw, rw))]++
			}
		}
	}
	return m
}

var allKinds = []exec.JoinKind{exec.JoinInner, exec.JoinLeft, exec.JoinRight, exec.JoinFull, exec.JoinSemi, exec.JoinAnti}

func oddSum(l, r []row.Value) bool {
	if l[1].IsNull() || r[1].IsNull() {
		return false
	}
	return (l[1].AsInt()+r[1].AsInt())%2 == 1
}

// TestJoinProperty: the materialised output of Join equals the nested-loop
// join of the final multisets, for every kind, with and without a
// residual condition and a key, at parallelism 1 and 2.
func TestJoinProperty(t *testing.T) {
	for _, kind := range allKinds {
		for _, par := range []int{1, 2} {
			for _, variant := range []string{"eq", "eq+cond", "cross+cond"} {
				for seed := range uint64(4) {
					t.Run(fmt.Sprintf("%s/p%d/%s/%d", kind, par, variant, seed), func(t *testing.T) {
						r := rand.New(rand.NewPCG(seed, uint64(kind)*7+uint64(par)))
						ls, lfinal := changelog(r, 60+r.IntN(60), 5, func(i int) int64 { return int64(i) })
						rs, rfinal := changelog(r, 60+r.IntN(60), 5, func(i int) int64 { return int64(i) })
						lk, rk := []int{0}, []int{0}
						var cond func(l, r []row.Value) bool
						switch variant {
						case "eq+cond":
							cond = oddSum
						case "cross+cond":
							lk, rk, cond = nil, nil, oddSum
						}
						env := stream.New(stream.WithParallelism(par), stream.WithBatchSize(7))
						j := exec.Join(source(env, "l", ls, 0), source(env, "r", rs, 0), lk, rk, kind, cond, 2, 2, exec.JoinConfig{Name: "j"})
						outs := collect(t, env, j)
						sameMultiset(t, materialise(t, outs), nestedLoop(kind, lfinal, rfinal, lk, rk, cond, 2, 2))
					})
				}
			}
		}
	}
}

// TestJoinAppendOnlyInnerEmitsInserts: an inner join of append-only
// inputs emits only +I, timestamped with the later row.
func TestJoinAppendOnlyInnerEmitsInserts(t *testing.T) {
	l := []ev{{exec.Change{Vals: []row.Value{row.Int(1), row.String("a")}}, 10}, {exec.Change{Vals: []row.Value{row.Int(2), row.String("b")}}, 30}}
	r := []ev{{exec.Change{Vals: []row.Value{row.Int(1), row.String("x")}}, 20}, {exec.Change{Vals: []row.Value{row.Int(2), row.String("y")}}, 5}}
	env := stream.New(stream.WithParallelism(2))
	outs := collect(t, env, exec.Join(source(env, "l", l, 0), source(env, "r", r, 0), []int{0}, []int{0}, exec.JoinInner, nil, 2, 2, exec.JoinConfig{}))
	got := map[string]int64{}
	for _, o := range outs {
		if o.C.Op != exec.Insert {
			t.Fatalf("op %s in %v", o.C.Op, o)
		}
		got[rowStr(o.C.Vals)] = o.Ts
	}
	want := map[string]int64{"(1,a,1,x)": 20, "(2,b,2,y)": 30}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// onTime makes n events [key, v] at out-of-order times that are never
// behind maxTs - delay, so that none is late at any operator downstream.
func onTime(r *rand.Rand, n int, keys int, delay int64) []ev {
	var evs []ev
	hi := int64(0)
	for range n {
		ts := hi + int64(r.IntN(6))
		if r.IntN(3) == 0 {
			ts = max(0, hi-int64(r.IntN(int(delay)+1)))
		}
		hi = max(hi, ts)
		evs = append(evs, ev{C: exec.Change{Vals: []row.Value{ival(r, keys, 5), ival(r, 4, 0), row.Timestamp(ts)}}, Ts: ts})
	}
	return evs
}

func stampStr(vals []row.Value, ts int64) string { return fmt.Sprintf("%s@%d", rowStr(vals), ts) }

func stamped(outs []out) map[string]int {
	m := map[string]int{}
	for _, o := range outs {
		m[stampStr(o.C.Vals, o.Ts)]++
	}
	return m
}

// TestIntervalJoinProperty compares IntervalJoin with a nested loop over
// out-of-order on-time events, output timestamps included.
func TestIntervalJoinProperty(t *testing.T) {
	for _, kind := range allKinds[:4] {
		for _, par := range []int{1, 2} {
			for seed := range uint64(4) {
				t.Run(fmt.Sprintf("%s/p%d/%d", kind, par, seed), func(t *testing.T) {
					r := rand.New(rand.NewPCG(seed, uint64(kind)*3+uint64(par)))
					const delay = 8
					ls, rs := onTime(r, 80, 4, delay), onTime(r, 80, 4, delay)
					lo, hi := int64(r.IntN(10))-5, int64(r.IntN(10))
					hi = max(hi, lo)
					var cond func(l, r []row.Value) bool
					if seed%2 == 1 {
						cond = oddSum
					}
					env := stream.New(stream.WithParallelism(par), stream.WithBatchSize(5))
					outs := collect(t, env, exec.IntervalJoin(source(env, "l", ls, delay), source(env, "r", rs, delay), []int{0}, []int{0}, kind, msDur(lo), msDur(hi), cond, 3, 3, exec.JoinConfig{}))
					want := map[string]int{}
					rMatched := make([]bool, len(rs))
					for _, l := range ls {
						matched := false
						for j, rr := range rs {
							d := rr.Ts - l.Ts
							if l.C.Vals[0].IsNull() || rr.C.Vals[0].IsNull() || !row.Equal(l.C.Vals[0], rr.C.Vals[0]) || d < lo || d > hi || (cond != nil && !cond(l.C.Vals, rr.C.Vals)) {
								continue
							}
							want[stampStr(cat(l.C.Vals, rr.C.Vals, 3, 3), max(l.Ts, rr.Ts))]++
							matched, rMatched[j] = true, true
						}
						if !matched && (kind == exec.JoinLeft || kind == exec.JoinFull) {
							want[stampStr(cat(l.C.Vals, nil, 3, 3), l.Ts)]++
						}
					}
					for j, rr := range rs {
						if !rMatched[j] && (kind == exec.JoinRight || kind == exec.JoinFull) {
							want[stampStr(cat(nil, rr.C.Vals, 3, 3), rr.Ts)]++
						}
					}
					for _, o := range outs {
						if o.C.Op != exec.Insert {
							t.Fatalf("op %s: interval join output must be append-only", o.C.Op)
						}
					}
					sameMultiset(t, stamped(outs), want)
				})
			}
		}
	}
}

// windowed adds window_start, window_end (tumbling, size) columns to
// events [key, v, ts].
func windowed(evs []ev, size int64) []ev {
	out := make([]ev, len(evs))
	for i, e := range evs {
		s := e.Ts - e.Ts%size
		out[i] = ev{C: exec.Change{Vals: append(slices.Clip(e.C.Vals), row.Timestamp(s), row.Timestamp(s+size))}, Ts: e.Ts}
	}
	return out
}

// TestWindowJoinProperty compares WindowJoin with a nested loop per
// window over out-of-order on-time events.
func TestWindowJoinProperty(t *testing.T) {
	for _, kind := range allKinds[:4] {
		for _, par := range []int{1, 2} {
			for seed := range uint64(4) {
				t.Run(fmt.Sprintf("%s/p%d/%d", kind, par, seed), func(t *testing.T) {
					r := rand.New(rand.NewPCG(seed, uint64(kind)*5+uint64(par)))
					const delay, size = 6, 10
					ls, rs := windowed(onTime(r, 80, 3, delay), size), windowed(onTime(r, 80, 3, delay), size)
					var cond func(l, r []row.Value) bool
					if seed%2 == 1 {
						cond = oddSum
					}
					env := stream.New(stream.WithParallelism(par), stream.WithBatchSize(5))
					win := [2]int{3, 4}
					outs := collect(t, env, exec.WindowJoin(source(env, "l", ls, delay), source(env, "r", rs, delay), []int{0}, []int{0}, win, win, kind, cond, 5, 5, exec.JoinConfig{}))
					want := map[string]int{}
					rMatched := make([]bool, len(rs))
					for _, l := range ls {
						matched := false
						end := l.C.Vals[4].AsInt()
						for j, rr := range rs {
							if l.C.Vals[0].IsNull() || rr.C.Vals[0].IsNull() || !row.Equal(l.C.Vals[0], rr.C.Vals[0]) || rr.C.Vals[4].AsInt() != end || (cond != nil && !cond(l.C.Vals, rr.C.Vals)) {
								continue
							}
							want[stampStr(cat(l.C.Vals, rr.C.Vals, 5, 5), end-1)]++
							matched, rMatched[j] = true, true
						}
						if !matched && (kind == exec.JoinLeft || kind == exec.JoinFull) {
							want[stampStr(cat(l.C.Vals, nil, 5, 5), end-1)]++
						}
					}
					for j, rr := range rs {
						if !rMatched[j] && (kind == exec.JoinRight || kind == exec.JoinFull) {
							want[stampStr(cat(nil, rr.C.Vals, 5, 5), rr.C.Vals[4].AsInt()-1)]++
						}
					}
					sameMultiset(t, stamped(outs), want)
				})
			}
		}
	}
}

// TestJoinAppendOnlyProperty: with JoinConfig.AppendOnly on insert-only
// sides (one or both; the other side updating) and the condition given
// as JoinedCond, Join still equals the nested-loop join of the final
// multisets, duplicates included.
func TestJoinAppendOnlyProperty(t *testing.T) {
	joined := func(v []row.Value) bool { return oddSum(v[:2], v[2:]) }
	for _, kind := range allKinds {
		for _, sides := range [][2]bool{{true, true}, {true, false}, {false, true}} {
			for seed := range uint64(3) {
				t.Run(fmt.Sprintf("%s/%v/%d", kind, sides, seed), func(t *testing.T) {
					r := rand.New(rand.NewPCG(seed, uint64(kind)*11+3))
					inserts := func() ([]ev, [][]row.Value) {
						var log []ev
						var live [][]row.Value
						for i := range 50 + r.IntN(50) {
							v := []row.Value{ival(r, 5, 8), ival(r, 3, 5)} // few values: duplicates
							live = append(live, v)
							log = append(log, ev{C: exec.Change{Op: exec.Insert, Vals: v}, Ts: int64(i)})
						}
						return log, live
					}
					var ls, rs []ev
					var lfinal, rfinal [][]row.Value
					if sides[0] {
						ls, lfinal = inserts()
					} else {
						ls, lfinal = changelog(r, 80, 5, func(i int) int64 { return int64(i) })
					}
					if sides[1] {
						rs, rfinal = inserts()
					} else {
						rs, rfinal = changelog(r, 80, 5, func(i int) int64 { return int64(i) })
					}
					env := stream.New(stream.WithParallelism(2), stream.WithBatchSize(5))
					cfg := exec.JoinConfig{Name: "j", AppendOnly: sides, JoinedCond: joined}
					j := exec.Join(source(env, "l", ls, 0), source(env, "r", rs, 0), []int{0}, []int{0}, kind, nil, 2, 2, cfg)
					outs := collect(t, env, j)
					sameMultiset(t, materialise(t, outs), nestedLoop(kind, lfinal, rfinal, []int{0}, []int{0}, oddSum, 2, 2))
				})
			}
		}
	}
}
