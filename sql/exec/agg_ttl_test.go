package exec

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// aggPhasedSource hands out phase one, then waits until ready reports true,
// then hands out phase two.
type aggPhasedSource struct {
	one, two []aggEv
	ready    func() bool
}

func (s *aggPhasedSource) Splits(context.Context, int) ([]stream.Split[aggEv], error) {
	return []stream.Split[aggEv]{&aggPhasedSplit{s: s}}, nil
}

type aggPhasedSplit struct {
	s     *aggPhasedSource
	phase int
}

func (p *aggPhasedSplit) ID() string { return "phased" }

func (p *aggPhasedSplit) Read(_ context.Context, dst []aggEv) (int, error) {
	switch p.phase {
	case 0:
		p.phase = 1
		return copy(dst, p.s.one), nil
	case 1:
		if !p.s.ready() {
			time.Sleep(time.Millisecond) // pacing while waiting, not synchronisation
			return 0, nil
		}
		p.phase = 2
		return copy(dst, p.s.two), nil
	}
	return 0, io.EOF
}

func (p *aggPhasedSplit) Position() []byte  { return nil }
func (p *aggPhasedSplit) Seek([]byte) error { return nil }

// TestGroupAggregateStateTTL: a key idle for longer than StateTTL starts
// over: a retraction of a row from before is ignored and the next row is
// a fresh +I (Flink's table.exec.state.ttl). The second phase starts only
// once the first phase's output was seen and the TTL has passed since,
// so the expiry is certain when it is processed.
func TestGroupAggregateStateTTL(t *testing.T) {
	r := func(op Op, x int64) aggEv { return aggEv{C: Change{Op: op, Vals: []row.Value{row.Int(1), row.Int(x)}}} }
	const ttl = 20 * time.Millisecond
	var got *stream.CollectSink[Change]
	var seen time.Time
	src := &aggPhasedSource{
		one: []aggEv{r(Insert, 5), r(Insert, 6)},
		two: []aggEv{r(Delete, 5), r(Insert, 7)},
		ready: func() bool {
			if seen.IsZero() {
				if got.Len() < 3 {
					return false
				}
				seen = time.Now()
			}
			return time.Since(seen) > ttl
		},
	}
	env := stream.New(stream.WithParallelism(1))
	in := stream.Map(stream.FromSource(env, "rows", src, stream.WatermarkStrategy[aggEv]{}), func(e aggEv) Change { return e.C })
	got = stream.Collect(GroupAggregate(in, []int{0}, []AggCall{{Kind: AggCountStar, Arg: -1, Filter: -1}}, AggConfig{StateTTL: ttl}))
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	var log []string
	for _, c := range got.Values() {
		log = append(log, c.Op.String()+" "+aggFmt(c.Vals))
	}
	want := []string{"+I int:1|int:1", "-U int:1|int:1", "+U int:1|int:2", "+I int:1|int:1"}
	if !slices.Equal(log, want) {
		t.Fatalf("changelog %q, want %q", log, want)
	}
}
