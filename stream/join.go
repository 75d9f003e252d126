package stream

import (
	"time"

	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/window"
)

// joinSide carries a record of either side of a join
// through one keyed operator. Its fields are exported so that the state
// codecs can encode it: a window join buffers the records of its windows
// in the state backend (Pebble) and in checkpoints.
type joinSide[A, B any] struct {
	A    A
	B    B
	Left bool
}

func unionSides[K comparable, A, B any](left KeyedStream[K, A], right KeyedStream[K, B]) KeyedStream[K, joinSide[A, B]] {
	// The sides are tagged where they are (the maps chain to their
	// inputs) and partitioned by key once, after the union: mapping the
	// keyed streams themselves would hash every record twice.
	ls, rs := left.s, right.s
	ls.part, ls.hash = partForward, nil
	rs.part, rs.hash = partForward, nil
	la := Map(ls, func(v A) joinSide[A, B] { return joinSide[A, B]{A: v, Left: true} }, Name("join-left"))
	rb := Map(rs, func(v B) joinSide[A, B] { return joinSide[A, B]{B: v} }, Name("join-right"))
	ka, kb := left.key, right.key
	return KeyBy(Union(la, rb), func(s joinSide[A, B]) K {
		if s.Left {
			return ka(s.A)
		}
		return kb(s.B)
	})
}

// WindowJoin joins two keyed streams on their keys within windows: for
// every window and key, f is called for every pair of a left and a right
// record of that window (an inner join), and its results are timestamped
// with the window's last instant.
func WindowJoin[K comparable, A, B, R any](left KeyedStream[K, A], right KeyedStream[K, B], a window.Assigner, f func(A, B) R, opts ...OpOption) Stream[R] {
	ks := unionSides(left, right)
	return withKind("window-join", ProcessWindow(Window(ks, a), func(_ K, _ window.Window, elems []joinSide[A, B], out *Emitter[R]) {
		for _, l := range elems {
			if !l.Left {
				continue
			}
			for _, r := range elems {
				if !r.Left {
					out.Emit(f(l.A, r.B))
				}
			}
		}
	}, append([]OpOption{Name("window-join")}, opts...)...))
}

// timed is a buffered join record; its fields are exported so that the
// state codecs can encode it (checkpoints, the Pebble backend).
type timed[T any] struct {
	V  T
	TS int64
}

// IntervalJoin joins two keyed streams on their keys where the right
// record's event time lies within [left+lower, left+upper] (bounds
// included; lower may be negative). f is called once per matching pair; the
// result is timestamped with the later of the two. Records are buffered per
// key until the watermark guarantees they can no longer match. Records that
// arrive late (at or behind the watermark) are dropped.
func IntervalJoin[K comparable, A, B, R any](left KeyedStream[K, A], right KeyedStream[K, B], lower, upper time.Duration, f func(A, B) R, opts ...OpOption) Stream[R] {
	lo, hi := lower.Milliseconds(), upper.Milliseconds()
	ks := unionSides(left, right)
	return withKind("interval-join", KeyedProcess(ks, func(ctx *KeyedContext[K, R]) (KeyedProcessFunc[K, joinSide[A, B], R], error) {
		ls, err := state.NewList[K, timed[A]](ctx.State(), "left")
		if err != nil {
			return nil, err
		}
		rs, err := state.NewList[K, timed[B]](ctx.State(), "right")
		if err != nil {
			return nil, err
		}
		return KeyedProcessFuncs[K, joinSide[A, B], R]{
			Element: func(ctx *KeyedContext[K, R], s joinSide[A, B]) {
				ts := ctx.Timestamp()
				if ts <= ctx.Watermark() {
					return
				}
				if s.Left {
					for _, r := range rs.Values() {
						if r.TS >= ts+lo && r.TS <= ts+hi {
							ctx.EmitAt(f(s.A, r.V), max(ts, r.TS))
						}
					}
					ls.Add(timed[A]{V: s.A, TS: ts})
					ctx.RegisterEventTimer(ts + hi)
					return
				}
				for _, l := range ls.Values() {
					if ts >= l.TS+lo && ts <= l.TS+hi {
						ctx.EmitAt(f(l.V, s.B), max(ts, l.TS))
					}
				}
				rs.Add(timed[B]{V: s.B, TS: ts})
				ctx.RegisterEventTimer(ts - lo)
			},
			Timer: func(ctx *KeyedContext[K, R], t Timer) {
				// Once the watermark is at t, a left record with ts+hi <= t
				// and a right record with ts-lo <= t can match nothing new.
				l := ls.Values()
				keep := l[:0]
				for _, x := range l {
					if x.TS+hi > t.Time {
						keep = append(keep, x)
					}
				}
				clear(l[len(keep):])
				ls.Update(keep)
				r := rs.Values()
				keepR := r[:0]
				for _, x := range r {
					if x.TS-lo > t.Time {
						keepR = append(keepR, x)
					}
				}
				clear(r[len(keepR):])
				rs.Update(keepR)
			},
		}, nil
	}, append([]OpOption{Name("interval-join")}, opts...)...))
}

// KeyedCoProcessFunc is the user logic of KeyedCoProcess: records of two
// keyed streams of different types sharing per-key state and timers.
type KeyedCoProcessFunc[K comparable, A, B, R any] interface {
	// ProcessLeft is called for every record of the first stream.
	ProcessLeft(ctx *KeyedContext[K, R], v A)
	// ProcessRight is called for every record of the second stream.
	ProcessRight(ctx *KeyedContext[K, R], v B)
	// OnTimer is called when a timer registered for ctx.Key() fires.
	OnTimer(ctx *KeyedContext[K, R], t Timer)
}

// KeyedCoProcess runs f over two keyed streams with the same key type
// (for example auctions and bids keyed by auction id): both streams' records
// of a key go to the same subtask and see the same state and timers, which
// is how unbounded joins, enrichment and pattern detection across streams
// are written. newFunc is called once per parallel subtask.
func KeyedCoProcess[K comparable, A, B, R any](left KeyedStream[K, A], right KeyedStream[K, B], newFunc func(ctx *KeyedContext[K, R]) (KeyedCoProcessFunc[K, A, B, R], error), opts ...OpOption) Stream[R] {
	return withKind("keyed-coprocess", KeyedProcess(unionSides(left, right), func(ctx *KeyedContext[K, R]) (KeyedProcessFunc[K, joinSide[A, B], R], error) {
		f, err := newFunc(ctx)
		if err != nil {
			return nil, err
		}
		return coAdapter[K, A, B, R]{f}, nil
	}, append([]OpOption{Name("keyed-coprocess")}, opts...)...))
}

// withKind relabels the operator that produces s as kind (a join is a
// keyed operator over the union of its two sides) for plans.
func withKind[T any](kind string, s Stream[T]) Stream[T] {
	s.n.kind = kind
	return s
}

type coAdapter[K comparable, A, B, R any] struct {
	f KeyedCoProcessFunc[K, A, B, R]
}

func (c coAdapter[K, A, B, R]) ProcessElement(ctx *KeyedContext[K, R], s joinSide[A, B]) {
	if s.Left {
		c.f.ProcessLeft(ctx, s.A)
	} else {
		c.f.ProcessRight(ctx, s.B)
	}
}

func (c coAdapter[K, A, B, R]) OnTimer(ctx *KeyedContext[K, R], t Timer) { c.f.OnTimer(ctx, t) }
