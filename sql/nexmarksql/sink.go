package nexmarksql

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/nexmark/queries"
	"github.com/sluicehq/sluice/sql"
	"github.com/sluicehq/sluice/sql/connect"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/stream"
)

var errInjected = errors.New("nexmark SQL test: injected failure after a checkpoint")

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
	commits       int
	seen          int64
	// Test hooks (see Config).
	failOnce    *atomic.Bool
	countColumn string
	count       *atomic.Int64
}

func (f *fingerprints) total() queries.Fingerprint {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.committed
}

func (f *fingerprints) connector() sql.SinkConnector {
	return sql.SinkConnector{AcceptsUpdates: true, Open: func(t connect.SinkTable) (stream.Sink[exec.Change], error) {
		s := &fpSink{f: f, cols: t.Columns, countCol: -1}
		for i, c := range t.Columns {
			if f.countColumn != "" && c.Name == f.countColumn {
				s.countCol = i
			}
		}
		if f.countColumn != "" && s.countCol < 0 {
			return nil, fmt.Errorf("result table %s has no column %s", t.Name, f.countColumn)
		}
		return s, nil
	}}
}

type fpSink struct {
	f        *fingerprints
	cols     []connect.Column
	countCol int
}

func (s *fpSink) Open(_ context.Context, info stream.SubtaskInfo) (stream.SinkWriter[exec.Change], error) {
	return &fpWriter{f: s.f, cols: s.cols, enc: connect.NewJSONEncoder(s.cols, connect.JSONOptions{}), countCol: s.countCol, sub: uint32(info.Index)}, nil
}

type fpWriter struct {
	f        *fingerprints
	cols     []connect.Column
	countCol int
	sub      uint32 // the subtask: the first 4 bytes of its handles
	cur      queries.Fingerprint
	buf      []byte
	enc      *connect.JSONEncoder
}

func (w *fpWriter) Write(_ context.Context, recs []exec.Change) error {
	if w.f.failOnce != nil {
		w.f.mu.Lock()
		w.f.seen += int64(len(recs))
		// After a committed checkpoint (the restart restores it), or at
		// the latest at the first rows (a slow machine may not
		// complete a checkpoint in a small run: the restart is then
		// from the beginning).
		fail := (w.f.commits > 0 || w.f.seen >= 1) && w.f.failOnce.CompareAndSwap(false, true)
		w.f.mu.Unlock()
		if fail {
			return errInjected
		}
	}
	for _, c := range recs {
		if w.countCol >= 0 {
			n := c.Vals[w.countCol].AsInt()
			if c.Op.IsRetract() {
				n = -n
			}
			w.f.count.Add(n)
		}
		w.buf = w.enc.Append(w.buf[:0], exec.Change{Op: exec.Insert, Vals: c.Vals})
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
	h := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(nil, w.sub), w.f.seq)
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
		w.f.commits++
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
// restored checkpoint pre-committed for this subtask, forget what the
// subtask staged after it.
func (w *fpWriter) Recover(ctx context.Context, committed []checkpoint.Transaction) error {
	for _, tx := range committed {
		if err := w.Commit(ctx, tx); err != nil {
			return err
		}
	}
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	for h := range w.f.staged {
		if binary.BigEndian.Uint32([]byte(h)) == w.sub {
			delete(w.f.staged, h)
		}
	}
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
