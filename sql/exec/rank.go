package exec

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/stream"
)

// SortKey is one ORDER BY item: a column, its direction and where its
// nulls go.
type SortKey struct {
	Col        int
	Desc       bool
	NullsFirst bool
}

// RankConfig configures a ranking operator.
type RankConfig struct {
	// Name is the operator's name (metrics, errors, checkpoints).
	Name string
	// Parallelism of the operator; 0 uses the Env's. Without a partition
	// the operator runs at parallelism 1.
	Parallelism int
	// StateTTL, when positive, drops a partition's state once it was not
	// written for that long (processing time). Expiry emits nothing.
	StateTTL time.Duration
	// InputAppendOnly says the input holds only +I rows (the planner
	// knows). Then only the top limit rows of a partition are kept, so
	// state is bounded by partitions × limit; otherwise every row is kept
	// (sorted), because a retraction of a top row lets the next one in.
	// Retractions on an append-only input are ignored when their row was
	// dropped from state.
	InputAppendOnly bool
	// WaitForWatermark, for Deduplicate keeping the first row (keepLast
	// false) by the rowtime, makes the output append-only: a partition's
	// candidate (the row with the smallest rowtime so far, the smallest
	// row among equal rowtimes, see Rank) is emitted once the watermark
	// reaches its rowtime, and every later row of the partition is
	// ignored; rows at or behind the watermark are dropped as late.
	// Without it the first row is emitted at once and replaced (-U/+U) by
	// a row that ranks before it and arrives later, as Flink does. Ignored
	// elsewhere.
	WaitForWatermark bool
}

func (c RankConfig) opts(def string, keyed bool) []stream.OpOption {
	return JoinConfig{Name: c.Name, Parallelism: c.Parallelism}.opts(def, keyed)
}

// Rank computes ROW_NUMBER() OVER (PARTITION BY partition ORDER BY order)
// filtered to row numbers ≤ limit (top-N), as an updating stream. The
// output values are the input values, plus the row number (BIGINT) as the
// last column when rowNumber.
//
// Ties: rows equal on every ORDER BY key are ordered by their whole row,
// the columns compared in column order with row.Compare (NULL first; a
// shorter row before a longer one it starts), the smaller row ranking
// first; only identical rows keep arrival order, and they are
// interchangeable. Unlike Flink, which ranks ties by arrival order, the
// result therefore does not depend on parallelism or on how the input's
// splits interleave. Deduplicate and WindowRank follow the same rule.
// Without sort keys (LIMIT without ORDER BY, not a ROW_NUMBER) there is
// no tie to break: the first rows to arrive are kept, as in Flink.
//
// Emitted changes, per input row, all timestamped with the input record:
//   - without rowNumber: -D for every row that left the top-N, then +I for
//     every row that entered it;
//   - with rowNumber: per position p ≤ limit whose row changed, -U (old row,
//     p) then +U (new row, p); +I (row, p) for a position newly filled and
//     -D (row, p) for a position emptied.
//
// An input +I/+U adds a row, -U/-D removes one occurrence of an equal
// row (then the next row, if any, enters the top-N). Each partition's
// rows are a sorted slice: an update costs O(log n) comparisons, an
// O(n) move and O(limit) to compare the top before and after, which is
// right for a small limit. With cfg.InputAppendOnly the slice holds at
// most limit rows.
func Rank(in stream.Stream[Change], partition []int, order []SortKey, limit int64, rowNumber bool, cfg RankConfig) stream.Stream[Change] {
	if limit < 1 {
		panic(fmt.Sprintf("exec.Rank %s: limit %d; a top-N needs a limit of at least 1", cfg.Name, limit))
	}
	op := &rankOp{order: order, limit: int(min(limit, int64(^uint(0)>>1))), rowNumber: rowNumber, appendOnly: cfg.InputAppendOnly, ttl: ttlMillis(cfg.StateTTL)}
	ks := stream.KeyBy(in, func(c Change) string { return Key(c.Vals, partition) })
	return stream.KeyedProcess(ks, op.open, cfg.opts("rank", len(partition) > 0)...)
}

// Deduplicate is the fast path of a top-1 by the rowtime column
// orderCol (ROW_NUMBER() OVER (PARTITION BY partition ORDER BY rowtime
// ASC|DESC) = 1) over an append-only input. Ties follow Rank's rule (not
// Flink's arrival order): keepLast false keeps the row with the smallest
// rowtime and, among equal rowtimes, the smallest row; keepLast true keeps
// the row with the largest rowtime and, among equal rowtimes, the smallest
// row. It emits +I for a partition's first row, then -U/+U whenever a row
// that ranks before the kept one arrives (so keep-first over input in
// rowtime order replaces a row only by a smaller one of the same rowtime;
// with cfg.WaitForWatermark it never replaces). State is one row per
// partition. The output carries the row number 1 as the last column when
// rowNumber.
func Deduplicate(in stream.Stream[Change], partition []int, orderCol int, keepLast, rowNumber bool, cfg RankConfig) stream.Stream[Change] {
	op := &rankOp{order: []SortKey{{Col: orderCol, Desc: keepLast}}, limit: 1, rowNumber: rowNumber, appendOnly: true, ttl: ttlMillis(cfg.StateTTL)}
	ks := stream.KeyBy(in, func(c Change) string { return Key(c.Vals, partition) })
	name := "deduplicate-first"
	if keepLast {
		name = "deduplicate-last"
	}
	if !keepLast && cfg.WaitForWatermark {
		return stream.KeyedProcess(ks, op.openFirstOnWatermark, cfg.opts(name, len(partition) > 0)...)
	}
	return stream.KeyedProcess(ks, op.open, cfg.opts(name, len(partition) > 0)...)
}

func ttlMillis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return max(d.Milliseconds(), 1)
}

// compareRanked orders two rows for ROW_NUMBER: by the sort keys, then,
// on ties, by the whole row (compareWhole). -1 when a ranks first; 0 only
// for rows equal in every column, or for any two rows without sort keys
// (a LIMIT without ORDER BY keeps arrival order).
func compareRanked(order []SortKey, a, b []row.Value) int {
	if len(order) == 0 {
		return 0
	}
	if c := compareRows(order, a, b); c != 0 {
		return c
	}
	return compareWhole(a, b)
}

// compareWhole orders rows by their columns in column order with
// row.Compare (NULL first), then a shorter row before a longer one that
// it starts. It is the tie-break of the ranking operators.
func compareWhole(a, b []row.Value) int {
	for i := range min(len(a), len(b)) {
		if c := row.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

// compareRows orders two rows by the sort keys alone: -1 when a ranks
// first.
func compareRows(order []SortKey, a, b []row.Value) int {
	for _, k := range order {
		x, y := colOf(a, k.Col), colOf(b, k.Col)
		xn, yn := x.IsNull(), y.IsNull()
		switch {
		case xn && yn:
			continue
		case xn || yn:
			// The null ranks first exactly when NullsFirst.
			if xn == k.NullsFirst {
				return -1
			}
			return 1
		}
		c := row.Compare(x, y)
		if k.Desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

func colOf(vals []row.Value, i int) row.Value {
	if i < len(vals) {
		return vals[i]
	}
	return row.Value{}
}

// rankRow is a row of a partition with its arrival number, which tells
// apart identical rows (emitDiff).
type rankRow struct {
	Vals []row.Value
	Seq  int64
}

// rankState is a partition's rows in rank order.
type rankState struct {
	// Seq numbers arrivals (identical rows rank in arrival order).
	Seq     int64
	Touched int64
	Rows    []rankRow
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (s rankState) MarshalBinary() ([]byte, error) {
	b := binary.AppendVarint(nil, s.Seq)
	b = binary.AppendVarint(b, s.Touched)
	b = binary.AppendUvarint(b, uint64(len(s.Rows)))
	for _, r := range s.Rows {
		b = binary.AppendVarint(b, r.Seq)
		b = row.Row{Vals: r.Vals}.AppendBinary(b)
	}
	return b, nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (s *rankState) UnmarshalBinary(b []byte) error {
	var ok bool
	if s.Seq, b, ok = varint(b); !ok {
		return fmt.Errorf("rank state: %w: sequence", row.ErrBinary)
	}
	if s.Touched, b, ok = varint(b); !ok {
		return fmt.Errorf("rank state: %w: touched", row.ErrBinary)
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return fmt.Errorf("rank state: %w: row count", row.ErrBinary)
	}
	b = b[k:]
	s.Rows = make([]rankRow, 0, n)
	for i := range n {
		var r rankRow
		if r.Seq, b, ok = varint(b); !ok {
			return fmt.Errorf("rank state: %w: row %d", row.ErrBinary, i)
		}
		rw, m, err := row.DecodeRow(b)
		if err != nil {
			return fmt.Errorf("rank state row %d: %w", i, err)
		}
		r.Vals, b = rw.Vals, b[m:]
		s.Rows = append(s.Rows, r)
	}
	if len(b) != 0 {
		return fmt.Errorf("rank state: %w: %d trailing bytes", row.ErrBinary, len(b))
	}
	return nil
}

func varint(b []byte) (int64, []byte, bool) {
	v, k := binary.Varint(b)
	if k <= 0 {
		return 0, b, false
	}
	return v, b[k:], true
}

type rankOp struct {
	order      []SortKey
	limit      int
	rowNumber  bool
	appendOnly bool
	ttl        int64
}

func (op *rankOp) open(ctx *stream.KeyedContext[string, Change]) (stream.KeyedProcessFunc[string, Change, Change], error) {
	st, err := state.NewValue[string, rankState](ctx.State(), "rank")
	if err != nil {
		return nil, fmt.Errorf("rank state: %w", err)
	}
	return &rankFunc{rankOp: op, st: st}, nil
}

type rankFunc struct {
	*rankOp
	st  *state.Value[string, rankState]
	old []rankRow // scratch: the top before the change
}

// insertAt returns where a new row v goes among rows (sorted by
// compareRanked): after every row ranking before it or identical to it.
func (f *rankOp) insertAt(rows []rankRow, v []row.Value) int {
	lo, hi := 0, len(rows)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if compareRanked(f.order, v, rows[m].Vals) >= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// find returns the index of a row equal to v, or -1.
func (f *rankFunc) find(rows []rankRow, v []row.Value) int {
	lo, hi := 0, len(rows)
	for lo < hi { // first row not ranking before v
		m := int(uint(lo+hi) >> 1)
		if compareRanked(f.order, rows[m].Vals, v) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	// Rows equal by row.Compare may still differ in kind (an int and an
	// equal float): match the exact row.
	var key string
	for i := lo; i < len(rows) && compareRanked(f.order, rows[i].Vals, v) == 0; i++ {
		if len(rows[i].Vals) != len(v) {
			continue
		}
		if key == "" {
			key = rowKey(v)
		}
		if rowKey(rows[i].Vals) == key {
			return i
		}
	}
	return -1
}

func (f *rankFunc) ProcessElement(ctx *stream.KeyedContext[string, Change], c Change) {
	st, _ := f.st.Get()
	rows := st.Rows
	top := min(len(rows), f.limit)
	f.old = append(f.old[:0], rows[:top]...)
	if c.Op.IsRetract() {
		i := f.find(rows, c.Vals)
		if i < 0 {
			return
		}
		rows = append(rows[:i:i], rows[i+1:]...)
	} else {
		i := f.insertAt(rows, c.Vals)
		if f.appendOnly && i >= f.limit {
			return // ranks below the top-N for good
		}
		st.Seq++
		nr := make([]rankRow, 0, len(rows)+1)
		nr = append(append(append(nr, rows[:i]...), rankRow{Vals: c.Vals, Seq: st.Seq}), rows[i:]...)
		if f.appendOnly && len(nr) > f.limit {
			nr = nr[:f.limit]
		}
		rows = nr
	}
	st.Rows = rows
	if f.ttl > 0 {
		st.Touched = ctx.ProcessingTime()
		ctx.RegisterProcessingTimer(st.Touched + f.ttl)
	}
	if len(rows) == 0 && f.ttl == 0 {
		f.st.Clear()
	} else {
		f.st.Set(st)
	}
	f.emitDiff(ctx, f.old, rows[:min(len(rows), f.limit)])
}

func (f *rankOp) out(r rankRow, pos int) []row.Value {
	if !f.rowNumber {
		return r.Vals
	}
	v := make([]row.Value, len(r.Vals)+1)
	copy(v, r.Vals)
	v[len(r.Vals)] = row.Int(int64(pos + 1))
	return v
}

// emitDiff emits the changes that turn the top old into the top cur.
func (f *rankFunc) emitDiff(ctx *stream.KeyedContext[string, Change], old, cur []rankRow) {
	if f.rowNumber {
		for i := range max(len(old), len(cur)) {
			switch {
			case i >= len(cur):
				ctx.Emit(Change{Op: Delete, Vals: f.out(old[i], i)})
			case i >= len(old):
				ctx.Emit(Change{Op: Insert, Vals: f.out(cur[i], i)})
			case old[i].Seq != cur[i].Seq:
				ctx.Emit(Change{Op: UpdateBefore, Vals: f.out(old[i], i)})
				ctx.Emit(Change{Op: UpdateAfter, Vals: f.out(cur[i], i)})
			}
		}
		return
	}
	// Without row numbers a change moves at most one row in and one out.
	in := func(rs []rankRow, seq int64) bool {
		for _, r := range rs {
			if r.Seq == seq {
				return true
			}
		}
		return false
	}
	for _, r := range old {
		if !in(cur, r.Seq) {
			ctx.Emit(Change{Op: Delete, Vals: r.Vals})
		}
	}
	for _, r := range cur {
		if !in(old, r.Seq) {
			ctx.Emit(Change{Op: Insert, Vals: r.Vals})
		}
	}
}

// OnTimer drops the partition's state when it expired (StateTTL).
func (f *rankFunc) OnTimer(ctx *stream.KeyedContext[string, Change], t stream.Timer) {
	if f.ttl <= 0 || t.Domain != stream.ProcessingTime {
		return
	}
	if st, ok := f.st.Get(); ok && st.Touched+f.ttl <= t.Time {
		f.st.Clear()
	}
}

func (op *rankOp) openFirstOnWatermark(ctx *stream.KeyedContext[string, Change]) (stream.KeyedProcessFunc[string, Change, Change], error) {
	st, err := state.NewValue[string, timedRow](ctx.State(), "first")
	if err != nil {
		return nil, fmt.Errorf("deduplicate state: %w", err)
	}
	return &firstOnWatermark{rankOp: op, st: st}, nil
}

// firstOnWatermark keeps the first row per partition by rowtime (the
// smallest row among equal rowtimes, Rank's tie rule) and emits it when
// the watermark reaches it. Its state is one row per
// partition ever seen (Matched: emitted), so that later rows are ignored.
type firstOnWatermark struct {
	*rankOp
	st *state.Value[string, timedRow]
}

func (f *firstOnWatermark) ProcessElement(ctx *stream.KeyedContext[string, Change], c Change) {
	col := f.order[0].Col
	if col >= len(c.Vals) || c.Vals[col].IsNull() {
		return // no rowtime: it ranks after every row with one
	}
	ts := c.Vals[col].AsInt()
	if ts <= ctx.Watermark() {
		return // late
	}
	cur, ok := f.st.Get()
	if ok && (cur.Matched || cur.Ts < ts || (cur.Ts == ts && compareWhole(c.Vals, cur.Vals) >= 0)) {
		return
	}
	f.st.Set(timedRow{Vals: c.Vals, Ts: ts})
	if !ok || ts < cur.Ts {
		ctx.RegisterEventTimer(ts)
	}
}

func (f *firstOnWatermark) OnTimer(ctx *stream.KeyedContext[string, Change], t stream.Timer) {
	cur, ok := f.st.Get()
	if !ok || cur.Matched || cur.Ts > t.Time {
		return
	}
	ctx.EmitAt(Change{Op: Insert, Vals: f.out(rankRow{Vals: cur.Vals}, 0)}, cur.Ts)
	cur.Matched = true
	f.st.Set(cur)
}
