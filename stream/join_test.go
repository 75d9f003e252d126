package stream_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/window"
)

type order struct {
	User int
	TS   int64
	ID   int
}

type payment struct {
	User int
	TS   int64
	ID   int
}

func genSide(r interface {
	IntN(int) int
	Int64N(int64) int64
}, n, users int, bound int64, idBase int) []order {
	var out []order
	for i := range n {
		out = append(out, order{User: r.IntN(users), TS: int64(i)*2 + r.Int64N(bound+1), ID: idBase + i})
	}
	return out
}

// TestIntervalJoinMatchesOracle checks the interval join against a
// brute-force join at parallelism 1-3 on the memory and Pebble backends.
func TestIntervalJoinMatchesOracle(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) { testIntervalJoin(t, backend) })
	}
}

func testIntervalJoin(t *testing.T, backend string) {
	r := newRand(t)
	for p := 1; p <= 3; p++ {
		bound := int64(r.IntN(10))
		lefts := genSide(r, 300, 8, bound, 0)
		var rights []payment
		for _, o := range genSide(r, 300, 8, bound, 10_000) {
			rights = append(rights, payment(o))
		}
		lower, upper := int64(-5+r.IntN(5)), int64(r.IntN(15))
		env := stream.New(append(backendOpts(t, backend), stream.WithParallelism(p), stream.WithBatchSize(1+r.IntN(32)))...)
		ls := stream.FromSource(env, "orders", stream.FromSlice(lefts, 1+r.IntN(2)),
			stream.BoundedOutOfOrderness(func(o order) int64 { return o.TS }, time.Duration(bound)*time.Millisecond))
		rs := stream.FromSource(env, "payments", stream.FromSlice(rights, 1+r.IntN(2)),
			stream.BoundedOutOfOrderness(func(o payment) int64 { return o.TS }, time.Duration(bound)*time.Millisecond))
		out := stream.Collect(stream.IntervalJoin(
			stream.KeyBy(ls, func(o order) int { return o.User }),
			stream.KeyBy(rs, func(o payment) int { return o.User }),
			time.Duration(lower)*time.Millisecond, time.Duration(upper)*time.Millisecond,
			func(o order, pm payment) string { return fmt.Sprintf("%d-%d", o.ID, pm.ID) }))
		if err := env.Execute(context.Background()); err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, o := range lefts {
			for _, pm := range rights {
				if o.User == pm.User && pm.TS >= o.TS+lower && pm.TS <= o.TS+upper {
					want = append(want, fmt.Sprintf("%d-%d", o.ID, pm.ID))
				}
			}
		}
		got := out.Values()
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Fatalf("p=%d bounds [%d,%d]: got %d pairs, want %d", p, lower, upper, len(got), len(want))
		}
	}
}

// TestWindowJoinMatchesOracle checks window joins (tumbling, sliding and session
// windows) against a brute-force join at parallelism 1-4 on the memory
// and Pebble backends.
func TestWindowJoinMatchesOracle(t *testing.T) {
	for _, backend := range backends {
		for _, kind := range []string{"tumbling", "sliding", "session"} {
			t.Run(backend+"/"+kind, func(t *testing.T) { testWindowJoin(t, backend, kind) })
		}
	}
}

func testWindowJoin(t *testing.T, backend, kind string) {
	r := newRand(t)
	for p := 1; p <= 4; p++ {
		bound := int64(r.IntN(10))
		lefts := genSide(r, 200, 6, bound, 0)
		var rights []payment
		for _, o := range genSide(r, 200, 6, bound, 10_000) {
			rights = append(rights, payment(o))
		}
		env := stream.New(append(backendOpts(t, backend), stream.WithParallelism(p), stream.WithBatchSize(1+r.IntN(32)))...)
		ls := stream.FromSource(env, "orders", stream.FromSlice(lefts, 2),
			stream.BoundedOutOfOrderness(func(o order) int64 { return o.TS }, time.Duration(bound)*time.Millisecond))
		rs := stream.FromSource(env, "payments", stream.FromSlice(rights, 1),
			stream.BoundedOutOfOrderness(func(o payment) int64 { return o.TS }, time.Duration(bound)*time.Millisecond))
		a := window.Tumbling(20 * time.Millisecond)
		const gap = 7
		switch kind {
		case "session":
			a = window.Session(gap * time.Millisecond)
		case "sliding":
			a = window.Sliding(20*time.Millisecond, 5*time.Millisecond)
		}
		out := stream.Collect(stream.WindowJoin(
			stream.KeyBy(ls, func(o order) int { return o.User }),
			stream.KeyBy(rs, func(o payment) int { return o.User }),
			a,
			func(o order, pm payment) string { return fmt.Sprintf("%d-%d", o.ID, pm.ID) }))
		if err := env.Execute(context.Background()); err != nil {
			t.Fatal(err)
		}
		// A session of a user is a maximal run of both sides' records
		// with gaps below gap.
		session := map[int]int64{} // record ID -> start of its session
		if kind == "session" {
			byUser := map[int][]order{}
			for _, o := range lefts {
				byUser[o.User] = append(byUser[o.User], o)
			}
			for _, pm := range rights {
				byUser[pm.User] = append(byUser[pm.User], order(pm))
			}
			for _, evs := range byUser {
				sort.Slice(evs, func(i, j int) bool { return evs[i].TS < evs[j].TS })
				start := evs[0].TS
				for i, e := range evs {
					if i > 0 && e.TS-evs[i-1].TS >= gap {
						start = e.TS
					}
					session[e.ID] = start
				}
			}
		}
		var want []string
		for _, o := range lefts {
			for _, pm := range rights {
				// A pair joins once per window that holds both.
				n := 0
				switch kind {
				case "tumbling":
					if o.TS/20 == pm.TS/20 {
						n = 1
					}
				case "sliding":
					for start := (max(o.TS, pm.TS) - 19) / 5 * 5; start <= min(o.TS, pm.TS); start += 5 {
						if start+20 > max(o.TS, pm.TS) {
							n++
						}
					}
				case "session":
					if session[o.ID] == session[pm.ID] {
						n = 1
					}
				}
				for range n {
					if o.User == pm.User {
						want = append(want, fmt.Sprintf("%d-%d", o.ID, pm.ID))
					}
				}
			}
		}
		got := out.Values()
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Fatalf("p=%d: got %d pairs, want %d", p, len(got), len(want))
		}
	}
}

func TestConnectCoMap(t *testing.T) {
	env := stream.New(stream.WithParallelism(2))
	nums := stream.FromSource(env, "nums", stream.FromSlice([]int{1, 2, 3}, 2), stream.WatermarkStrategy[int]{})
	words := stream.FromSource(env, "words", stream.FromSlice([]string{"a", "bb"}, 1), stream.WatermarkStrategy[string]{})
	out := stream.Collect(stream.CoMap(stream.Connect(nums, words),
		func(n int) string { return fmt.Sprint("n", n) },
		func(w string) string { return "w" + w }))
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := out.Values()
	sort.Strings(got)
	if want := []string{"n1", "n2", "n3", "wa", "wbb"}; !slices.Equal(got, want) {
		t.Fatalf("got %v", got)
	}
}

func TestBroadcastAndFlatMap(t *testing.T) {
	env := stream.New(stream.WithParallelism(3))
	src := stream.FromSource(env, "nums", stream.FromSlice([]int{1, 2, 3, 4}, 1), stream.WatermarkStrategy[int]{})
	fm := stream.FlatMap(src, func(v int, out *stream.Emitter[int]) {
		for range v {
			out.Emit(v)
		}
	})
	out := stream.Collect(stream.Broadcast(fm), stream.Parallelism(3))
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := out.Len(); got != 3*(1+2+3+4) {
		t.Fatalf("broadcast to 3 subtasks delivered %d records, want 30", got)
	}
}

// enrich joins every payment with the latest order of its user seen so far
// (an unbounded, stateful stream-stream join).
type enrich struct {
	last *state.Value[int, order]
	wait *state.List[int, payment]
}

func (e *enrich) ProcessLeft(ctx *stream.KeyedContext[int, string], o order) {
	e.last.Set(o)
	for _, p := range e.wait.Values() {
		ctx.Emit(fmt.Sprintf("%d-%d", o.ID, p.ID))
	}
	e.wait.Clear()
}

func (e *enrich) ProcessRight(ctx *stream.KeyedContext[int, string], p payment) {
	if o, ok := e.last.Get(); ok {
		ctx.Emit(fmt.Sprintf("%d-%d", o.ID, p.ID))
		return
	}
	e.wait.Add(p)
}

func (e *enrich) OnTimer(*stream.KeyedContext[int, string], stream.Timer) {}

func TestKeyedCoProcessSharesStatePerKey(t *testing.T) {
	for p := 1; p <= 3; p++ {
		env := stream.New(stream.WithParallelism(p))
		// One order per user, so the result does not depend on the
		// interleaving of the two streams.
		var orders []order
		var pays []payment
		for u := range 20 {
			orders = append(orders, order{User: u, ID: u})
			pays = append(pays, payment{User: u, ID: 100 + u}, payment{User: u, ID: 200 + u})
		}
		os := stream.FromSource(env, "orders", stream.FromSlice(orders, 2), stream.WatermarkStrategy[order]{})
		ps := stream.FromSource(env, "payments", stream.FromSlice(pays, 3), stream.WatermarkStrategy[payment]{})
		out := stream.Collect(stream.KeyedCoProcess(
			stream.KeyBy(os, func(o order) int { return o.User }),
			stream.KeyBy(ps, func(p payment) int { return p.User }),
			func(ctx *stream.KeyedContext[int, string]) (stream.KeyedCoProcessFunc[int, order, payment, string], error) {
				last, err := state.NewValue[int, order](ctx.State(), "last")
				if err != nil {
					return nil, err
				}
				wait, err := state.NewList[int, payment](ctx.State(), "wait")
				if err != nil {
					return nil, err
				}
				return &enrich{last: last, wait: wait}, nil
			}))
		if err := env.Execute(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := out.Values()
		sort.Strings(got)
		var want []string
		for u := range 20 {
			want = append(want, fmt.Sprintf("%d-%d", u, 100+u), fmt.Sprintf("%d-%d", u, 200+u))
		}
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Fatalf("p=%d: got %v", p, got)
		}
	}
}

// TestWindowJoinIdleSide: the right side produced one record and went
// silent without ending; once it is marked idle the left side's watermark
// alone fires the windows, and the join emits the pairs of the window
// holding the right record, at parallelism 1 to 4.
func TestWindowJoinIdleSide(t *testing.T) {
	for p := 1; p <= 4; p++ {
		var lefts []order
		for i := range 200 {
			lefts = append(lefts, order{User: i % 3, TS: int64(i), ID: i})
		}
		pay := payment{User: 1, TS: 10, ID: 10_000}
		env := stream.New(stream.WithParallelism(p), stream.WithBatchSize(16))
		ls := stream.FromSource(env, "orders", pollSource[order]{parts: [][]order{lefts}},
			stream.BoundedOutOfOrderness(func(o order) int64 { return o.TS }, 0))
		rs := stream.FromSource(env, "payments", pollSource[payment]{parts: [][]payment{{pay}}},
			stream.BoundedOutOfOrderness(func(o payment) int64 { return o.TS }, 0).WithIdleTimeout(time.Millisecond))
		out := stream.Collect(stream.WindowJoin(
			stream.KeyBy(ls, func(o order) int { return o.User }),
			stream.KeyBy(rs, func(o payment) int { return o.User }),
			window.Tumbling(50*time.Millisecond),
			func(o order, pm payment) string { return fmt.Sprintf("%d-%d", o.ID, pm.ID) }))
		var want []string
		for _, o := range lefts {
			if o.User == pay.User && o.TS < 50 {
				want = append(want, fmt.Sprintf("%d-%d", o.ID, pay.ID))
			}
		}
		job, err := env.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the joined window to fire", func() bool { return out.Len() >= len(want) })
		job.Cancel()
		_ = job.Wait()
		got := out.Values()
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Fatalf("p=%d: got %v, want %v", p, got, want)
		}
	}
}
