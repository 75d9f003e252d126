package pipeline

import (
	"context"
	"errors"
	"testing"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// byteWriter is a byte sink's writer that records what reaches it.
type byteWriter struct {
	writes   int
	barriers []uint64 // OnBarrier calls
}

func (w *byteWriter) Write(context.Context, []connector.Message) error { w.writes++; return nil }
func (w *byteWriter) Close(context.Context) error                      { return nil }
func (w *byteWriter) OnBarrier(_ context.Context, id uint64) error {
	w.barriers = append(w.barriers, id)
	return nil
}

// asyncByteWriter also answers barriers asynchronously, as the
// at-least-once Kafka sink does: it keeps the answer until the test
// gives it.
type asyncByteWriter struct {
	byteWriter
	asyncIDs []uint64
	answer   func(error)
}

func (w *asyncByteWriter) OnBarrierAsync(_ context.Context, id uint64, done func(error)) {
	w.asyncIDs = append(w.asyncIDs, id)
	w.answer = done
}

type byteSink struct {
	w stream.SinkWriter[connector.Message]
}

func (s byteSink) Open(context.Context, stream.SubtaskInfo) (stream.SinkWriter[connector.Message], error) {
	return s.w, nil
}

func testEncodingSink(t *testing.T, w stream.SinkWriter[connector.Message]) stream.SinkWriter[row.Row] {
	t.Helper()
	schema, err := row.NewSchema(row.Field{Name: "n", Kind: row.KindInt})
	if err != nil {
		t.Fatal(err)
	}
	s := &encodingSink{inner: byteSink{w}, enc: jsonRows{row.NewJSONEncoder(schema)}, keyIdx: -1, name: "sink", schema: schema}
	ew, err := s.Open(context.Background(), stream.SubtaskInfo{Operator: "sink", Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	return ew
}

// TestEncodingSinkForwardsAsyncBarriers: a byte sink that answers
// barriers asynchronously keeps that capability behind the encoding
// adapter (without it the runtime would call OnBarrier, a flush that
// stops the subtask at every checkpoint), and its answer is the
// adapter's.
func TestEncodingSinkForwardsAsyncBarriers(t *testing.T) {
	inner := &asyncByteWriter{}
	w := testEncodingSink(t, inner)
	abw, ok := w.(stream.AsyncBarrierWriter)
	if !ok {
		t.Fatalf("the adapter of an asynchronous byte sink (%T) does not implement stream.AsyncBarrierWriter", w)
	}
	if err := w.Write(context.Background(), []row.Row{{Vals: []row.Value{row.Int(1)}}}); err != nil {
		t.Fatal(err)
	}
	var got []error
	abw.OnBarrierAsync(context.Background(), 7, func(err error) { got = append(got, err) })
	if len(inner.asyncIDs) != 1 || inner.asyncIDs[0] != 7 {
		t.Fatalf("byte sink got asynchronous barriers %v, want [7]", inner.asyncIDs)
	}
	if len(inner.barriers) != 0 {
		t.Fatalf("byte sink got synchronous barriers %v, want none", inner.barriers)
	}
	if len(got) != 0 {
		t.Fatalf("barrier answered before the byte sink answered: %v", got)
	}
	failed := errors.New("produce failed")
	inner.answer(failed)
	if len(got) != 1 || !errors.Is(got[0], failed) {
		t.Fatalf("answers %v, want the byte sink's [%v]", got, failed)
	}
	if inner.writes != 1 {
		t.Fatalf("byte sink got %d writes, want 1", inner.writes)
	}
}

// TestEncodingSinkNoAsyncBarriersUnlessInner: over a byte sink that
// answers barriers only synchronously the adapter claims no asynchronous
// answer, and barriers reach the byte sink's OnBarrier.
func TestEncodingSinkNoAsyncBarriersUnlessInner(t *testing.T) {
	inner := &byteWriter{}
	w := testEncodingSink(t, inner)
	if _, ok := w.(stream.AsyncBarrierWriter); ok {
		t.Fatalf("the adapter of a synchronous byte sink (%T) claims stream.AsyncBarrierWriter", w)
	}
	bw, ok := w.(stream.BarrierWriter)
	if !ok {
		t.Fatalf("the adapter (%T) does not pass barriers on", w)
	}
	if err := bw.OnBarrier(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	if len(inner.barriers) != 1 || inner.barriers[0] != 3 {
		t.Fatalf("byte sink got barriers %v, want [3]", inner.barriers)
	}
}
