package pipeline

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/stream"
)

// normEv is a changelog row with its event time, for the normalisation's
// tests: Vals are op, id, ts (the event-time field, or null).
type normEv struct {
	r  row.Row
	ts int64
}

func normRow(op string, id int64, ts row.Value) row.Row {
	return row.Row{Vals: []row.Value{row.String(op), row.Int(id), ts}}
}

// normSource is a one-split source that hands out data up to limit, then
// parks (counting itself in parked) until gate reports true, then hands
// out the rest. Its position is the index of the next row.
type normSource struct {
	data   []normEv
	limit  int
	gate   func() bool
	parked atomic.Bool
}

func (s *normSource) Splits(context.Context, int) ([]stream.Split[normEv], error) {
	return []stream.Split[normEv]{&normSplit{s: s}}, nil
}

type normSplit struct {
	s   *normSource
	pos int
}

func (p *normSplit) ID() string { return "norm" }

func (p *normSplit) Read(_ context.Context, dst []normEv) (int, error) {
	if p.pos >= len(p.s.data) {
		return 0, io.EOF
	}
	if p.pos >= p.s.limit && (p.s.gate == nil || !p.s.gate()) {
		p.s.parked.Store(true)
		time.Sleep(200 * time.Microsecond) // pacing while parked, not synchronisation
		return 0, nil
	}
	end := len(p.s.data)
	if p.pos < p.s.limit {
		end = p.s.limit
	}
	n := copy(dst, p.s.data[p.pos:end])
	p.pos += n
	return n, nil
}

func (p *normSplit) Position() []byte { return binary.BigEndian.AppendUint64(nil, uint64(p.pos)) }

func (p *normSplit) Seek(pos []byte) error {
	if len(pos) != 8 {
		return fmt.Errorf("position %x", pos)
	}
	p.pos = int(binary.BigEndian.Uint64(pos))
	return nil
}

// normOut is what the normalisation emitted: each row's op and id with
// the timestamp it was emitted at.
func normOut(env *stream.Env, rows stream.Stream[row.Row]) *stream.CollectSink[string] {
	return stream.Collect(stream.FlatMap(rows, func(r row.Row, em *stream.Emitter[string]) {
		em.Emit(fmt.Sprintf("%s %d @%d", r.Get(0).AsString(), r.Get(1).AsInt(), em.Timestamp()))
	}))
}

func normInput(env *stream.Env, src *normSource) stream.Stream[row.Row] {
	in := stream.FromSource(env, "rows", src, stream.WatermarkStrategy[normEv]{Timestamp: func(e normEv) int64 { return e.ts }, MaxOutOfOrderness: time.Hour})
	return stream.Map(in, func(e normEv) row.Row { return e.r })
}

// TestNormalizeOldRowRetractsAtItsTime: a row kept by the Sluice before
// the normalisation recorded its rows' times (state in timedRow's version
// 1, a keyedRow) is retracted, after a restore, at the time in its own
// event-time field, not at the time of the change that retracts it (which
// would withdraw it from another window than its insertion went to);
// rows without an event-time field keep the current change's time.
func TestNormalizeOldRowRetractsAtItsTime(t *testing.T) {
	const name = "steps[0].window.changelog"
	quiet := stream.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, tsIdx := range []int{2, -1} {
		t.Run(fmt.Sprint("tsIdx", tsIdx), func(t *testing.T) {
			dir := t.TempDir()
			data := []normEv{
				{normRow("+I", 1, row.Int(1000)), 1000},
				{normRow("+I", 2, row.Int(2000)), 2000},
				{normRow("-D", 1, row.Value{}), 50_000},
				{normRow("+U", 2, row.Int(60_000)), 60_000},
			}
			// The first job keeps rows as the older Sluice did: a keyedRow
			// per key in the state "row" of the operator of that name.
			src := &normSource{data: data, limit: 2}
			env := stream.New(stream.WithParallelism(1), stream.WithCheckpointing(dir, time.Hour), quiet)
			ks := withKey(normInput(env, src), []int{1}, false, name+".key")
			normOut(env, stream.KeyedProcess(ks, func(ctx *stream.KeyedContext[rowKey, row.Row]) (stream.KeyedProcessFunc[rowKey, keyedRow, row.Row], error) {
				last, err := state.NewValue[rowKey, keyedRow](ctx.State(), "row")
				if err != nil {
					return nil, err
				}
				return stream.KeyedProcessFuncs[rowKey, keyedRow, row.Row]{Element: func(ctx *stream.KeyedContext[rowKey, row.Row], k keyedRow) {
					last.Set(k)
					ctx.Emit(k.r)
				}}, nil
			}, stream.Name(name)))
			job, err := env.Start(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for !src.parked.Load() {
				select {
				case <-job.Done():
					t.Fatalf("job ended: %v", job.Wait())
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
			env2 := stream.New(stream.WithParallelism(1), stream.WithCheckpointing(dir, time.Hour), stream.WithRestoreFrom(path), quiet)
			got := normOut(env2, buildNormalize(normInput(env2, &normSource{data: data, limit: len(data)}), normalizePlan{keyIdx: []int{1}, tsIdx: tsIdx}, name))
			if err := env2.Execute(context.Background()); err != nil {
				t.Fatal(err)
			}
			want := []string{"-D 1 @1000", "-U 2 @2000", "+U 2 @60000"}
			if tsIdx < 0 {
				want = []string{"-D 1 @50000", "-U 2 @60000", "+U 2 @60000"}
			}
			if g := got.Values(); !slices.Equal(g, want) {
				t.Fatalf("got %q, want %q", g, want)
			}
		})
	}
}

// TestNormalizeStateTTL: with a state TTL, a key whose row no change
// touched for that long is dropped (Flink's table.exec.state.ttl): a delete
// of it retracts nothing and an update of it is an insert, while a key
// changed within the TTL keeps its row. The second phase starts once the
// first phase's output was seen and the TTL has passed since, so the
// expiry is certain when it is processed.
func TestNormalizeStateTTL(t *testing.T) {
	// Long enough that no stall of a loaded machine between two reads of
	// the second phase expires a key early (the gate waits 2*ttl).
	const ttl = 300 * time.Millisecond
	data := []normEv{
		{normRow("+I", 1, row.Int(10)), 10},
		{normRow("+I", 2, row.Int(20)), 20},
		{normRow("+I", 3, row.Int(30)), 30},
		// After the TTL:
		{normRow("-D", 1, row.Value{}), 40},
		{normRow("+U", 2, row.Int(50)), 50},
		{normRow("+U", 3, row.Int(60)), 60},
		{normRow("-D", 3, row.Value{}), 70},
	}
	for _, withTTL := range []bool{true, false} {
		var got *stream.CollectSink[string]
		var seen time.Time
		src := &normSource{data: data, limit: 3, gate: func() bool {
			if seen.IsZero() {
				if got.Len() < 3 {
					return false
				}
				seen = time.Now()
			}
			return time.Since(seen) > 2*ttl
		}}
		env := stream.New(stream.WithParallelism(1))
		plan := normalizePlan{keyIdx: []int{1}, tsIdx: 2}
		if withTTL {
			plan.ttl = ttl
		}
		got = normOut(env, buildNormalize(normInput(env, src), plan, "norm"))
		if err := env.Execute(context.Background()); err != nil {
			t.Fatal(err)
		}
		want := []string{"+I 1 @10", "+I 2 @20", "+I 3 @30", "-D 1 @10", "-U 2 @20", "+U 2 @50", "-U 3 @30", "+U 3 @60", "-D 3 @60"}
		if withTTL {
			want = []string{"+I 1 @10", "+I 2 @20", "+I 3 @30", "+I 2 @50", "+I 3 @60", "-D 3 @60"}
		}
		if g := got.Values(); !slices.Equal(g, want) {
			t.Errorf("ttl %v: got %q, want %q", withTTL, g, want)
		}
	}
}
