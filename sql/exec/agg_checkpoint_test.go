package exec

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/row"
	statepebble "github.com/sluicehq/sluice/state/pebble"
	"github.com/sluicehq/sluice/stream"
)

func aggQuietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// aggSavepointRun runs build over data in two jobs: the first stops with a
// savepoint once the source has handed out half the rows, the second
// restores from it (at parallelism par2) and reads the rest. It returns
// the output of both, in order.
func aggSavepointRun(t *testing.T, data []aggEv, par1, par2 int, backend string, build func(stream.Stream[Change]) stream.Stream[Change]) []Change {
	t.Helper()
	return aggSavepointRunBound(t, data, 0, par1, par2, backend, build)
}

// aggSavepointRunBound is aggSavepointRun with watermarks bound behind the
// largest timestamp seen.
func aggSavepointRunBound(t *testing.T, data []aggEv, bound time.Duration, par1, par2 int, backend string, build func(stream.Stream[Change]) stream.Stream[Change]) []Change {
	t.Helper()
	dir := t.TempDir()
	opts := func(par int) []stream.Option {
		o := []stream.Option{stream.WithParallelism(par), stream.WithBatchSize(8), stream.WithMaxParallelism(16), stream.WithLogger(aggQuietLog())}
		if backend == "pebble" {
			o = append(o, stream.WithStateBackend(statepebble.Factory(statepebble.Options{Dir: t.TempDir(), CacheSize: 1 << 20, MemTableSize: 256 << 10})))
		}
		return o
	}
	wm := stream.WatermarkStrategy[aggEv]{Timestamp: func(e aggEv) int64 { return e.TS }, MaxOutOfOrderness: bound}
	limit, parked := &atomic.Int64{}, &atomic.Int64{}
	limit.Store(int64(len(data) / 2))
	env := stream.New(append(opts(par1), stream.WithCheckpointing(dir, time.Hour))...)
	src := stream.FromSource(env, "rows", &aggPacedSource{data: data, limit: limit, parked: parked}, wm)
	first := stream.Collect(build(stream.Map(src, func(e aggEv) Change { return e.C })))
	job, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for parked.Load() < 1 {
		select {
		case <-job.Done():
			t.Fatalf("job ended before the source parked: %v", job.Wait())
		case <-time.After(time.Millisecond): // polling the source's flag
		}
	}
	path, err := job.StopWithSavepoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := job.Wait(); err != nil {
		t.Fatal(err)
	}
	env2 := stream.New(append(opts(par2), stream.WithCheckpointing(dir, 5*time.Millisecond), stream.WithRestoreFrom(path))...)
	src2 := stream.FromSource(env2, "rows", &aggPacedSource{data: data}, wm)
	second := stream.Collect(build(stream.Map(src2, func(e aggEv) Change { return e.C })))
	if err := env2.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(first.Values()) == 0 {
		t.Fatal("the first job emitted nothing before the savepoint")
	}
	return append(first.Values(), second.Values()...)
}

// TestGroupAggregateSavepoint: a GroupAggregate with every kind of state
// (sums, multisets, DISTINCT maps, user accumulators) stopped with a
// savepoint and restored, also at another parallelism and on Pebble, gives
// one consistent changelog whose table equals the oracle.
func TestGroupAggregateSavepoint(t *testing.T) {
	r := aggRand(t)
	calls := groupCalls(true)
	key := []int{agK}
	for _, c := range []struct {
		backend    string
		par1, par2 int
		miniBatch  time.Duration
	}{{"memory", 2, 2, 0}, {"memory", 1, 3, 0}, {"pebble", 2, 1, 0}, {"memory", 2, 2, time.Hour}, {"pebble", 1, 2, time.Hour}} {
		t.Run(fmt.Sprintf("%s-%d-%d-minibatch%v", c.backend, c.par1, c.par2, c.miniBatch), func(t *testing.T) {
			evs, present := genChangelog(r, 600, false)
			for i := range evs {
				evs[i].TS = int64(i)
			}
			want := groupOracle(evs, present, key, calls)
			out := aggSavepointRun(t, evs, c.par1, c.par2, c.backend, func(in stream.Stream[Change]) stream.Stream[Change] {
				return GroupAggregate(in, key, calls, AggConfig{MiniBatch: c.miniBatch})
			})
			aggDiffTables(t, "restored", aggMaterialize(t, out, len(key)), want)
		})
	}
}

// TestWindowAggregateSavepoint: window accumulators (sessions merging
// DISTINCT sets and user accumulators, cumulate windows) survive a
// savepoint: the two jobs together emit what one job emits.
func TestWindowAggregateSavepoint(t *testing.T) {
	r := aggRand(t)
	calls := windowCalls()
	for _, c := range []struct {
		w          WindowSpec
		par1, par2 int
	}{
		{WindowSpec{Kind: Session, Gap: 10 * time.Millisecond}, 2, 2},
		{WindowSpec{Kind: Session, Gap: 10 * time.Millisecond}, 2, 3},
		{WindowSpec{Kind: Cumulate, Size: 40 * time.Millisecond, Step: 10 * time.Millisecond}, 1, 2},
		{WindowSpec{Kind: Hop, Size: 30 * time.Millisecond, Slide: 10 * time.Millisecond}, 2, 1},
	} {
		w := c.w
		t.Run(fmt.Sprintf("%s-%d-%d", w.Kind, c.par1, c.par2), func(t *testing.T) {
			evs := randWindowRows(r, 600, 0)
			for i := range evs {
				evs[i].TS = int64(i) * 2 // in order: nothing is late, however batches fall
			}
			groups, late := aggWindowOracle(evs, w, 0)
			if late != 0 {
				t.Fatalf("oracle: %d late", late)
			}
			want := oracleWindowRows(evs, groups, calls)
			out := aggSavepointRun(t, evs, c.par1, c.par2, "memory", func(in stream.Stream[Change]) stream.Stream[Change] {
				return WindowAggregate(in, []int{awK}, w, calls, AggConfig{AppendOnly: true})
			})
			var got []string
			for _, c := range out {
				// The oracle appends the record timestamp: window_time.
				got = append(got, aggFmt(append(slices.Clone(c.Vals), row.Timestamp(c.Vals[3].AsInt()))))
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("restored: %d rows, want %d\n got %q\nwant %q", len(got), len(want), got, want)
			}
		})
	}
}
