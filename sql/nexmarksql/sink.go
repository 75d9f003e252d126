package nexmarksql

import (
	"context"
	"encoding/binary"
	"sync"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/nexmark/queries"
	"github.com/sluicehq/sluice/sql"
	"github.com/sluicehq/sluice/sql/connect"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/stream"
)

// fingerprints collects the result rows of a run as the hand-written
// runner does: each row's canonical JSON (the result table's columns in
// order, times as epoch milliseconds, decimals with their scale) added
// for +I/+U and subtracted for -U/-D. Under checkpointing it is an
// exactly-once sink: a subtask's rows since the last barrier are staged
// at the barrier and counted only when the checkpoint completes, so a
// restart that replays them does not count them twice.
type fingerprints struct {
	mu        sync.Mutex
	committed queries.Fingerprint
	// staged are the pre-committed fingerprints by transaction handle.
	staged map[string]queries.Fingerprint
	seq    uint64
	// transactional: the job checkpoints, so rows count only through
	// commits (the end of the input pre-commits a final transaction);
	// otherwise a writer's rows count when it closes.
	transactional bool
}

func (f *fingerprints) total() queries.Fingerprint {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.committed
}

func (f *fingerprints) connector() sql.SinkConnector {
	return sql.SinkConnector{AcceptsUpdates: true, Open: func(t connect.SinkTable) (stream.Sink[exec.Change], error) {
		return &fpSink{f: f, cols: t.Columns}, nil
	}}
}

type fpSink struct {
	f    *fingerprints
	cols []connect.Column
}

func (s *fpSink) Open(context.Context, stream.SubtaskInfo) (stream.SinkWriter[exec.Change], error) {
	return &fpWriter{f: s.f, cols: s.cols}, nil
}

type fpWriter struct {
	f    *fingerprints
	cols []connect.Column
	cur  queries.Fingerprint
	buf  []byte
}

func (w *fpWriter) Write(_ context.Context, recs []exec.Change) error {
	for _, c := range recs {
		w.buf = connect.AppendJSON(w.buf[:0], w.cols, c.Vals, connect.JSONOptions{})
		if c.Op.IsRetract() {
			w.cur.Remove(w.buf)
		} else {
			w.cur.Add(w.buf)
		}
	}
	return nil
}

func (w *fpWriter) OnBarrier(context.Context, uint64) error { return nil }

// PreCommit implements checkpoint.TwoPhaseCommitter: stage the rows since
// the last barrier.
func (w *fpWriter) PreCommit(_ context.Context, _ checkpoint.ID) (checkpoint.Transaction, error) {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	if w.f.staged == nil {
		w.f.staged = map[string]queries.Fingerprint{}
	}
	w.f.seq++
	h := binary.BigEndian.AppendUint64(nil, w.f.seq)
	w.f.staged[string(h)] = w.cur
	w.cur = queries.Fingerprint{}
	return h, nil
}

// Commit implements checkpoint.TwoPhaseCommitter (idempotent).
func (w *fpWriter) Commit(_ context.Context, tx checkpoint.Transaction) error {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	if fp, ok := w.f.staged[string(tx)]; ok {
		w.f.committed.Merge(fp)
		delete(w.f.staged, string(tx))
	}
	return nil
}

// Abort implements checkpoint.TwoPhaseCommitter.
func (w *fpWriter) Abort(_ context.Context, tx checkpoint.Transaction) error {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	delete(w.f.staged, string(tx))
	return nil
}

// Recover implements checkpoint.TwoPhaseCommitter: commit what the
// restored checkpoint pre-committed, forget the rest.
func (w *fpWriter) Recover(ctx context.Context, committed []checkpoint.Transaction) error {
	for _, tx := range committed {
		if err := w.Commit(ctx, tx); err != nil {
			return err
		}
	}
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	w.f.staged = nil
	return nil
}

// Close counts the writer's rows when the job does not checkpoint. (Under
// checkpoints the end of the input pre-commits them, and a writer closed
// by a failure must not count what will be replayed.)
func (w *fpWriter) Close(context.Context) error {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	if !w.f.transactional {
		w.f.committed.Merge(w.cur)
	}
	w.cur = queries.Fingerprint{}
	return nil
}
