package stream

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/objstore"
	statepebble "github.com/sluicehq/sluice/state/pebble"
)

// TestObjectStoreCheckpoints: a KeyedProcess job (memory state with its
// chain of increments, or Pebble with its sstables) checkpoints into an
// object store that misbehaves: the store goes away (checkpoints are
// aborted, the job goes on), the put of a manifest fails (that checkpoint
// is not complete: no manifest is left, the previous one stays the
// latest), deletes fail during retention (tolerated). Later checkpoints
// complete each time. Then the job stops, and a job on "another machine"
// (a new storage over the same objects, fresh local and state
// directories, another parallelism) restores from the store alone; the
// exactly-once output equals the oracle.
func TestObjectStoreCheckpoints(t *testing.T) {
	for _, backend := range []string{"memory", "pebble"} {
		t.Run(backend, func(t *testing.T) { testObjectStoreCheckpoints(t, backend) })
	}
}

func testObjectStoreCheckpoints(t *testing.T, backend string) {
	data := genEvents(41, 2, 1500, 40)
	st := newTxStore()
	mem := objstore.NewMem()
	faulty := objstore.NewFaulty(mem)
	store1 := checkpoint.NewObjectStorage(faulty, "mem://job", checkpoint.WithLocalDir(t.TempDir()), checkpoint.WithLogger(quietLog()))
	stateOpt := func() []Option {
		if backend != "pebble" {
			return nil
		}
		return []Option{WithStateBackend(statepebble.Factory(statepebble.Options{Dir: t.TempDir(), CacheSize: 1 << 20, MemTableSize: 256 << 10}))}
	}
	limit := &atomic.Int64{}
	limit.Store(900)
	parked := &atomic.Int64{}
	env := New(append(stateOpt(), WithParallelism(2), WithBatchSize(16), WithMaxParallelism(16),
		WithCheckpointStore(store1, 3*time.Millisecond), WithCheckpointTimeout(time.Minute), WithLogger(quietLog()))...)
	src := FromSource(env, "events", &pacedSource{data: data, chunk: 10, pace: 200 * time.Microsecond, limit: limit, parked: parked},
		WatermarkStrategy[cev]{Timestamp: func(e cev) int64 { return e.Ts }})
	buildKeyedAggTo(src, txSink{st})
	// Every shared file (a chain file, an sstable) is put once; armed
	// makes the next manifest put fail.
	var failed atomic.Value
	var armed atomic.Bool
	var putMu sync.Mutex
	sharedPuts := map[string]int{}
	faulty.SetHook(func(op objstore.Op, key string) error {
		if op != objstore.OpPut {
			return nil
		}
		if strings.HasSuffix(key, "/MANIFEST") && armed.CompareAndSwap(true, false) {
			failed.Store(key)
			return objstore.ErrInjected
		}
		if strings.HasPrefix(key, "shared/") {
			putMu.Lock()
			sharedPuts[key]++
			putMu.Unlock()
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	job, err := env.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitFor := func(what string, cond func(s CheckpointStats) bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for !cond(job.CheckpointStats()) {
			select {
			case <-job.done:
				t.Fatalf("the job ended while waiting for %s: %v", what, job.Wait())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (stats %+v)", what, job.CheckpointStats())
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor("two checkpoints", func(s CheckpointStats) bool { return s.Completed >= 2 })

	// The store goes away: checkpoints are aborted, the job goes on.
	faulty.SetDown(true)
	ab := job.CheckpointStats().Aborted
	waitFor("aborts while the store is down", func(s CheckpointStats) bool { return s.Aborted >= ab+2 })
	faulty.SetDown(false)
	c := job.CheckpointStats().Completed
	waitFor("checkpoints after the store came back", func(s CheckpointStats) bool { return s.Completed >= c+2 })

	// The put of one manifest fails: that checkpoint is not complete.
	armed.Store(true)
	waitFor("a failed manifest put", func(CheckpointStats) bool { return failed.Load() != nil })
	c = job.CheckpointStats().Completed
	waitFor("checkpoints after the failed manifest", func(s CheckpointStats) bool { return s.Completed >= c+2 })
	if _, err := mem.Stat(context.Background(), failed.Load().(string)); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("the manifest whose put failed exists: %v", err)
	}
	for _, r := range job.CheckpointHistory() {
		if r.Completed && strings.HasPrefix(failed.Load().(string), strings.TrimPrefix(store1.Location(checkpoint.ID(r.ID)), "mem://job/")) {
			t.Fatalf("checkpoint %d counted as completed although its manifest put failed", r.ID)
		}
	}

	// Deletes fail during retention: tolerated.
	faulty.FailNext(objstore.OpDelete, 20)
	c = job.CheckpointStats().Completed
	waitFor("checkpoints while deletes fail", func(s CheckpointStats) bool { return s.Completed >= c+3 })
	waitFor("the sources parked", func(CheckpointStats) bool { return parked.Load() == 2 })
	c = job.CheckpointStats().Completed
	waitFor("a checkpoint of the parked sources", func(s CheckpointStats) bool { return s.Completed >= c+1 })
	cancel()
	_ = job.Wait()
	putMu.Lock()
	if len(sharedPuts) == 0 {
		t.Fatal("no shared file was put")
	}
	for k, n := range sharedPuts {
		if n > 1 {
			t.Fatalf("shared file %s put %d times", k, n)
		}
	}
	putMu.Unlock()

	// Another machine: only the objects are shared.
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{mu: &logMu, w: &logs}, nil))
	local2 := t.TempDir()
	store2 := checkpoint.NewObjectStorage(mem, "mem://job", checkpoint.WithLocalDir(local2), checkpoint.WithLogger(log))
	env2 := New(append(stateOpt(), WithParallelism(3), WithBatchSize(16), WithMaxParallelism(16),
		WithCheckpointStore(store2, 5*time.Millisecond), WithLogger(log))...)
	src2 := FromSource(env2, "events", &pacedSource{data: data, chunk: 50},
		WatermarkStrategy[cev]{Timestamp: func(e cev) int64 { return e.Ts }})
	buildKeyedAggTo(src2, txSink{st})
	if err := env2.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	logMu.Lock()
	l := logs.String()
	logMu.Unlock()
	if !strings.Contains(l, "restoring checkpoint") {
		t.Fatalf("the second job did not restore: %s", l)
	}
	sameResults(t, st.results(), oracle(data))
	// The restored copy was released.
	if ents, _ := os.ReadDir(local2); len(ents) != 0 {
		t.Fatalf("local directory holds %d entries after the job, want none", len(ents))
	}
}
