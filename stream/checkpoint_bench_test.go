package stream

// Checkpoint benchmarks; figures in docs/benchmarks-checkpoint.md.
//
//	go test -run '^$' -bench 'Checkpoint' -benchtime 4000000x -count 5 ./stream/

import (
	"context"
	"io/fs"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/window"
)

type benchEv struct {
	Key int64
	Ts  int64
}

// BenchmarkCheckpointedAggregation: a keyed tumbling sum over 10,000 keys,
// without checkpoints and with exactly-once checkpoints every second (the
// job runs several seconds at -benchtime 4000000x). One op is one record.
func BenchmarkCheckpointedAggregation(b *testing.B) {
	for _, mode := range []string{"none", "every-1s"} {
		b.Run(mode, func(b *testing.B) {
			opts := []Option{WithParallelism(2), WithLogger(quietLog())}
			if mode != "none" {
				opts = append(opts, WithCheckpointing(b.TempDir(), time.Second))
			}
			env := New(opts...)
			src := FromSource(env, "gen", Generate(int64(b.N), 2, func(i int64) benchEv { return benchEv{Key: i % 10000, Ts: i / 100} }),
				WatermarkStrategy[benchEv]{Timestamp: func(e benchEv) int64 { return e.Ts }})
			w := Window(KeyBy(src, func(e benchEv) int64 { return e.Key }), window.Tumbling(time.Second))
			var n atomic.Int64
			To(Aggregate(w, Count[benchEv]()), Sink[Windowed[int64, int64]](SinkFunc[Windowed[int64, int64]](func(_ context.Context, r []Windowed[int64, int64]) error {
				n.Add(int64(len(r)))
				return nil
			})))
			b.ResetTimer()
			j, err := env.Start(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if err := j.Wait(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rec/s")
			if mode != "none" {
				b.ReportMetric(float64(j.CheckpointStats().Completed), "checkpoints")
			}
		})
	}
}

// BenchmarkCheckpointWindowState1M: a window operator holding one open
// window for each of 1M keys (parallelism 2) takes a savepoint; reported:
// the checkpoint's duration (trigger to manifest) and size, then the time
// from starting a job restored from it to its sources reading again.
func BenchmarkCheckpointWindowState1M(b *testing.B) {
	const keys = 1_000_000
	for range b.N {
		dir := b.TempDir()
		data := make([][]cev, 2)
		for i := range keys {
			data[i%2] = append(data[i%2], cev{I: int64(i), Key: "user-" + itoa(i), Ts: 1, V: 1})
		}
		// Records past the limit, read after the restart.
		for s := range data {
			for i := range 10 {
				data[s] = append(data[s], cev{Key: "late-" + itoa(i), Ts: 2, V: 1})
			}
		}
		limit := &atomic.Int64{}
		limit.Store(keys / 2)
		parked := &atomic.Int64{}
		st := newTxStore()
		env := New(WithParallelism(2), WithBatchSize(1024), WithCheckpointing(dir, time.Hour), WithLogger(quietLog()))
		buildAgg(env, &pacedSource{data: data, chunk: 1024, limit: limit, parked: parked}, func(e cev) cev { return e }, st)
		j, err := env.Start(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for parked.Load() < 2 {
			if time.Now().After(deadline) {
				b.Fatal("sources did not park")
			}
			time.Sleep(time.Millisecond)
		}
		// Let the in-flight batches reach the window operator.
		time.Sleep(200 * time.Millisecond)
		path, err := j.StopWithSavepoint(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		stats := j.CheckpointStats()
		var size int64
		filepath.WalkDir(dir, func(_ string, d fs.DirEntry, _ error) error {
			if d != nil && !d.IsDir() {
				if fi, err := d.Info(); err == nil {
					size += fi.Size()
				}
			}
			return nil
		})
		b.ReportMetric(stats.LastDuration.Seconds()*1000, "chk-ms")
		b.ReportMetric(float64(size)/1e6, "chk-MB")

		// Restart: time from Start (restore included) to the first read.
		var first atomic.Int64
		t0 := time.Now()
		env2 := New(WithParallelism(2), WithBatchSize(1024), WithCheckpointing(dir, time.Hour), WithRestoreFrom(path), WithLogger(quietLog()))
		src := &pacedSource{data: data, chunk: 1024, firstRead: &first}
		buildAgg(env2, src, func(e cev) cev { return e }, st)
		j2, err := env2.Start(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		for first.Load() == 0 {
			if time.Since(t0) > 2*time.Minute {
				b.Fatal("restored job did not read")
			}
			time.Sleep(100 * time.Microsecond)
		}
		b.ReportMetric(float64(first.Load()-t0.UnixNano())/1e6, "restart-ms")
		j2.Cancel()
		j2.Wait()
	}
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(b[n:])
		}
	}
}

// BenchmarkCheckpointKeyedState1M: a KeyedProcess subtask (parallelism
// 1, memory backend) sums values for 1M keys, then updates 10% of them
// three times, with a checkpoint every 50 ms: its checkpoints form a chain
// of a base and increments (docs/checkpoints.md). Reported: the files of
// the savepoint's chain, and the recovery time of a job restored from it:
// from Start to the first record processed with the state loaded (files
// verified, read and applied).
//
//	go test -run '^$' -bench 'CheckpointKeyedState1M' -benchtime 1x ./stream/
func BenchmarkCheckpointKeyedState1M(b *testing.B) {
	const keys = 1_000_000
	for range b.N {
		dir := b.TempDir()
		var data []cev
		for i := range keys {
			data = append(data, cev{I: int64(i), Key: "user-" + itoa(i), Ts: 1, V: 1})
		}
		for r := range 3 {
			for i := range keys / 10 {
				k := (i*7919 + r*104729) % keys
				data = append(data, cev{Key: "user-" + itoa(k), Ts: 1, V: 1})
			}
		}
		data = append(data, cev{Key: "late", Ts: 2, V: 1})
		limit := &atomic.Int64{}
		limit.Store(int64(len(data) - 1))
		parked := &atomic.Int64{}
		build := func(env *Env, src Source[cev], processed *atomic.Int64) {
			s := FromSource(env, "events", src, WatermarkStrategy[cev]{Timestamp: func(e cev) int64 { return e.Ts }})
			out := KeyedProcess(KeyBy(s, func(e cev) string { return e.Key }), func(ctx *KeyedContext[string, int64]) (KeyedProcessFunc[string, cev, int64], error) {
				sum, err := state.NewValue[string, int64](ctx.State(), "sum")
				if err != nil {
					return nil, err
				}
				return KeyedProcessFuncs[string, cev, int64]{Element: func(c *KeyedContext[string, int64], e cev) {
					if processed != nil {
						processed.CompareAndSwap(0, time.Now().UnixNano())
					}
					v, _ := sum.Get()
					sum.Set(v + e.V)
				}}, nil
			})
			To(out, Sink[int64](SinkFunc[int64](func(context.Context, []int64) error { return nil })))
		}
		env := New(WithParallelism(1), WithBatchSize(1024), WithCheckpointing(dir, 50*time.Millisecond), WithLogger(quietLog()),
			WithCheckpointTimeout(time.Minute)) // a loaded machine must not time out the savepoint
		build(env, &pacedSource{data: [][]cev{data}, chunk: 1024, limit: limit, parked: parked}, nil)
		j, err := env.Start(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Minute)
		for parked.Load() < 1 {
			if time.Now().After(deadline) {
				b.Fatal("source did not park")
			}
			time.Sleep(time.Millisecond)
		}
		path, err := j.StopWithSavepoint(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if err := j.Wait(); err != nil {
			b.Fatal(err)
		}
		c, err := checkpoint.LoadDir(path)
		if err != nil {
			b.Fatal(err)
		}
		var chain int
		var size int64
		for _, f := range c.Manifest.Files {
			if isChainFile(f.Path) {
				chain++
				size += f.Size
			}
		}
		b.ReportMetric(float64(chain), "chain-files")
		b.ReportMetric(float64(size)/1e6, "chain-MB")

		var processed atomic.Int64
		t0 := time.Now()
		env2 := New(WithParallelism(1), WithBatchSize(1024), WithCheckpointing(dir, time.Hour), WithRestoreFrom(path), WithLogger(quietLog()))
		build(env2, &pacedSource{data: [][]cev{data}, chunk: 1024}, &processed)
		j2, err := env2.Start(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		for processed.Load() == 0 {
			if time.Since(t0) > 5*time.Minute {
				b.Fatal("restored job did not process")
			}
			time.Sleep(100 * time.Microsecond)
		}
		b.ReportMetric(float64(processed.Load()-t0.UnixNano())/1e6, "recovery-ms")
		j2.Cancel()
		j2.Wait()
	}
}
