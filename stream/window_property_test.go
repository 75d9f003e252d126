package stream_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	statepebble "github.com/sluicehq/sluice/state/pebble"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/window"
)

type event struct {
	Key   int
	TS    int64
	Value int64
}

// genEvents returns per-split event lists whose timestamps are out of order
// by at most bound within each split.
func genEvents(r *rand.Rand, splits, perSplit, keys int, bound int64) [][]event {
	out := make([][]event, splits)
	for s := range splits {
		for i := range perSplit {
			ts := int64(i)*3 + r.Int64N(bound+1)
			out[s] = append(out[s], event{Key: r.IntN(keys), TS: ts, Value: r.Int64N(1000) - 300})
		}
	}
	return out
}

type result struct {
	Key        int
	Start, End int64
	Count      int64
	Sum        int64
	Min, Max   int64
	Avg        float64
}

func (r result) String() string {
	return fmt.Sprintf("k%d[%d,%d) n=%d sum=%d min=%d max=%d avg=%g", r.Key, r.Start, r.End, r.Count, r.Sum, r.Min, r.Max, r.Avg)
}

func sortResults(rs []result) {
	sort.Slice(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		if a.Start != b.Start {
			return a.Start < b.Start
		}
		return a.End < b.End
	})
}

func fold(key int, w window.Window, evs []event) result {
	r := result{Key: key, Start: w.Start, End: w.End, Min: evs[0].Value, Max: evs[0].Value}
	for _, e := range evs {
		r.Count++
		r.Sum += e.Value
		r.Min = min(r.Min, e.Value)
		r.Max = max(r.Max, e.Value)
	}
	r.Avg = float64(r.Sum) / float64(r.Count)
	return r
}

// oracle computes window results by brute force.
func oracle(kind string, size, slide, gap int64, parts [][]event) []result {
	var all []event
	for _, p := range parts {
		all = append(all, p...)
	}
	type wk struct {
		key int
		w   window.Window
	}
	groups := map[wk][]event{}
	switch kind {
	case "tumbling", "sliding":
		if kind == "tumbling" {
			slide = size
		}
		for _, e := range all {
			for start := -(size/slide + 1) * slide; start <= e.TS; start += slide {
				if e.TS >= start && e.TS < start+size {
					k := wk{e.Key, window.Window{Start: start, End: start + size}}
					groups[k] = append(groups[k], e)
				}
			}
		}
	case "session":
		byKey := map[int][]event{}
		for _, e := range all {
			byKey[e.Key] = append(byKey[e.Key], e)
		}
		for k, evs := range byKey {
			sort.Slice(evs, func(i, j int) bool { return evs[i].TS < evs[j].TS })
			startIdx := 0
			for i := 1; i <= len(evs); i++ {
				if i == len(evs) || evs[i].TS-evs[i-1].TS >= gap {
					w := window.Window{Start: evs[startIdx].TS, End: evs[i-1].TS + gap}
					groups[wk{k, w}] = append(groups[wk{k, w}], evs[startIdx:i]...)
					startIdx = i
				}
			}
		}
	}
	var out []result
	for k, evs := range groups {
		out = append(out, fold(k.key, k.w, evs))
	}
	sortResults(out)
	return out
}

func runWindows(t *testing.T, backend, kind string, size, slide, gap int64, parts [][]event, p, batch, credits int, bound int64) []result {
	t.Helper()
	env := stream.New(append(backendOpts(t, backend), stream.WithParallelism(p), stream.WithBatchSize(batch), stream.WithQueueCapacity(credits))...)
	src := stream.FromSource(env, "events", &stream.SliceSource[event]{Parts: parts},
		stream.BoundedOutOfOrderness(func(e event) int64 { return e.TS }, time.Duration(bound)*time.Millisecond))
	ks := stream.KeyBy(src, func(e event) int { return e.Key })
	var a window.Assigner
	switch kind {
	case "tumbling":
		a = window.Tumbling(time.Duration(size) * time.Millisecond)
	case "sliding":
		a = window.Sliding(time.Duration(size)*time.Millisecond, time.Duration(slide)*time.Millisecond)
	case "session":
		a = window.Session(time.Duration(gap) * time.Millisecond)
	}
	ws := stream.Window(ks, a)
	val := func(e event) int64 { return e.Value }
	counts := stream.Collect(stream.Aggregate(ws, stream.Count[event]()))
	sums := stream.Collect(stream.Aggregate(ws, stream.Sum(val)))
	mins := stream.Collect(stream.Aggregate(ws, stream.Min(val)))
	maxs := stream.Collect(stream.Aggregate(ws, stream.Max(val)))
	avgs := stream.Collect(stream.Aggregate(ws, stream.Avg(val)))
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	type wk struct {
		key int
		w   window.Window
	}
	res := map[wk]*result{}
	get := func(k int, w window.Window) *result {
		r := res[wk{k, w}]
		if r == nil {
			r = &result{Key: k, Start: w.Start, End: w.End}
			res[wk{k, w}] = r
		}
		return r
	}
	dup := map[string]bool{}
	check := func(what string, k int, w window.Window) {
		id := fmt.Sprint(what, k, w)
		if dup[id] {
			t.Errorf("%s result for key %d window %v emitted twice", what, k, w)
		}
		dup[id] = true
	}
	for _, r := range counts.Values() {
		check("count", r.Key, r.Window)
		get(r.Key, r.Window).Count = r.Value
	}
	for _, r := range sums.Values() {
		check("sum", r.Key, r.Window)
		get(r.Key, r.Window).Sum = r.Value
	}
	for _, r := range mins.Values() {
		check("min", r.Key, r.Window)
		get(r.Key, r.Window).Min = r.Value
	}
	for _, r := range maxs.Values() {
		check("max", r.Key, r.Window)
		get(r.Key, r.Window).Max = r.Value
	}
	for _, r := range avgs.Values() {
		check("avg", r.Key, r.Window)
		get(r.Key, r.Window).Avg = r.Value
	}
	var out []result
	for _, r := range res {
		out = append(out, *r)
	}
	sortResults(out)
	return out
}

// TestWindowsMatchOracle checks tumbling, sliding and session windows with
// count, sum, min, max and avg against a brute-force oracle, for random
// keyed events with bounded disorder, at parallelism 1 to 4, with random
// numbers of splits, batch sizes and queue capacities: the result sets must
// be identical. It runs on the memory and on the Pebble state backend.
func TestWindowsMatchOracle(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) { testWindowsMatchOracle(t, backend) })
	}
}

// backends are the state backends the window tests run on.
var backends = []string{"memory", "pebble"}

// backendOpts returns the options selecting backend: Pebble with a small
// cache and memtable, so that the tests exercise its disk path.
func backendOpts(t *testing.T, backend string) []stream.Option {
	if backend == "pebble" {
		return []stream.Option{stream.WithStateBackend(statepebble.Factory(statepebble.Options{Dir: t.TempDir(), CacheSize: 1 << 20, MemTableSize: 256 << 10}))}
	}
	return nil
}

func testWindowsMatchOracle(t *testing.T, backend string) {
	cases := []struct {
		kind             string
		size, slide, gap int64
	}{
		{kind: "tumbling", size: 50},
		{kind: "tumbling", size: 7},
		{kind: "sliding", size: 60, slide: 20},
		{kind: "sliding", size: 25, slide: 10},
		{kind: "session", gap: 9},
		{kind: "session", gap: 30},
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 7))
	for _, c := range cases {
		for trial := range 12 {
			p := 1 + trial%4
			name := fmt.Sprintf("%s-%d-%d-%d/p%d-%d", c.kind, c.size, c.slide, c.gap, p, trial)
			t.Run(name, func(t *testing.T) {
				bound := int64(r.IntN(40))
				parts := genEvents(r, 1+r.IntN(4), 100+r.IntN(300), 1+r.IntN(12), bound)
				batch := 1 + r.IntN(64)
				credits := 1 + r.IntN(4)
				want := oracle(c.kind, c.size, c.slide, c.gap, parts)
				got := runWindows(t, backend, c.kind, c.size, c.slide, c.gap, parts, p, batch, credits, bound)
				if !slices.Equal(got, want) {
					t.Fatalf("bound %d batch %d credits %d: got %d results, want %d\n%s", bound, batch, credits, len(got), len(want), diff(got, want))
				}
			})
		}
	}
}

func diff(got, want []result) string {
	g := map[string]bool{}
	for _, r := range got {
		g[r.String()] = true
	}
	w := map[string]bool{}
	for _, r := range want {
		w[r.String()] = true
	}
	s := ""
	n := 0
	for k := range g {
		if !w[k] && n < 10 {
			s += "unexpected " + k + "\n"
			n++
		}
	}
	for k := range w {
		if !g[k] && n < 20 {
			s += "missing    " + k + "\n"
			n++
		}
	}
	return s
}
