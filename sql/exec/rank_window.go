package exec

import (
	"fmt"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/stream"
)

// WindowRank is Flink's window top-N: ROW_NUMBER() OVER (PARTITION BY
// window_start, window_end, partition... ORDER BY order) ≤ limit over a
// windowed append-only input (win: its window_start and window_end
// columns, TIMESTAMP values, such as the output of a window aggregation
// or a window table function). The top limit rows of each partition and
// window are kept (ties ordered by the whole row, Rank's rule); when the watermark reaches
// window_end - 1 they are emitted in rank order as +I (timestamped
// window_end - 1, with the row number as the last column when rowNumber)
// and the window's state is dropped. The output is append-only. Rows
// whose window has fired are dropped as late; input operations are not
// looked at.
func WindowRank(in stream.Stream[Change], partition []int, win [2]int, order []SortKey, limit int64, rowNumber bool, cfg RankConfig) stream.Stream[Change] {
	if limit < 1 {
		panic(fmt.Sprintf("exec.WindowRank %s: limit %d; a top-N needs a limit of at least 1", cfg.Name, limit))
	}
	op := &rankOp{order: order, limit: int(min(limit, int64(^uint(0)>>1))), rowNumber: rowNumber, appendOnly: true}
	cols := append(append([]int(nil), partition...), win[0], win[1])
	ks := stream.KeyBy(in, func(c Change) string { return Key(c.Vals, cols) })
	return stream.KeyedProcess(ks, func(ctx *stream.KeyedContext[string, Change]) (stream.KeyedProcessFunc[string, Change, Change], error) {
		st, err := state.NewValue[string, rankState](ctx.State(), "window-rank")
		if err != nil {
			return nil, fmt.Errorf("window rank state: %w", err)
		}
		return &windowRankFunc{rankOp: op, st: st, endCol: win[1]}, nil
	}, cfg.opts("window-rank", true)...)
}

type windowRankFunc struct {
	*rankOp
	st     *state.Value[string, rankState]
	endCol int
}

func (f *windowRankFunc) ProcessElement(ctx *stream.KeyedContext[string, Change], c Change) {
	if f.endCol >= len(c.Vals) || c.Vals[f.endCol].Kind() != row.KindTimestamp {
		panic(fmt.Sprintf("exec.WindowRank: window_end column %d is not a TIMESTAMP in row %v; the planner must pass the window columns", f.endCol, c.Vals))
	}
	fire := c.Vals[f.endCol].AsInt() - 1
	if fire <= ctx.Watermark() {
		return // late: the window has fired
	}
	st, _ := f.st.Get()
	i := f.insertAt(st.Rows, c.Vals)
	if i >= f.limit {
		return
	}
	st.Seq++
	rows := make([]rankRow, 0, min(len(st.Rows)+1, f.limit))
	rows = append(append(append(rows, st.Rows[:i]...), rankRow{Vals: c.Vals, Seq: st.Seq}), st.Rows[i:min(len(st.Rows), f.limit-1)]...)
	st.Rows = rows
	f.st.Set(st)
	ctx.RegisterEventTimer(fire)
}

// OnTimer emits the window's top-N.
func (f *windowRankFunc) OnTimer(ctx *stream.KeyedContext[string, Change], t stream.Timer) {
	st, ok := f.st.Get()
	if !ok {
		return
	}
	for i, r := range st.Rows {
		ctx.EmitAt(Change{Op: Insert, Vals: f.out(r, i)}, t.Time)
	}
	f.st.Clear()
}
