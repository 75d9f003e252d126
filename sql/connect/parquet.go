package connect

import (
	"context"
	"fmt"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/connector/parquet"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/stream"
)

// rowSchema is the row.Schema of a table's columns (their storage kinds),
// for the row-oriented sinks.
func rowSchema(cols []Column) (*row.Schema, error) {
	fs := make([]row.Field, len(cols))
	for i, c := range cols {
		fs[i] = row.Field{Name: c.Name, Kind: c.Type.Storage()}
	}
	return row.NewSchema(fs...)
}

// openParquetSink writes 'filesystem' tables with 'format' = 'parquet'
// through connector/parquet: one column per table column, by storage
// (DECIMAL as its unscaled INT64, DATE as INT64 days, TIMESTAMP as
// TIMESTAMP millis, ROW and ARRAY as JSON).
func openParquetSink(t SinkTable, env Env) (stream.Sink[exec.Change], error) {
	sc, err := rowSchema(t.Columns)
	if err != nil {
		return nil, err
	}
	cfg := parquet.Config{Path: t.Options["path"], TwoPhase: env.ExactlyOnce, CommitOnBarrier: !env.ExactlyOnce}
	inner, err := parquet.NewSink(cfg, sc)
	if err != nil {
		return nil, err
	}
	return &rowSink{inner: inner}, nil
}

// rowSink hands rows to a sink of row.Row.
type rowSink struct {
	inner stream.Sink[row.Row]
}

func (s *rowSink) Open(ctx context.Context, info stream.SubtaskInfo) (stream.SinkWriter[exec.Change], error) {
	w, err := s.inner.Open(ctx, info)
	if err != nil {
		return nil, err
	}
	rw := &rowWriter{inner: w}
	if tp, ok := w.(checkpoint.TwoPhaseCommitter); ok {
		return &rowTxWriter{rowWriter: rw, tp: tp}, nil
	}
	return rw, nil
}

type rowWriter struct {
	inner stream.SinkWriter[row.Row]
	rows  []row.Row
}

func (w *rowWriter) Write(ctx context.Context, recs []exec.Change) error {
	w.rows = w.rows[:0]
	for _, c := range recs {
		if c.Op != exec.Insert {
			return fmt.Errorf("an append-only sink got a %s row", c.Op)
		}
		w.rows = append(w.rows, row.Row{Vals: c.Vals})
	}
	err := w.inner.Write(ctx, w.rows)
	clear(w.rows)
	return err
}

func (w *rowWriter) Close(ctx context.Context) error { return w.inner.Close(ctx) }

// OnBarrier implements stream.BarrierWriter when the inner writer does.
func (w *rowWriter) OnBarrier(ctx context.Context, id uint64) error {
	if b, ok := w.inner.(stream.BarrierWriter); ok {
		return b.OnBarrier(ctx, id)
	}
	return nil
}

type rowTxWriter struct {
	*rowWriter
	tp checkpoint.TwoPhaseCommitter
}

func (w *rowTxWriter) PreCommit(ctx context.Context, id checkpoint.ID) (checkpoint.Transaction, error) {
	return w.tp.PreCommit(ctx, id)
}
func (w *rowTxWriter) Commit(ctx context.Context, tx checkpoint.Transaction) error {
	return w.tp.Commit(ctx, tx)
}
func (w *rowTxWriter) Abort(ctx context.Context, tx checkpoint.Transaction) error {
	return w.tp.Abort(ctx, tx)
}
func (w *rowTxWriter) Recover(ctx context.Context, txs []checkpoint.Transaction) error {
	return w.tp.Recover(ctx, txs)
}
