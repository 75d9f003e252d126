package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/connector/file"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// tsRow is a decoded row with its event time, as the ingest source emits
// it (the stream runtime takes the timestamp from it).
type tsRow struct {
	r  row.Row
	ts int64
	// r2 is an update's after-image row, at event time ts2, when two is
	// set (a changelog source's update is two rows, -U and +U, of one
	// record).
	r2  row.Row
	ts2 int64
	two bool
}

// maxTs is the latest event time of the record's rows (the time its
// watermark counts).
func (t tsRow) maxTs() int64 {
	if t.two {
		return max(t.ts, t.ts2)
	}
	return t.ts
}

// ingestSource turns a byte source into rows: each split decodes its
// messages (json, csv or raw), takes their event time and runs the
// stateless steps that precede the first keyed step, all in the split's
// own goroutine and with its own decoder and arena. Records that fail go
// to the dead letters.
type ingestSource struct {
	inner stream.Source[connector.Message]
	in    *inputPlan
	avro  *avroInput  // format avro
	pb    *protoInput // format protobuf
	dl    *deadLetters
	read  *atomic.Int64 // messages read, over all splits
}

func (s *ingestSource) Splits(ctx context.Context, parallelism int) ([]stream.Split[tsRow], error) {
	inner, err := s.inner.Splits(ctx, parallelism)
	if err != nil {
		return nil, err
	}
	out := make([]stream.Split[tsRow], len(inner))
	for i, sp := range inner {
		md, err := newMsgDecoder(s.in, s.avro, s.pb)
		if err != nil {
			return nil, err
		}
		out[i] = &ingestSplit{inner: sp, dl: s.dl, read: s.read, msgDecoder: md}
	}
	return out, nil
}

type ingestSplit struct {
	*msgDecoder
	inner stream.Split[connector.Message]
	dl    *deadLetters
	msgs  []connector.Message
	read  *atomic.Int64
}

// msgDecoder turns a message into a row of an input: it decodes the
// bytes (json, csv or raw), takes the event time and runs the stateless
// steps that precede the first keyed step. One per split (or cluster
// task): it owns its decoder and arena.
type msgDecoder struct {
	in     *inputPlan
	json   *row.JSONDecoder
	csv    *row.CSVDecoder
	avro   *avroDecoder
	pb     *protoSplit
	header []byte
	arena  row.Arena
	// clx expands change events (a changelog source); nil otherwise.
	clx *changelogExpander
	// maxTs is the latest event time decoded so far (a changelog's
	// retraction without one takes it: see changeMessage).
	maxTs int64
	// timeless: the row being decoded may lack its event time.
	timeless bool
}

func newMsgDecoder(in *inputPlan, ai *avroInput, pi *protoInput) (*msgDecoder, error) {
	md := &msgDecoder{in: in}
	if in.spec.Changelog != nil {
		md.clx = &changelogExpander{spec: in.spec.Changelog}
	}
	sch := in.schema()
	switch in.spec.Format {
	case "protobuf":
		if pi == nil {
			return nil, fmt.Errorf("%s: format protobuf: the input was not prepared", in.name)
		}
		md.pb = newProtoSplit(in, pi)
	case "avro":
		if ai == nil {
			return nil, fmt.Errorf("%s: format avro: the input was not prepared", in.name)
		}
		md.avro = &avroDecoder{in: ai}
	case "csv":
		md.csv = row.NewCSVDecoder(sch, in.spec.CSV.Delimiter, in.keepRest)
		if len(in.spec.CSV.Columns) > 0 {
			if err := md.csv.SetColumns(in.spec.CSV.Columns); err != nil {
				return nil, err
			}
		}
	case "raw":
	default:
		md.json = row.NewJSONDecoder(sch, in.keepRest)
	}
	return md, nil
}

// message decodes m. keep is false when a step dropped it; a non-nil
// failure is a record that could not be processed (for the dead letters).
func (s *msgDecoder) message(m *connector.Message) (tr tsRow, keep bool, f *failure) {
	r, derr := s.decode(m)
	if derr != nil {
		var fe *fatalError
		return tsRow{}, false, &failure{Stage: s.in.name + ".decode", Origin: m.Origin, Offset: m.Offset, Err: derr, Raw: m.Value,
			Binary: s.avro != nil || s.pb != nil, Fatal: errors.As(derr, &fe)}
	}
	var ts int64
	if s.in.tsField >= 0 {
		v := r.Vals[s.in.tsField]
		ms, terr := v.Millis()
		if terr != nil && s.timeless && v.IsNull() {
			ms, terr = s.maxTs, nil
		}
		if terr != nil {
			if v.IsNull() {
				terr = fmt.Errorf("%w: field %q is missing", errNoEventTime, s.in.spec.EventTime.Field)
			} else {
				terr = fmt.Errorf("%w: field %q: %w", errNoEventTime, s.in.spec.EventTime.Field, terr)
			}
			return tsRow{}, false, &failure{Stage: s.in.name + ".event_time", Origin: m.Origin, Offset: m.Offset, Err: terr, Raw: m.Value}
		}
		if terr = eventTimeInRange(ms); terr != nil {
			terr = fmt.Errorf("%w: field %q: %w", errNoEventTime, s.in.spec.EventTime.Field, terr)
			return tsRow{}, false, &failure{Stage: s.in.name + ".event_time", Origin: m.Origin, Offset: m.Offset, Err: terr, Raw: m.Value}
		}
		ts = ms
		s.maxTs = max(s.maxTs, ms)
	} else if s.in.srcTime {
		if m.Timestamp == 0 {
			return tsRow{}, false, &failure{Stage: s.in.name + ".event_time", Origin: m.Origin, Offset: m.Offset,
				Err: fmt.Errorf("%w: the connector gave the record no time (event_time: source_time)", errNoEventTime), Raw: m.Value}
		}
		if err := eventTimeInRange(m.Timestamp); err != nil {
			return tsRow{}, false, &failure{Stage: s.in.name + ".event_time", Origin: m.Origin, Offset: m.Offset,
				Err: fmt.Errorf("%w: the connector's time: %w", errNoEventTime, err), Raw: m.Value}
		}
		ts = m.Timestamp
	}
	if !s.in.chain.empty() {
		var keep bool
		var cerr error
		r, keep, cerr = s.in.chain.apply(r, &s.arena)
		if cerr != nil {
			stage := cerr.Error()
			var se *stepError
			if errors.As(cerr, &se) {
				stage, cerr = se.stage, se.err
			}
			return tsRow{}, false, &failure{Stage: stage, Origin: m.Origin, Offset: m.Offset, Err: cerr, Raw: m.Value}
		}
		if !keep {
			return tsRow{}, false, nil
		}
	}
	return tsRow{r: r, ts: ts}, true, nil
}

func (s *ingestSplit) ID() string            { return s.inner.ID() }
func (s *ingestSplit) Position() []byte      { return s.inner.Position() }
func (s *ingestSplit) Seek(pos []byte) error { return s.inner.Seek(pos) }

// Lag implements stream.Lagger when the connector's split does; -1 means
// unknown.
func (s *ingestSplit) Lag() int64 {
	if l, ok := s.inner.(stream.Lagger); ok {
		return l.Lag()
	}
	return -1
}

// CommitPosition passes a completed checkpoint's position on to a split
// that records positions outside (Kafka group offsets, HTTP answers).
func (s *ingestSplit) CommitPosition(ctx context.Context, pos []byte) error {
	if c, ok := s.inner.(interface {
		CommitPosition(ctx context.Context, pos []byte) error
	}); ok {
		return c.CommitPosition(ctx, pos)
	}
	return nil
}

// Wake implements stream.Waker for a connector split that does: a Read
// waiting for data returns at once, so that a checkpoint barrier leaves
// without waiting for the connector's poll (with exactly-once delivery
// that wait would add to every record's latency).
func (s *ingestSplit) Wake() {
	if w, ok := s.inner.(stream.Waker); ok {
		w.Wake()
	}
}

// Buffered implements stream.Buffered for a connector split that does:
// while it has more right now, the runtime lets batches fill up to the
// buffer timeout instead of sending them after every read.
func (s *ingestSplit) Buffered() bool {
	b, ok := s.inner.(stream.Buffered)
	return ok && b.Buffered()
}

func (s *ingestSplit) Close() error {
	if c, ok := s.inner.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

var errNoEventTime = errors.New("no event time")

// The event times a record may have: the years 0000 to 9999 (UTC), the
// times RFC 3339 writes, in epoch milliseconds. A time outside them is
// taken for a mistake (microseconds or nanoseconds where milliseconds
// belong, a sentinel like the largest int64): taken as it is, it would
// move the watermark thousands of years ahead, making every later record
// late, or overflow the end of its window.
const (
	minEventTime = -62167219200000 // 0000-01-01T00:00:00Z
	maxEventTime = 253402300799999 // 9999-12-31T23:59:59.999Z
)

// eventTimeInRange returns an error for a time outside [minEventTime,
// maxEventTime].
func eventTimeInRange(ms int64) error {
	if ms < minEventTime || ms > maxEventTime {
		return fmt.Errorf("%d ms since the epoch is outside the years 0000-9999 (microseconds or nanoseconds instead of milliseconds?)", ms)
	}
	return nil
}

func (s *ingestSplit) Read(ctx context.Context, dst []tsRow) (int, error) {
	if cap(s.msgs) < len(dst) {
		s.msgs = make([]connector.Message, len(dst))
	}
	msgs := s.msgs[:len(dst)]
	n, err := s.inner.Read(ctx, msgs)
	s.read.Add(int64(n))
	out := 0
	for i := range msgs[:n] {
		m := &msgs[i]
		var tr tsRow
		var keep bool
		var f *failure
		if s.clx != nil {
			tr, keep, f = s.changeMessage(m)
		} else {
			tr, keep, f = s.message(m)
		}
		if f != nil {
			if ferr := s.dl.report(ctx, *f); ferr != nil {
				return out, ferr
			}
			continue
		}
		if keep {
			dst[out] = tr
			out++
		}
	}
	clear(msgs[:n])
	if err != nil && out > 0 && errors.Is(err, io.EOF) {
		return out, nil
	}
	return out, err
}

func (s *msgDecoder) decode(m *connector.Message) (row.Row, error) {
	switch {
	case s.json != nil:
		if s.in.jsonSchema != nil {
			if err := validateJSON(s.in.jsonSchema, m.Value); err != nil {
				return row.Row{}, err
			}
		}
		return s.json.Decode(m.Value)
	case s.pb != nil:
		if s.pb.in.delimited {
			if err := pbFrameError(m); err != nil {
				return row.Row{}, err
			}
		}
		return s.pb.decode(m.Value)
	case s.avro != nil:
		if s.avro.in.container {
			return s.avro.decodeContainer(m)
		}
		return s.avro.decode(m.Value)
	case s.csv != nil:
		if len(s.in.spec.CSV.Columns) == 0 {
			var h []byte
			for _, hd := range m.Headers {
				if hd.Key == file.HeaderKey {
					h = hd.Value
				}
			}
			if h == nil {
				return row.Row{}, fmt.Errorf("%w: no header line and no csv.columns", row.ErrCSV)
			}
			if !bytes.Equal(h, s.header) || !s.csv.HasHeader() {
				if err := s.csv.SetHeader(h); err != nil {
					return row.Row{}, err
				}
				s.header = append(s.header[:0], h...)
			}
		}
		return s.csv.Decode(m.Value)
	}
	// raw: key, value, timestamp
	vals := s.arena.Values(3)
	if m.Key != nil {
		vals[0] = row.String(s.arena.String(m.Key))
	}
	vals[1] = row.String(s.arena.String(m.Value))
	if m.Timestamp != 0 {
		vals[2] = row.Int(m.Timestamp)
	}
	return row.Row{Vals: vals}, nil
}
