package exec

import "github.com/sluicehq/sluice/stream"

// sided is a record of either input of a two-input keyed operator.
type sided struct {
	C     Change
	Right bool
	// key is the record's key, computed once before the exchanges
	// (KeyBy calls its key function on both sides of each).
	key string
}

// sidedFunc is the logic of a two-input keyed operator: side is 0 for
// the left input, 1 for the right.
type sidedFunc interface {
	process(ctx *stream.KeyedContext[string, Change], side int, c Change)
	OnTimer(ctx *stream.KeyedContext[string, Change], t stream.Timer)
}

type sidedAdapter struct{ f sidedFunc }

func (a sidedAdapter) ProcessElement(ctx *stream.KeyedContext[string, Change], s sided) {
	side := 0
	if s.Right {
		side = 1
	}
	a.f.process(ctx, side, s.C)
}

func (a sidedAdapter) OnTimer(ctx *stream.KeyedContext[string, Change], t stream.Timer) {
	a.f.OnTimer(ctx, t)
}

// coKeyed runs a two-input keyed operator over left and right keyed by
// lkey and rkey.
//
// It does not use stream.KeyedCoProcess: that one tags each input with a
// Map that inherits its input's parallelism and then unions the tagged
// streams at the Env's parallelism, so when an input runs at another
// parallelism (a one-split source in an Env of parallelism 2) the edge
// into the union becomes a rebalance and the records of one key can
// overtake each other — fatal for a changelog, whose retractions must
// follow their insertions. Here each tagged input is hash-partitioned by
// its key into the union, so every channel a key's records travel keeps
// their order.
func coKeyed(left, right stream.Stream[Change], lkey, rkey func(Change) string, newFunc func(ctx *stream.KeyedContext[string, Change]) (sidedFunc, error), opts []stream.OpOption) stream.Stream[Change] {
	lt := stream.Map(left, func(c Change) sided { return sided{C: c, key: lkey(c)} }, stream.Name("join-left"))
	rt := stream.Map(right, func(c Change) sided { return sided{C: c, Right: true, key: rkey(c)} }, stream.Name("join-right"))
	key := func(s sided) string { return s.key }
	u := stream.Union(stream.KeyBy(lt, key).Stream(), stream.KeyBy(rt, key).Stream())
	return stream.KeyedProcess(stream.KeyBy(u, key), func(ctx *stream.KeyedContext[string, Change]) (stream.KeyedProcessFunc[string, sided, Change], error) {
		f, err := newFunc(ctx)
		if err != nil {
			return nil, err
		}
		return sidedAdapter{f}, nil
	}, opts...)
}
