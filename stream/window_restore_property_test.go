package stream

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/checkpoint"

	"github.com/sluicehq/sluice/window"
)

// slidingOracle is oracle for sliding windows of size 3*cwin/2 every
// cwin/2 (a result's Start is its window's start).
func slidingOracle(data [][]cev) []cres {
	const size, slide = 3 * cwin / 2, cwin / 2
	sums := map[cres]int64{}
	for _, s := range data {
		for _, e := range s {
			for start := e.Ts - e.Ts%slide; start > e.Ts-size; start -= slide {
				sums[cres{Key: e.Key, Start: start}] += e.V
			}
		}
	}
	var out []cres
	for k, v := range sums {
		k.Sum = v
		out = append(out, k)
	}
	sortRes(out)
	return out
}

// joinOracle is the result of the window join of testWindowsRestore:
// every pair of an even-indexed (left) and an odd-indexed (right) event
// of the same key and tumbling window, as {key, left index, right index}.
func joinOracle(data [][]cev) []cres {
	type kw struct {
		key string
		win int64
	}
	left, right := map[kw][]int64{}, map[kw][]int64{}
	for _, s := range data {
		for _, e := range s {
			w := kw{e.Key, e.Ts - e.Ts%cwin}
			if e.I%2 == 0 {
				left[w] = append(left[w], e.I)
			} else {
				right[w] = append(right[w], e.I)
			}
		}
	}
	var out []cres
	for w, ls := range left {
		for _, l := range ls {
			for _, r := range right[w] {
				out = append(out, cres{Key: w.key, Start: l, Sum: r})
			}
		}
	}
	sortRes(out)
	return out
}

// TestWindowsRestoreMatchOracle runs tumbling, sliding and session
// windows and a tumbling window join on the memory and Pebble backends
// through a random number of savepoints taken at random points of the
// input, each run at a random parallelism from 1 to 4 restoring the
// previous run's savepoint: the exactly-once output equals the
// brute-force oracle. On the memory backend the input is paced and
// checkpoints are frequent, so that savepoints are chains of a base and
// increments (checked: some restored savepoint holds an increment).
func TestWindowsRestoreMatchOracle(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 3))
	var deltas atomic.Int64
	t.Cleanup(func() {
		t.Logf("restored savepoints holding increments: %d", deltas.Load())
		if !t.Failed() && deltas.Load() == 0 {
			t.Errorf("no restored savepoint of the memory backend held an increment (.kdelta)")
		}
	})
	for _, backend := range []string{"memory", "pebble"} {
		for _, kind := range []string{"tumbling", "sliding", "session", "join"} {
			for trial := range 2 {
				data := genEvents(r.Int64(), 1+r.IntN(4), 400+r.IntN(600), 5+r.IntN(40))
				stops := 1 + r.IntN(3)
				pars := make([]int, stops+1)
				for i := range pars {
					pars[i] = 1 + r.IntN(4)
				}
				t.Run(fmt.Sprintf("%s/%s/%d", backend, kind, trial), func(t *testing.T) {
					deltas.Add(int64(testWindowsRestore(t, backend, kind, data, pars, r.Uint64())))
				})
			}
		}
	}
}

// testWindowsRestore returns the number of savepoints it restored whose
// chains hold an increment.
func testWindowsRestore(t *testing.T, backend, kind string, data [][]cev, pars []int, seed uint64) int {
	r := rand.New(rand.NewPCG(seed, 5))
	var want []cres
	switch kind {
	case "tumbling":
		want = oracle(data)
	case "sliding":
		want = slidingOracle(data)
	case "session":
		want = sessionOracle(data)
	case "join":
		want = joinOracle(data)
	}
	build := func(env *Env, src Source[cev], st *txStore) {
		s := FromSource(env, "events", src, WatermarkStrategy[cev]{Timestamp: func(e cev) int64 { return e.Ts }})
		var a window.Assigner
		switch kind {
		case "tumbling":
			a = window.Tumbling(cwin * time.Millisecond)
		case "sliding":
			a = window.Sliding(3*cwin/2*time.Millisecond, cwin/2*time.Millisecond)
		case "session":
			a = window.Session(cgap * time.Millisecond)
		case "join":
			key := func(e cev) string { return e.Key }
			left := KeyBy(Filter(s, func(e cev) bool { return e.I%2 == 0 }), key)
			right := KeyBy(Filter(s, func(e cev) bool { return e.I%2 == 1 }), key)
			j := WindowJoin(left, right, window.Tumbling(cwin*time.Millisecond), func(l, r cev) cres { return cres{Key: l.Key, Start: l.I, Sum: r.I} }, Name("join"))
			To(Map(j, func(c cres) Windowed[string, int64] {
				return Windowed[string, int64]{Key: c.Key, Window: window.Window{Start: c.Start}, Value: c.Sum}
			}), txSink{st}, Name("sink"))
			return
		}
		w := Window(KeyBy(s, func(e cev) string { return e.Key }), a)
		To(Aggregate(w, Sum(func(e cev) int64 { return e.V }), Name("sum")), txSink{st}, Name("sink"))
	}
	dir := t.TempDir()
	st := newTxStore()
	minLen := len(data[0])
	for _, d := range data {
		minLen = min(minLen, len(d))
	}
	var from string
	cut := 0
	deltas := 0
	interval, pace := time.Duration(5+r.IntN(20))*time.Millisecond, time.Duration(0)
	if backend == "memory" {
		interval, pace = time.Duration(1+r.IntN(4))*time.Millisecond, 100*time.Microsecond
	}
	for i, par := range pars {
		var opts []Option
		if backend == "pebble" {
			opts = append(opts, pebbleOpt(t))
		}
		opts = append(opts, WithParallelism(par), WithBatchSize(1+r.IntN(32)), WithMaxParallelism(16),
			WithCheckpointing(dir, interval), WithLogger(quietLog()),
			// Frequent checkpoints, but a loaded machine must not time
			// out the savepoint.
			WithCheckpointTimeout(time.Minute))
		if from != "" {
			opts = append(opts, WithRestoreFrom(from))
			c, err := checkpoint.LoadDir(from)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range c.Manifest.Files {
				if strings.HasSuffix(f.Path, ".kdelta") {
					deltas++
					break
				}
			}
		}
		env := New(opts...)
		if i == len(pars)-1 {
			build(env, &pacedSource{data: data, chunk: 1 + r.IntN(20)}, st)
			if err := env.Execute(context.Background()); err != nil {
				t.Fatal(err)
			}
			break
		}
		// Stop with a savepoint once every split reached the next cut.
		cut = min(cut+1+r.IntN(max(1, (minLen-cut)/(len(pars)-i))), minLen-1)
		limit := &atomic.Int64{}
		limit.Store(int64(cut))
		parked := &atomic.Int64{}
		build(env, &pacedSource{data: data, chunk: 1 + r.IntN(20), pace: pace, limit: limit, parked: parked}, st)
		job, err := env.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for parked.Load() < int64(len(data)) {
			if time.Now().After(deadline) {
				t.Fatal("sources did not reach the cut")
			}
			time.Sleep(time.Millisecond)
		}
		if from, err = job.StopWithSavepoint(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := job.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	sameResults(t, st.results(), want)
	return deltas
}
