package stream

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

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

// TestWindowsRestoreMatchOracle runs tumbling, sliding and session
// windows on the memory and Pebble backends through a random number of
// savepoints taken at random points of the input, each run at a random
// parallelism from 1 to 4 restoring the previous run's savepoint: the
// exactly-once output equals the brute-force oracle.
func TestWindowsRestoreMatchOracle(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 3))
	for _, backend := range []string{"memory", "pebble"} {
		for _, kind := range []string{"tumbling", "sliding", "session"} {
			for trial := range 2 {
				data := genEvents(r.Int64(), 1+r.IntN(4), 400+r.IntN(600), 5+r.IntN(40))
				stops := 1 + r.IntN(3)
				pars := make([]int, stops+1)
				for i := range pars {
					pars[i] = 1 + r.IntN(4)
				}
				t.Run(fmt.Sprintf("%s/%s/%d", backend, kind, trial), func(t *testing.T) {
					testWindowsRestore(t, backend, kind, data, pars, r.Uint64())
				})
			}
		}
	}
}

func testWindowsRestore(t *testing.T, backend, kind string, data [][]cev, pars []int, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 5))
	var want []cres
	switch kind {
	case "tumbling":
		want = oracle(data)
	case "sliding":
		want = slidingOracle(data)
	case "session":
		want = sessionOracle(data)
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
	for i, par := range pars {
		var opts []Option
		if backend == "pebble" {
			opts = append(opts, pebbleOpt(t))
		}
		opts = append(opts, WithParallelism(par), WithBatchSize(1+r.IntN(32)), WithMaxParallelism(16),
			WithCheckpointing(dir, time.Duration(5+r.IntN(20))*time.Millisecond), WithLogger(quietLog()),
			// Frequent checkpoints, but a loaded machine must not time
			// out the savepoint.
			WithCheckpointTimeout(time.Minute))
		if from != "" {
			opts = append(opts, WithRestoreFrom(from))
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
		build(env, &pacedSource{data: data, chunk: 1 + r.IntN(20), limit: limit, parked: parked}, st)
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
}
