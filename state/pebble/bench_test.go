package pebble

// go test -run '^$' -bench . -benchtime 1x -count 3 ./state/pebble/
// (add -bench 'Checkpoint/1M' to skip the 10M case)

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/state"
)

// BenchmarkCheckpoint fills a backend with 1M (10M) keys (int64 counters
// by string key), then reports a full checkpoint's duration and size, an
// incremental one after updating 1% of the keys, and the time to restore
// the latest checkpoint and read a key.
func BenchmarkCheckpoint(b *testing.B) {
	b.Run("1M", func(b *testing.B) { benchCheckpoint(b, 1_000_000) })
	b.Run("10M", func(b *testing.B) { benchCheckpoint(b, 10_000_000) })
}

func benchCheckpoint(b *testing.B, keys int) {
	for range b.N {
		root := b.TempDir()
		store, err := checkpoint.NewDir(filepath.Join(root, "chk"), checkpoint.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		if err != nil {
			b.Fatal(err)
		}
		all := state.KeyGroupRange{Start: 0, End: 128}
		be, err := Open(Options{Dir: filepath.Join(root, "w"), CacheSize: 32 << 20, MemTableSize: 16 << 20}, 128, all)
		if err != nil {
			b.Fatal(err)
		}
		kc := state.NewKeyed[string](be)
		v, _ := state.NewValue[string, int64](kc, "count")
		h := state.Hasher[string]()
		put := func(i int, x int64) {
			k := fmt.Sprintf("user-%08d", i)
			kc.SetCurrentKey(k, state.KeyGroup(h(k), 128))
			v.Set(x)
		}
		t0 := time.Now()
		for i := range keys {
			put(i, int64(i))
		}
		b.ReportMetric(float64(keys)/time.Since(t0).Seconds(), "puts/s")
		take := func(id checkpoint.ID) (time.Duration, SnapshotStats) {
			t := time.Now()
			p, err := store.Begin(id)
			if err != nil {
				b.Fatal(err)
			}
			files, st, err := be.Checkpoint(p, "op.0")
			if err != nil {
				b.Fatal(err)
			}
			if err := p.Commit(&checkpoint.Manifest{ID: id, Tasks: []checkpoint.TaskState{{Task: checkpoint.TaskID{Operator: "op"}, Files: files}}}); err != nil {
				b.Fatal(err)
			}
			return time.Since(t), st
		}
		d1, s1 := take(1)
		for i := 0; i < keys; i += 100 {
			put(i, -1)
		}
		d2, s2 := take(2)
		b.ReportMetric(d1.Seconds()*1000, "full-ms")
		b.ReportMetric(float64(s1.NewBytes)/1e6, "full-MB")
		b.ReportMetric(d2.Seconds()*1000, "incr1%-ms")
		b.ReportMetric(float64(s2.NewBytes)/1e6, "incr1%-MB")
		be.Close()

		t := time.Now()
		c, err := store.Latest(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		r, err := Restore(Options{Dir: filepath.Join(root, "r")}, 128, all, c, c.Manifest.TaskFiles("op")[:1])
		if err != nil {
			b.Fatal(err)
		}
		rk := state.NewKeyed[string](r)
		rv, _ := state.NewValue[string, int64](rk, "count")
		rk.SetCurrentKey("user-00000100", state.KeyGroup(h("user-00000100"), 128))
		if x, ok := rv.Get(); !ok || x != -1 {
			b.Fatalf("restored %d %v", x, ok)
		}
		b.ReportMetric(time.Since(t).Seconds()*1000, "restore-ms")
		r.Close()
	}
}
