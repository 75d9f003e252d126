package stream

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/window"
)

// TestPebbleWindowsBoundedMemory opens one window for each of many keys
// and measures the heap in use (after a GC) once the window operator has
// taken every record, before the window fires: with the memory backend it
// grows with the keys; with Pebble (1 MiB cache, 256 KiB memtables) the
// accumulators are on disk and the heap stays within a fixed budget. It
// runs tumbling and session windows.
func TestPebbleWindowsBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("many keys")
	}
	for _, kind := range []string{"tumbling", "session"} {
		t.Run(kind, func(t *testing.T) { testPebbleWindowsBoundedMemory(t, kind) })
	}
}

func testPebbleWindowsBoundedMemory(t *testing.T, kind string) {
	n := int64(200_000)
	if raceOn {
		n = 40_000 // the memory backend still grows by about 8 MiB
	}
	data := make([]cev, n)
	for i := range data {
		data[i] = cev{Key: fmt.Sprintf("key-%07d", i), Ts: int64(i % 1000), V: 1, I: int64(i)}
	}
	growth := map[string]int64{}
	for _, backend := range []string{"memory", "pebble"} {
		limit := &atomic.Int64{}
		limit.Store(n)
		parked := &atomic.Int64{}
		opts := []Option{WithParallelism(1), WithBatchSize(512)}
		if backend == "pebble" {
			opts = append(opts, pebbleOpt(t))
		}
		env := New(opts...)
		src := FromSource(env, "events", &pacedSource{data: [][]cev{append(data, cev{Key: "end", Ts: 20_000})}, chunk: 512, limit: limit, parked: parked},
			WatermarkStrategy[cev]{Timestamp: func(e cev) int64 { return e.Ts }})
		a := window.Tumbling(10 * time.Second)
		if kind == "session" {
			a = window.Session(5 * time.Second)
		}
		w := Window(KeyBy(src, func(e cev) string { return e.Key }), a)
		var fired atomic.Int64
		To(Aggregate(w, Count[cev](), Name("count")), SinkFunc[Windowed[string, int64]](func(_ context.Context, rs []Windowed[string, int64]) error { fired.Add(int64(len(rs))); return nil }))
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := int64(ms.HeapInuse)
		job, err := env.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Minute) // a hang guard, not a timing assertion
		for windowIn(job) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the window operator took %d of %d records", backend, windowIn(job), n)
			}
			time.Sleep(time.Millisecond) // polling a counter
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		growth[backend] = int64(ms.HeapInuse) - base
		limit.Store(n + 1)
		if err := job.Wait(); err != nil {
			t.Fatal(err)
		}
		if fired.Load() != n+1 { // and the "end" key
			t.Fatalf("%s: %d windows fired, want %d", backend, fired.Load(), n+1)
		}
		t.Logf("%s: heap in use grew by %d KiB for %d open windows (%d B per key)", backend, growth[backend]>>10, n, growth[backend]/n)
	}
	// The budget of the Pebble run is independent of the key count
	// (caches, buffers, the emitter's batch), and well under the memory
	// backend's per-key cost times the keys.
	const budget = 16 << 20
	if growth["pebble"] > budget {
		t.Fatalf("pebble: heap grew by %d KiB with %d keys, want at most %d KiB", growth["pebble"]>>10, n, budget>>10)
	}
	if growth["memory"] < 2*growth["pebble"] {
		t.Fatalf("heap growth memory %d KiB, pebble %d KiB: the memory backend should grow much more with %d keys", growth["memory"]>>10, growth["pebble"]>>10, n)
	}
}

func windowIn(j *Job) int64 {
	var in int64
	for _, m := range j.Metrics() {
		if m.Operator == "count" {
			in += m.RecordsIn
		}
	}
	return in
}
