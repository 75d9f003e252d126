package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/stream"

	"github.com/valyala/fastjson"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/row"
)

// ChangelogSpec is a source's `changelog:` block: each record is a change
// event of a table in the envelope change-data-capture tools write
// (postgres_cdc, mysql_cdc, Debezium): an operation field (c, r, u, d)
// and the row before and after the change. The source's rows are then
// the table's rows, each with its change in the field `op` (+I, -U, +U,
// -D, as an updating sql step's): an insert or snapshot read is +I of
// after, an update -U of before then +U of after, a delete -D of
// before.
type ChangelogSpec struct {
	// Op, Before, After name the envelope's fields (op, before, after).
	Op, Before, After string
	// Key, if set, names the fields that identify a row (the table's
	// primary key): before a sql step the pipeline then keeps each key's
	// latest row and derives every retraction from it, so aggregates are
	// exact even when events carry only the key as their before image
	// (PostgreSQL's default REPLICA IDENTITY).
	Key []string
	// StateTTL, when positive, drops a key's kept row once no change of
	// it came for this long (processing time), as Flink's
	// table.exec.state.ttl does for its changelog normalisation: the
	// state is bounded, but a change of an expired key retracts nothing
	// (an update becomes +I, a delete is dropped). 0 keeps rows for ever.
	StateTTL time.Duration
	Pos      Pos
}

func parseChangelog(e *errs, o *obj, format string) *ChangelogSpec {
	if !o.has("changelog") {
		return nil
	}
	pos := o.pos("changelog")
	c := o.object("changelog", "the envelope's field names: {op: op, before: before, after: after} (all optional)")
	if c == nil {
		return nil
	}
	s := &ChangelogSpec{Pos: pos}
	s.Op = c.str("op", "op")
	s.Before = c.str("before", "before")
	s.After = c.str("after", "after")
	s.Key = c.strList("key")
	s.StateTTL = c.duration("state_ttl", 0, true)
	if c.has("state_ttl") && len(s.Key) == 0 {
		e.at(c.node, c.sub("state_ttl"), "needs key: the pipeline keeps rows (and expires them) only for a changelog with its key, changelog: {key: [id], state_ttl: 24h}")
	}
	c.done("op", "before", "after", "key", "state_ttl")
	if e.cluster {
		e.at(o.get("changelog"), pos.Field, "is not available in cluster mode yet")
	}
	if format != "json" {
		e.at(o.get("changelog"), pos.Field, "needs format: json (change events are JSON envelopes), not %s", format)
	}
	return s
}

// changelogField is the field of a changelog source's rows that holds
// their change.
const changelogField = sqlOpField

// errChangelog marks a record that is not a change event.
var errChangelog = errors.New("not a change event")

// changelogExpander turns change events into flat rows' JSON: the before
// or after object with the change in "op" first. One per split.
type changelogExpander struct {
	spec *ChangelogSpec
	p    fastjson.Parser
	buf  [2][]byte
	// retract[i]: flat row i of the last event is a retraction.
	retract [2]bool
}

// expand returns the flat records of one event: none for a tombstone
// (an empty value), one for an insert, read or delete, two for an
// update. The slices are valid until the next call.
func (x *changelogExpander) expand(val []byte) ([][]byte, error) {
	if len(val) == 0 {
		return nil, nil
	}
	// fastjson's parser lets some invalid escapes through, which its
	// marshalling would then copy into the rows: validate first.
	if err := fastjson.ValidateBytes(val); err != nil {
		return nil, fmt.Errorf("%w: %v", errChangelog, err)
	}
	v, err := x.p.ParseBytes(val)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errChangelog, err)
	}
	if v.Type() != fastjson.TypeObject {
		return nil, fmt.Errorf("%w: a JSON %s, not an object", errChangelog, v.Type())
	}
	op := string(v.GetStringBytes(x.spec.Op))
	img := func(field string) (*fastjson.Value, error) {
		w := v.Get(field)
		if w == nil || w.Type() == fastjson.TypeNull {
			return nil, nil
		}
		if w.Type() != fastjson.TypeObject {
			return nil, fmt.Errorf("%w: %q is a JSON %s, not an object", errChangelog, field, w.Type())
		}
		return w, nil
	}
	before, err := img(x.spec.Before)
	if err != nil {
		return nil, err
	}
	after, err := img(x.spec.After)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	flat := func(i int, change string, w *fastjson.Value) {
		b := append(x.buf[i][:0], `{"`...)
		b = append(b, changelogField...)
		b = append(b, `":"`...)
		b = append(b, change...)
		b = append(b, '"')
		o, _ := w.Object()
		o.Visit(func(k []byte, fv *fastjson.Value) {
			if string(k) == changelogField {
				return // the change's field wins (a column op is hidden)
			}
			b = append(b, ',')
			b = row.AppendQuoted(b, string(k))
			b = append(b, ':')
			b = fv.MarshalTo(b)
		})
		b = append(b, '}')
		x.buf[i] = b
		x.retract[i] = change[0] == '-'
		out = append(out, b)
	}
	need := func(w *fastjson.Value, field string) error {
		if w == nil {
			return fmt.Errorf("%w: op %q without %q", errChangelog, op, field)
		}
		return nil
	}
	switch op {
	case "c", "r":
		if err := need(after, x.spec.After); err != nil {
			return nil, err
		}
		flat(0, "+I", after)
	case "u":
		if err := need(after, x.spec.After); err != nil {
			return nil, err
		}
		if before != nil {
			flat(0, "-U", before)
			flat(1, "+U", after)
		} else {
			// No before image (another tool's event without it): the
			// update is an upsert; aggregates over it cannot retract.
			flat(0, "+U", after)
		}
	case "d":
		if err := need(before, x.spec.Before); err != nil {
			return nil, err
		}
		flat(0, "-D", before)
	case "":
		return nil, fmt.Errorf("%w: no %q field", errChangelog, x.spec.Op)
	default:
		return nil, fmt.Errorf("%w: op %q (want c, r, u or d)", errChangelog, op)
	}
	return out, nil
}

// changeMessage decodes a change event into its one or two rows (the
// second in tr.r2), each through the input's steps.
func (s *msgDecoder) changeMessage(m *connector.Message) (tr tsRow, keep bool, f *failure) {
	flats, err := s.clx.expand(m.Value)
	if err != nil {
		return tsRow{}, false, &failure{Stage: s.in.name + ".changelog", Origin: m.Origin, Offset: m.Offset, Err: err, Raw: m.Value}
	}
	k := 0
	keyed := len(s.clx.spec.Key) > 0
	for i, fv := range flats {
		mm := *m
		mm.Value = fv
		// With the changelog's key, the normalisation derives every
		// retraction from the kept row (at that row's time): an event's
		// before image without the event-time field (only the key, under
		// PostgreSQL's default REPLICA IDENTITY) is not a bad record. It
		// takes the latest time seen, which moves no watermark.
		s.timeless = keyed && s.clx.retract[i]
		t, ok, f := s.message(&mm)
		s.timeless = false
		if f != nil {
			f.Raw = m.Value
			return tsRow{}, false, f
		}
		if !ok {
			continue
		}
		if k == 0 {
			tr = t
		} else {
			tr.r2, tr.ts2, tr.two = t.r, t.ts, true
		}
		k++
	}
	return tr, k > 0, nil
}

// checkChangelogStep refuses, over a changelog source's rows (cl), the
// steps that would treat changes as plain records: dedup, join and detect
// keep no retractions, and map or set must not replace the change itself.
// A window step is checked by checkChangelogWindow.
func checkChangelogStep(e *errs, st StepSpec, cl *ChangelogSpec) bool {
	switch st.Kind {
	case "window":
		return checkChangelogWindow(e, st, cl)
	case "dedup", "join", "detect":
		e.list = append(e.list, st.Pos.errorf("the source's records are changes (changelog:), which a %s step would take as plain records (a deleted or updated row would not be retracted); aggregate them in a window step or a sql step instead (both retract: SELECT status, COUNT(*) AS n FROM input GROUP BY status), or drop changelog: to process the raw change events", st.Kind))
		return false
	case "lookup":
		e.list = append(e.list, st.Pos.errorf("the source's records are changes (changelog:), and the lookup of a retraction could find another value than its insertion did (nothing would retract it); drop changelog: to look up the raw change events"))
		return false
	case "map", "set":
		as := st.Map
		if st.Kind == "set" {
			as = st.Set
		}
		for _, a := range as {
			if a.Name == changelogField {
				e.list = append(e.list, a.Pos.errorf("%s is the change of each row of a changelog source (+I, -U, +U, -D), kept by every step: name the field otherwise", changelogField))
				return false
			}
		}
	}
	return true
}

// checkChangelogWindow checks a window step over a changelog's rows: it
// aggregates them as a SQL window aggregation over CDC input does
// (buildChangelogWindow), which needs the changelog's key (so that every
// retraction is a whole row at the event time of the row it withdraws),
// tumbling or sliding windows, no allowed lateness and no first or last.
func checkChangelogWindow(e *errs, st StepSpec, cl *ChangelogSpec) bool {
	ws := st.Window
	if ws == nil {
		return true
	}
	ok := true
	if len(cl.Key) == 0 {
		e.list = append(e.list, st.Pos.errorf("a window over a changelog (changelog:) needs the rows' key, changelog: {key: [id]} (the table's primary key): the pipeline then keeps each key's latest row, so that a delete or an update retracts the whole old row from the window its insertion went to; without it a retraction holds only what the event's before image has (the key alone under PostgreSQL's default REPLICA IDENTITY) and, with the commit time as event time, the time of the change rather than of the row"))
		ok = false
	}
	if ws.Type == "session" {
		e.list = append(e.list, st.Pos.errorf("a session window cannot aggregate a changelog (changelog:): a retraction cannot split the session its row's insertion merged; use a tumbling or sliding window"))
		ok = false
	}
	if ws.AllowedLateness > 0 {
		e.list = append(e.list, st.Pos.errorf("allowed_lateness: a window over a changelog (changelog:) emits each window once, when the watermark passes its end; a change that arrives later is late data (dropped and counted); remove allowed_lateness"))
		ok = false
	}
	for _, a := range ws.Aggregates {
		if a.Func == "first" || a.Func == "last" {
			e.list = append(e.list, a.Pos.errorf("%s() is not available over a changelog (changelog:): a retraction cannot tell which of equal values to withdraw; use min, max, count, count_distinct, sum or avg", a.Func))
			ok = false
		}
	}
	return ok
}

// normalizePlan is a changelog's normalisation: the rows' key, the
// position of their event-time field (-1 when the event time is not a
// field of the rows: the source's time, a commit time) and the state TTL.
type normalizePlan struct {
	keyIdx []int
	tsIdx  int
	ttl    time.Duration
}

// buildNormalize keeps the latest row of each key of a changelog and
// re-derives the changes from it: +I or +U of a key with a row becomes
// -U of that row then +U, of a key without one +I; -D becomes -D of the
// kept row (nothing when there is none); the events' own -U rows are
// dropped. Retractions then carry whole rows whatever the events' before
// images held, and the event time of the row they withdraw: a window
// aggregation after it retracts from the windows the row was added to,
// also when the event time is each change's commit time. The state is in
// the checkpoints. A row kept by a Sluice that did not record its time
// (timedRow version 1) is retracted at the time in its event-time field,
// when the rows have one that holds a time, else at the current change's.
// With a TTL a key's row is dropped once no change of it came for that
// long: its next change retracts nothing.
func buildNormalize(rows stream.Stream[row.Row], n normalizePlan, name string) stream.Stream[row.Row] {
	ks := withKey(rows, n.keyIdx, false, name+".key")
	with := func(r row.Row, op string) row.Row {
		vals := append([]row.Value(nil), r.Vals...)
		vals[0] = row.String(op)
		return row.Row{Vals: vals, Rest: r.Rest}
	}
	ttl := n.ttl.Milliseconds()
	if n.ttl > 0 && ttl == 0 {
		ttl = 1
	}
	return stream.KeyedProcess(ks, func(ctx *stream.KeyedContext[rowKey, row.Row]) (stream.KeyedProcessFunc[rowKey, keyedRow, row.Row], error) {
		last, err := state.NewValue[rowKey, timedRow](ctx.State(), "row")
		if err != nil {
			return nil, err
		}
		// at is when a kept row's retraction is emitted: its own time.
		at := func(ctx *stream.KeyedContext[rowKey, row.Row], prev timedRow) int64 {
			if prev.timed {
				return prev.ts
			}
			// Kept by an older Sluice, without its time: the row's own
			// event-time field, where it has one.
			if n.tsIdx >= 0 && n.tsIdx < len(prev.r.Vals) {
				if ms, err := prev.r.Vals[n.tsIdx].Millis(); err == nil {
					return ms
				}
			}
			return ctx.Timestamp()
		}
		return stream.KeyedProcessFuncs[rowKey, keyedRow, row.Row]{
			Element: func(ctx *stream.KeyedContext[rowKey, row.Row], k keyedRow) {
				prev, had := last.Get()
				var now int64
				if ttl > 0 {
					now = ctx.ProcessingTime()
					// Expired, its timer not yet fired: never read it.
					if had && prev.touched > 0 && now-prev.touched >= ttl {
						if prev.timer != 0 {
							ctx.DeleteProcessingTimer(prev.timer)
						}
						last.Clear()
						prev, had = timedRow{}, false
					}
				}
				switch k.r.Get(0).AsString() {
				case "+I", "+U":
					if had {
						ctx.EmitAt(with(prev.r, "-U"), at(ctx, prev))
						ctx.Emit(with(k.r, "+U"))
					} else {
						ctx.Emit(with(k.r, "+I"))
					}
					next := timedRow{r: k.r, ts: ctx.Timestamp(), timed: true}
					if ttl > 0 {
						// The timer set at the row's first change fires
						// at that change's expiry and moves on (Timer).
						next.touched, next.timer = now, prev.timer
						if !had || next.timer == 0 {
							next.timer = now + ttl
							ctx.RegisterProcessingTimer(next.timer)
						}
					}
					last.Set(next)
				case "-D":
					if had {
						ctx.EmitAt(with(prev.r, "-D"), at(ctx, prev))
						if prev.timer != 0 {
							ctx.DeleteProcessingTimer(prev.timer)
						}
						last.Clear()
					}
				}
			},
			// Timer expires the key's row when no change came for the TTL;
			// a row changed since gets a timer at its own expiry.
			Timer: func(ctx *stream.KeyedContext[rowKey, row.Row], t stream.Timer) {
				prev, had := last.Get()
				if ttl <= 0 || !had || prev.timer != t.Time {
					return // a timer of a run with a TTL: keep the row
				}
				if due := prev.touched + ttl; due > t.Time {
					prev.timer = due
					ctx.RegisterProcessingTimer(due)
					last.Set(prev)
					return
				}
				last.Clear()
			},
		}, nil
	}, stream.Name(name))
}

// timedRow is the row a changelog's normalisation keeps per key, with its
// event time. timed is false for a row restored from a checkpoint of a
// Sluice that did not keep the time (its codec version 1: a keyedRow).
// touched and timer are the processing time of its last change and of its
// expiry timer (state TTL; 0 without, or when kept by a Sluice before it).
type timedRow struct {
	r       row.Row
	ts      int64
	timed   bool
	touched int64
	timer   int64
}

// timedRowVersion is timedRow's codec version: version, varint time,
// varint touched, varint timer, row. Version timedRowVersion2 has only the
// time; version codecVersion (1) is a keyedRow without it.
const (
	timedRowVersion  = 3
	timedRowVersion2 = 2
)

// MarshalBinary implements encoding.BinaryMarshaler.
func (t timedRow) MarshalBinary() ([]byte, error) {
	b := binary.AppendVarint([]byte{timedRowVersion}, t.ts)
	b = binary.AppendVarint(b, t.touched)
	b = binary.AppendVarint(b, t.timer)
	return t.r.AppendBinary(b), nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (t *timedRow) UnmarshalBinary(b []byte) error {
	if len(b) > 0 && b[0] == codecVersion {
		var k keyedRow
		if err := k.UnmarshalBinary(b); err != nil {
			return err
		}
		*t = timedRow{r: k.r}
		return nil
	}
	if len(b) < 1 || (b[0] != timedRowVersion && b[0] != timedRowVersion2) {
		return fmt.Errorf("%w: changelog row", errCodec)
	}
	nums := []*int64{&t.ts}
	if b[0] == timedRowVersion {
		nums = append(nums, &t.touched, &t.timer)
	}
	*t = timedRow{timed: true}
	rest := b[1:]
	for _, p := range nums {
		v, n := binary.Varint(rest)
		if n <= 0 {
			return fmt.Errorf("%w: changelog row time", errCodec)
		}
		*p, rest = v, rest[n:]
	}
	r, _, err := row.DecodeRow(rest)
	if err != nil {
		return err
	}
	t.r = r
	return nil
}
