package stream

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
)

// chainFiles returns the increment-chain files that the manifest of
// complete checkpoint id in dir names.
func chainFiles(t *testing.T, dir string, id checkpoint.ID) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("chk-%020d", uint64(id)), "MANIFEST"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := checkpoint.DecodeManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range m.Files {
		if isChainFile(f.Path) {
			out = append(out, f.Path)
		}
	}
	return out
}

// TestIncrementalCorruptIncrementFallsBack: a KeyedProcess job on the
// memory backend checkpoints every few milliseconds (a chain of
// increments); the job stops mid-input, the newest file of the latest
// checkpoint's chain is damaged, and a job restored at another
// parallelism detects it (CRC-32C against the manifest), logs it, restores
// the previous checkpoint (its complete base+chain) and produces every
// result, with the values of the oracle.
func TestIncrementalCorruptIncrementFallsBack(t *testing.T) {
	data := genEvents(21, 2, 3000, 3000) // many keys: an increment is smaller than the state
	testCorruptIncrementFallsBack(t, data, oracle(data), buildKeyedAggTo)
}

// testCorruptIncrementFallsBack is TestIncrementalCorruptIncrementFallsBack
// for the operator that build adds, whose results on data are want.
func testCorruptIncrementFallsBack(t *testing.T, data [][]cev, want []cres, build func(Stream[cev], Sink[Windowed[string, int64]])) {
	dir := t.TempDir()
	var mu sync.Mutex
	var got []cres
	collect := SinkFunc[Windowed[string, int64]](func(_ context.Context, rs []Windowed[string, int64]) error {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range rs {
			got = append(got, cres{Key: r.Key, Start: r.Window.Start, Sum: r.Value})
		}
		return nil
	})
	limit := &atomic.Int64{}
	limit.Store(2000)
	parked := &atomic.Int64{}
	env := New(WithParallelism(2), WithBatchSize(16), WithMaxParallelism(16),
		WithCheckpointing(dir, 3*time.Millisecond), WithCheckpointRetention(20),
		// No timeouts: an aborted checkpoint breaks the chain (the next one
		// is a base), and the test needs increments.
		WithCheckpointTimeout(time.Minute), WithLogger(quietLog()))
	src := FromSource(env, "events", &pacedSource{data: data, chunk: 10, pace: 300 * time.Microsecond, limit: limit, parked: parked},
		WatermarkStrategy[cev]{Timestamp: func(e cev) int64 { return e.Ts }})
	build(src, collect)
	ctx, cancel := context.WithCancel(context.Background())
	job, err := env.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Run until the sources parked and two more checkpoints completed with
	// increments in their chains.
	deadline := time.Now().Add(60 * time.Second)
	var mark uint64
	for {
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoints with increments (stats %+v)", job.CheckpointStats())
		}
		if parked.Load() == 2 {
			if mark == 0 {
				mark = job.CheckpointStats().Completed
			} else if job.CheckpointStats().Completed >= mark+2 {
				break
			}
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	_ = job.Wait()
	store, err := checkpoint.NewDir(dir, checkpoint.WithLogger(quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := store.Complete()
	if err != nil || len(ids) < 2 {
		t.Fatalf("complete checkpoints %v, %v", ids, err)
	}
	// The victim: the newest increment that a checkpoint added to its
	// predecessor's chain; the restore must fall back to the newest
	// checkpoint whose chain does not hold it.
	// Only a file of the newest checkpoint's chain makes the restore fall
	// back: an older increment may have been compacted away since.
	newest := map[string]bool{}
	for _, f := range chainFiles(t, dir, ids[len(ids)-1]) {
		newest[f] = true
	}
	var victim string
	for _, suffix := range []string{".kdelta", ".kbase"} {
		for i := len(ids) - 1; i >= 1 && victim == ""; i-- {
			before := map[string]bool{}
			for _, f := range chainFiles(t, dir, ids[i-1]) {
				before[f] = true
			}
			for _, f := range chainFiles(t, dir, ids[i]) {
				if !before[f] && newest[f] && strings.HasSuffix(f, suffix) {
					victim = f
				}
			}
		}
		if victim != "" {
			break
		}
		// On a slow machine every checkpoint may have been a new base
		// (most keys changed between two of them): damage the newest base
		// instead, which exercises the same detection and fallback.
		t.Logf("no increment in the retained chains; damaging a base")
	}
	if victim == "" {
		t.Fatalf("no checkpoint of %v added a file to a retained predecessor's chain", ids)
	}
	var fallback checkpoint.ID
	for _, id := range ids {
		if !slices.Contains(chainFiles(t, dir, id), victim) {
			fallback = id
		}
	}
	p := filepath.Join(dir, filepath.FromSlash(victim))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{mu: &logMu, w: &logs}, nil))
	env2 := New(WithParallelism(3), WithBatchSize(16), WithMaxParallelism(16),
		WithCheckpointing(dir, 3*time.Millisecond), WithLogger(log))
	src2 := FromSource(env2, "events", &pacedSource{data: data, chunk: 50},
		WatermarkStrategy[cev]{Timestamp: func(e cev) int64 { return e.Ts }})
	build(src2, collect)
	if err := env2.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	logMu.Lock()
	l := logs.String()
	logMu.Unlock()
	if !strings.Contains(l, "skipping checkpoint") || !strings.Contains(l, filepath.Base(victim)) {
		t.Fatalf("the damaged file %s was not reported: %s", victim, l)
	}
	if !strings.Contains(l, fmt.Sprintf(`"restoring checkpoint" checkpoint=%s id=%d`, filepath.Join(dir, fmt.Sprintf("chk-%020d", uint64(fallback))), fallback)) {
		t.Fatalf("checkpoint %d was not restored: %s", fallback, l)
	}
	// The restore went back one checkpoint: results after it are emitted
	// again (the sink is not transactional); each is exact.
	mu.Lock()
	defer mu.Unlock()
	seen := map[cres]bool{}
	for _, r := range got {
		seen[r] = true
	}
	var uniq []cres
	for r := range seen {
		uniq = append(uniq, r)
	}
	sortRes(uniq)
	sameResults(t, uniq, want)
}

// TestIncrementalRandomRestarts: a KeyedProcess job with map state and
// timers on the memory backend fails at random points several times,
// restarting from its latest checkpoint (a chain of increments, compacted
// now and then), and is rescaled through a savepoint; the exactly-once
// output equals the oracle.
func TestIncrementalRandomRestarts(t *testing.T) { testIncrementalRandomRestarts(t) }

// TestIncrementalRandomRestartsCompacting is TestIncrementalRandomRestarts
// with chains of at most 3 files, so that the writers compact (fold the
// chain and the new changes into a base) every other increment.
func TestIncrementalRandomRestartsCompacting(t *testing.T) {
	defer func(n int) { maxChain = n }(maxChain)
	maxChain = 3
	testIncrementalRandomRestarts(t)
}

func testIncrementalRandomRestarts(t *testing.T) {
	for seed := range int64(3) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			data := genEvents(100+seed, 3, 1500, 25)
			rnd := rand.New(rand.NewSource(seed))
			fails := map[int64]bool{}
			for range 3 {
				fails[data[rnd.Intn(3)][rnd.Intn(1500)].I] = true
			}
			var fired atomic.Int64
			st := newTxStore()
			dir := t.TempDir()
			limit := &atomic.Int64{}
			limit.Store(int64(500 + rnd.Intn(500)))
			parked := &atomic.Int64{}
			var cur atomic.Pointer[Job]
			env := New(WithParallelism(1+rnd.Intn(3)), WithBatchSize(16), WithMaxParallelism(16),
				WithCheckpointing(dir, time.Duration(1+rnd.Intn(5))*time.Millisecond), WithRestartPolicy(10, time.Millisecond),
				WithJobHook(func(j *Job) { cur.Store(j) }), WithLogger(quietLog()))
			var once sync.Map
			failing := func(e cev) cev {
				if fails[e.I] {
					if _, loaded := once.LoadOrStore(e.I, true); !loaded {
						fired.Add(1)
						panic("injected failure")
					}
				}
				return e
			}
			src := FromSource(env, "events", &pacedSource{data: data, chunk: 10, pace: 200 * time.Microsecond, limit: limit, parked: parked},
				WatermarkStrategy[cev]{Timestamp: func(e cev) int64 { return e.Ts }})
			buildKeyedAggTo(Map(src, failing), txSink{st})
			done := make(chan error, 1)
			go func() { done <- env.Execute(context.Background()) }()
			deadline := time.Now().Add(60 * time.Second)
			var path string
			for path == "" {
				if time.Now().After(deadline) {
					t.Fatal("no savepoint")
				}
				if parked.Load() < 3 || cur.Load() == nil {
					time.Sleep(time.Millisecond)
					continue
				}
				// The job may fail (and restart) meanwhile: try again.
				p, err := cur.Load().StopWithSavepoint(context.Background())
				if err == nil {
					path = p
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			env2 := New(WithParallelism(1+rnd.Intn(4)), WithBatchSize(16), WithMaxParallelism(16),
				WithCheckpointing(dir, time.Duration(1+rnd.Intn(5))*time.Millisecond), WithRestoreFrom(path),
				WithRestartPolicy(10, time.Millisecond), WithLogger(quietLog()))
			src2 := FromSource(env2, "events", &pacedSource{data: data, chunk: 10, pace: 200 * time.Microsecond},
				WatermarkStrategy[cev]{Timestamp: func(e cev) int64 { return e.Ts }})
			buildKeyedAggTo(Map(src2, failing), txSink{st})
			if err := env2.Execute(context.Background()); err != nil {
				t.Fatal(err)
			}
			sameResults(t, st.results(), oracle(data))
		})
	}
}
