package stream

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/window"
)

// TestWindowIncrementalCorruptIncrementFallsBack: a tumbling window job on
// the memory backend checkpoints every few milliseconds (a chain of
// increments of the keys' window lists); the newest file of the latest
// checkpoint's chain is damaged, and a job restored at another
// parallelism detects it, restores the previous checkpoint and produces
// the oracle's results.
func TestWindowIncrementalCorruptIncrementFallsBack(t *testing.T) {
	const size = 10 * cwin // long windows: a checkpoint changes few of their keys
	data := genEvents(22, 2, 3000, 3000)
	sums := map[cres]int64{}
	for _, s := range data {
		for _, e := range s {
			sums[cres{Key: e.Key, Start: e.Ts - e.Ts%size}] += e.V
		}
	}
	var want []cres
	for k, v := range sums {
		k.Sum = v
		want = append(want, k)
	}
	sortRes(want)
	testCorruptIncrementFallsBack(t, data, want, func(s Stream[cev], sink Sink[Windowed[string, int64]]) {
		w := Window(KeyBy(s, func(e cev) string { return e.Key }), window.Tumbling(size*time.Millisecond))
		To(Aggregate(w, Sum(func(e cev) int64 { return e.V }), Name("sum")), sink, Name("sink"))
	})
}

// TestWindowRestoresV1Checkpoint: savepoints that the previous format
// wrote (one .window file per subtask, testdata/window-v1, taken by the
// build before incremental window snapshots at parallelism 2 with 300 of
// 600 events per split read; committed.json holds the transactions that
// run's transactional sink had committed) restore at parallelism 3, and
// the results of both runs together equal the oracle's.
func TestWindowRestoresV1Checkpoint(t *testing.T) {
	for _, kind := range []string{"tumbling", "session"} {
		t.Run(kind, func(t *testing.T) {
			data := genEvents(7, 2, 600, 20)
			want := oracle(data)
			build := buildAgg
			if kind == "session" {
				want, build = sessionOracle(data), buildSessionAgg
			}
			src := filepath.Join("testdata", "window-v1", kind)
			st := newTxStore()
			st.runs.Store(2) // the old run's sink subtasks
			b, err := os.ReadFile(filepath.Join(src, "committed.json"))
			if err == nil {
				err = json.Unmarshal(b, &st.committed)
			}
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
				t.Fatal(err)
			}
			chk := filepath.Join(dir, "chk-00000000000000000001")
			c, err := checkpoint.LoadDir(chk)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range c.Manifest.Files {
				if !strings.HasSuffix(f.Path, ".window") {
					t.Fatalf("test data: %s is not a .window file", f.Path)
				}
			}
			env := New(WithParallelism(3), WithBatchSize(8), WithMaxParallelism(16),
				WithCheckpointing(filepath.Join(dir, "new"), 5*time.Millisecond), WithRestoreFrom(chk), WithLogger(quietLog()))
			build(env, &pacedSource{data: data, chunk: 8}, func(e cev) cev { return e }, st)
			if err := env.Execute(context.Background()); err != nil {
				t.Fatal(err)
			}
			sameResults(t, st.results(), want)
		})
	}
}

// TestWindowCheckpointOtherBackendRefused: window state that the memory
// backend checkpointed (a chain, or a .window file of the previous
// format) is refused by a job on Pebble with an error naming the backend
// to use, instead of starting with empty windows.
func TestWindowCheckpointOtherBackendRefused(t *testing.T) {
	data := genEvents(9, 2, 400, 10)
	dir := t.TempDir()
	limit := &atomic.Int64{}
	limit.Store(200)
	parked := &atomic.Int64{}
	env := New(WithParallelism(2), WithBatchSize(8), WithMaxParallelism(16),
		WithCheckpointing(dir, time.Hour), WithCheckpointTimeout(time.Minute), WithLogger(quietLog()))
	buildAgg(env, &pacedSource{data: data, chunk: 8, limit: limit, parked: parked}, func(e cev) cev { return e }, newTxStore())
	job, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for parked.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("sources did not reach the cut")
		}
		time.Sleep(time.Millisecond)
	}
	chain, err := job.StopWithSavepoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := job.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(chainFilesOf(t, chain)) == 0 {
		t.Fatalf("savepoint %s holds no chain file", chain)
	}
	legacy := t.TempDir()
	if err := os.CopyFS(legacy, os.DirFS(filepath.Join("testdata", "window-v1", "tumbling"))); err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{chain, filepath.Join(legacy, "chk-00000000000000000001")} {
		st := newTxStore()
		st.runs.Store(2)
		env := New(pebbleOpt(t), WithParallelism(2), WithBatchSize(8), WithMaxParallelism(16),
			WithCheckpointing(t.TempDir(), time.Hour), WithRestoreFrom(from), WithLogger(quietLog()))
		buildAgg(env, &pacedSource{data: data, chunk: 8}, func(e cev) cev { return e }, st)
		err := env.Execute(context.Background())
		if err == nil || !strings.Contains(err.Error(), "restore it with the memory state backend") {
			t.Fatalf("restore of %s on Pebble: %v", from, err)
		}
	}
}

// chainFilesOf returns the chain files that checkpoint directory path
// names.
func chainFilesOf(t *testing.T, path string) []string {
	t.Helper()
	c, err := checkpoint.LoadDir(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range c.Manifest.Files {
		if isChainFile(f.Path) {
			out = append(out, f.Path)
		}
	}
	return out
}
