package queries

import (
	"context"
	"io"
	"sync"

	"github.com/sluicehq/sluice/stream"
)

// results gathers what every sink subtask of a run saw: the merged
// fingerprint and, when requested, the rows as JSON lines.
type results struct {
	mu   sync.Mutex
	fp   Fingerprint
	out  io.Writer      // nil: rows are only fingerprinted
	err  error          // first error writing out
	live map[string]int // final rows of a changelog, written by flushLive
}

// mergeLive adds a changelog subtask's live rows.
func (r *results) mergeLive(live map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.live == nil {
		r.live = make(map[string]int)
	}
	for k, n := range live {
		r.live[k] += n
	}
}

// flushLive writes the final rows of a changelog query, once every sink
// subtask has closed.
func (r *results) flushLive() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.out == nil || r.err != nil {
		return r.err
	}
	var lines []byte
	for k, n := range r.live {
		for ; n > 0; n-- {
			lines = append(append(lines, k...), '\n')
		}
	}
	r.live = nil
	_, r.err = r.out.Write(lines)
	return r.err
}

func (r *results) merge(fp Fingerprint) {
	r.mu.Lock()
	r.fp.Merge(fp)
	r.mu.Unlock()
}

// writeLines writes complete JSON lines to the output, if any.
func (r *results) writeLines(lines []byte) error {
	if r.out == nil || len(lines) == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		_, r.err = r.out.Write(lines)
	}
	return r.err
}

func (r *results) writeErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *results) fingerprint() Fingerprint {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fp
}

const flushLines = 256 << 10

// appendSink fingerprints every row it receives: the sink of queries whose
// results are append-only.
type appendSink[R Row] struct{ res *results }

func (s appendSink[R]) Open(context.Context, stream.SubtaskInfo) (stream.SinkWriter[R], error) {
	return &appendWriter[R]{res: s.res}, nil
}

type appendWriter[R Row] struct {
	res   *results
	fp    Fingerprint
	buf   []byte
	lines []byte
}

func (w *appendWriter[R]) Write(_ context.Context, rows []R) error {
	out := w.res.out != nil
	for i := range rows {
		w.buf = rows[i].AppendJSON(w.buf[:0])
		w.fp.Add(w.buf)
		if out {
			w.lines = append(append(w.lines, w.buf...), '\n')
		}
	}
	if len(w.lines) >= flushLines {
		err := w.res.writeLines(w.lines)
		w.lines = w.lines[:0]
		return err
	}
	return nil
}

func (w *appendWriter[R]) Close(context.Context) error {
	w.res.merge(w.fp)
	w.fp = Fingerprint{}
	err := w.res.writeLines(w.lines)
	w.lines = nil
	return err
}

// Change is one entry of an updating query's changelog: the insertion of
// Row or, with Retract, the retraction of a Row inserted earlier. An update
// is a retraction of the old row followed by an insertion of the new.
type Change[R Row] struct {
	Row     R
	Retract bool
}

// changeSink fingerprints a changelog: insertions add, retractions
// subtract, so the result is the fingerprint of the final rows in any
// order. With an output it also tracks the live rows (by encoding) and
// writes them when its input ends.
type changeSink[R Row] struct{ res *results }

func (s changeSink[R]) Open(context.Context, stream.SubtaskInfo) (stream.SinkWriter[Change[R]], error) {
	w := &changeWriter[R]{res: s.res}
	if s.res.out != nil {
		w.live = make(map[string]int)
	}
	return w, nil
}

type changeWriter[R Row] struct {
	res  *results
	fp   Fingerprint
	buf  []byte
	live map[string]int // encoded row -> multiplicity; nil without output
}

func (w *changeWriter[R]) Write(_ context.Context, changes []Change[R]) error {
	for i := range changes {
		c := &changes[i]
		w.buf = c.Row.AppendJSON(w.buf[:0])
		if c.Retract {
			w.fp.Remove(w.buf)
		} else {
			w.fp.Add(w.buf)
		}
		if w.live != nil {
			k := string(w.buf)
			n := w.live[k]
			if c.Retract {
				n--
			} else {
				n++
			}
			if n == 0 {
				delete(w.live, k)
			} else {
				w.live[k] = n
			}
		}
	}
	return nil
}

// Close merges this subtask's changes. Rows retracted on another subtask
// than the one that inserted them cancel out in the merged fingerprint;
// for the output, multiplicities are merged across subtasks first.
func (w *changeWriter[R]) Close(context.Context) error {
	w.res.merge(w.fp)
	w.fp = Fingerprint{}
	if w.live != nil {
		w.res.mergeLive(w.live)
		w.live = nil
	}
	return nil
}
