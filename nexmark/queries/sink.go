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
	mu  sync.Mutex
	fp  Fingerprint
	out io.Writer // nil: rows are only fingerprinted
	err error     // first error writing out
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

// upsertSink keeps the latest row per key and fingerprints the final rows
// when its input ends: the sink of queries whose results update earlier
// results. The rows of one key must reach one subtask in order (key the
// stream by the same key before the sink).
type upsertSink[K comparable, R Row] struct {
	res *results
	key func(R) K
}

func (s upsertSink[K, R]) Open(context.Context, stream.SubtaskInfo) (stream.SinkWriter[R], error) {
	return &upsertWriter[K, R]{res: s.res, key: s.key, last: make(map[K]R)}, nil
}

type upsertWriter[K comparable, R Row] struct {
	res  *results
	key  func(R) K
	last map[K]R
}

func (w *upsertWriter[K, R]) Write(_ context.Context, rows []R) error {
	for _, r := range rows {
		w.last[w.key(r)] = r
	}
	return nil
}

func (w *upsertWriter[K, R]) Close(context.Context) error {
	var fp Fingerprint
	var buf, lines []byte
	for _, r := range w.last {
		buf = r.AppendJSON(buf[:0])
		fp.Add(buf)
		if w.res.out != nil {
			lines = append(append(lines, buf...), '\n')
		}
	}
	w.last = nil
	w.res.merge(fp)
	return w.res.writeLines(lines)
}
