package parquet

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pq "github.com/parquet-go/parquet-go"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/internal/durable"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// DefaultMaxRowsPerFile is Config.MaxRowsPerFile's default.
const DefaultMaxRowsPerFile = 1_000_000

// Config configures a Sink.
type Config struct {
	// Path is the directory the part files go to; it is created if
	// missing.
	Path string
	// MaxRowsPerFile rolls to a new file after this many rows;
	// DefaultMaxRowsPerFile when 0.
	MaxRowsPerFile int
	// CommitOnBarrier renames files at the barrier instead of waiting for
	// CommitCheckpoint.
	CommitOnBarrier bool
	// TwoPhase makes files visible only through checkpoint completion,
	// as a checkpoint.TwoPhaseCommitter: PreCommit stages the files closed
	// since the previous checkpoint (durable under hidden names), Commit
	// renames them into place once the checkpoint is complete, Abort
	// deletes them, Recover commits those of the restored checkpoint and
	// deletes what earlier runs left staged. It takes precedence over
	// CommitOnBarrier.
	TwoPhase bool
}

// ErrIncompatible is matched by a value that does not fit its column.
var ErrIncompatible = errors.New("value does not fit its column")

// Rejected is one row the sink could not write, and why.
type Rejected struct {
	Row   row.Row
	Field string
	Err   error
}

// RejectError reports rows left out of a Write because a value does not fit
// its column (matching ErrIncompatible). The Write's other rows were
// written and the writer stays usable, so the caller can route the
// rejected rows to a dead-letter sink and go on.
type RejectError struct {
	Rejected []Rejected
}

func (e *RejectError) Error() string {
	r := e.Rejected[0]
	if len(e.Rejected) > 1 {
		return fmt.Sprintf("%d rows rejected; the first: field %s: %v", len(e.Rejected), r.Field, r.Err)
	}
	return fmt.Sprintf("row rejected: field %s: %v", r.Field, r.Err)
}

// Unwrap returns the causes, one per rejected row.
func (e *RejectError) Unwrap() []error {
	errs := make([]error, len(e.Rejected))
	for i, r := range e.Rejected {
		errs[i] = r.Err
	}
	return errs
}

// Sink writes rows to Parquet part files; it implements
// stream.Sink[row.Row].
type Sink struct {
	cfg    Config
	schema *row.Schema
	run    string

	opens atomic.Int64 // numbers the writers' runs
	// live holds the runs of the writers open now, whose temporary files
	// clean leaves alone.
	liveMu sync.Mutex
	live   map[string]bool
	// syncDir makes a directory's entries durable (durable.SyncDir;
	// tests record what it made durable).
	syncDir func(string) error
}

var _ stream.Sink[row.Row] = (*Sink)(nil)

// NewSink validates cfg against the schema of the rows it will get.
func NewSink(cfg Config, schema *row.Schema) (*Sink, error) {
	if cfg.Path == "" {
		return nil, errors.New("parquet sink: no path")
	}
	if schema == nil || schema.Len() == 0 {
		return nil, fmt.Errorf("parquet sink %s: the rows have no fields", cfg.Path)
	}
	if cfg.MaxRowsPerFile < 0 {
		return nil, fmt.Errorf("parquet sink %s: negative max_rows_per_file", cfg.Path)
	}
	if cfg.MaxRowsPerFile == 0 {
		cfg.MaxRowsPerFile = DefaultMaxRowsPerFile
	}
	// run tells apart the files of successive runs of the job.
	return &Sink{cfg: cfg, schema: schema, run: strconv.FormatInt(time.Now().UnixNano(), 36), syncDir: durable.SyncDir}, nil
}

// Open implements stream.Sink.
// A writer, before its first file (or at its close), deletes the
// temporary files that writers no longer open left in the directory:
// earlier runs' and those of this Sink's writers that have closed (a
// failed attempt's, when a job restarts in-process with the same Sink),
// never those of a writer still open. Unless the runtime recovers its
// writers (Recover, under checkpointing): each then publishes the files
// the restored checkpoint needs and deletes the rest of its share. (Call
// CommitRecovered before that first file.)
//
// Every writer has a run of its own (the sink's and a count of its
// writers): a job restarted in-process (stream.WithRestartPolicy) opens
// the same Sink's writers again, and their file names must not repeat
// those of the failed attempt, whose staged files their Recover deletes.
func (s *Sink) Open(_ context.Context, info stream.SubtaskInfo) (stream.SinkWriter[row.Row], error) {
	if err := durable.MkdirAll(s.cfg.Path, 0o755, s.syncDir); err != nil {
		return nil, fmt.Errorf("parquet sink: %w", err)
	}
	w := &writer{s: s, run: s.run + "_" + strconv.FormatInt(s.opens.Add(1), 36), subtask: info.Index, par: max(info.Parallelism, 1)}
	s.liveMu.Lock()
	if s.live == nil {
		s.live = map[string]bool{}
	}
	s.live[w.run] = true
	s.liveMu.Unlock()
	return w, nil
}

// clean deletes, once per writer, the temporary files of the writers not
// open now, unless the writer was recovered (Recover did its share, after
// publishing what the restored checkpoint needs: deleting at Open, before
// Recover, lost the files of a checkpoint that completed just before a
// crash).
func (w *writer) clean() error {
	if w.s.cfg.TwoPhase || w.recovered || w.cleaned {
		return nil
	}
	if err := w.s.removeStale(); err != nil {
		return err
	}
	w.cleaned = true
	return nil
}

// release forgets w's run: its temporary files are stale from now on.
func (w *writer) release() {
	w.s.liveMu.Lock()
	delete(w.s.live, w.run)
	w.s.liveMu.Unlock()
}

// tmpPrefix and tmpSuffix frame a part file's temporary name.
const (
	tmpPrefix = ".part-"
	tmpSuffix = ".parquet.inprogress"
)

// removeStale deletes the temporary part files of the writers not open
// now.
func (s *Sink) removeStale() error {
	ents, err := os.ReadDir(s.cfg.Path)
	if err != nil {
		return fmt.Errorf("parquet sink: %w", err)
	}
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, tmpPrefix) && strings.HasSuffix(n, tmpSuffix) && !s.live[tmpRun(n)] {
			if err := os.Remove(filepath.Join(s.cfg.Path, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("parquet sink: remove stale %s: %w", n, err)
			}
		}
	}
	return nil
}

// tmpRun returns the run of a temporary part file's name,
// ".part-<subtask>-<run>-<seq>.parquet.inprogress", or "" when the name
// has another form.
func tmpRun(name string) string {
	f := strings.Split(strings.TrimSuffix(strings.TrimPrefix(name, tmpPrefix), tmpSuffix), "-")
	if len(f) != 3 {
		return ""
	}
	return f[1]
}

// CommitRecovered publishes part files that a restored checkpoint had
// pre-committed (names from PreCommitted): call it before the first Open,
// which deletes every other run's temporary files. A file already
// published is skipped.
func (s *Sink) CommitRecovered(_ context.Context, names []string) error {
	for _, n := range names {
		if filepath.Base(n) != n || !strings.HasPrefix(n, "part-") || !strings.HasSuffix(n, ".parquet") {
			return fmt.Errorf("parquet sink %s: %q is not a part file name", s.cfg.Path, n)
		}
		tmp := filepath.Join(s.cfg.Path, "."+n+".inprogress")
		final := filepath.Join(s.cfg.Path, n)
		if err := os.Rename(tmp, final); err != nil {
			if _, serr := os.Stat(final); serr == nil {
				continue // committed before the failure
			}
			return fmt.Errorf("parquet sink %s: commit recovered %s: %w", s.cfg.Path, n, err)
		}
	}
	return s.sync()
}

// sync makes the directory's entries durable: the final names after
// their renames, and the staged names before a checkpoint refers to them.
func (s *Sink) sync() error {
	if err := s.syncDir(s.cfg.Path); err != nil {
		return fmt.Errorf("parquet sink %s: %w", s.cfg.Path, err)
	}
	return nil
}

type writer struct {
	s       *Sink
	run     string // distinguishes this writer's files from other runs'
	subtask int
	par     int

	kinds    []row.Kind // resolved at the first write
	inferred []bool     // kinds[i] was taken from the data (untyped field)
	colOf    []int      // field index -> column index
	schema   *pq.Schema
	vals     []pq.Value // converted values of a Write, nc per row
	prows    []pq.Row

	cur    *file
	closed []*file // closed since the last barrier

	mu      sync.Mutex // pending is shared with CommitCheckpoint
	pending []pendingFiles
	seq     int
	// recovered: Recover ran (the runtime checkpoints), and cleaned this
	// writer's share of the earlier runs' files.
	recovered bool
	cleaned   bool // clean deleted the stale files
}

type file struct {
	tmp, final string
	f          *os.File
	w          *pq.Writer
	rows       int
}

type pendingFiles struct {
	id    uint64
	files []*file
}

func (w *writer) resolve(rows []row.Row) {
	sc := w.s.schema
	w.kinds = make([]row.Kind, sc.Len())
	w.inferred = make([]bool, sc.Len())
	for i, f := range sc.Fields() {
		k := f.Kind
		if k == row.KindNull {
			// An untyped field takes the kind of its first non-null
			// value, widened to float when the rows mix ints and floats.
			w.inferred[i] = true
			k = row.KindString
			for _, r := range rows {
				v := r.Get(i)
				if v.IsNull() {
					continue
				}
				if k == row.KindString {
					k = v.Kind()
				} else if k == row.KindInt && v.Kind() == row.KindFloat {
					k = row.KindFloat
				}
				if k != row.KindInt {
					break
				}
			}
		}
		w.kinds[i] = k
	}
	w.buildSchema()
}

// widen turns the inferred int columns that rows put floats in into
// float columns. Parquet fixes a file's column types, so the current
// file is finished first and the next one has the wider schema: an
// untyped numeric field whose first values happened to be whole numbers
// does not make later fractional values fail.
func (w *writer) widen(rows []row.Row) error {
	changed := false
	for i, k := range w.kinds {
		if !w.inferred[i] || k != row.KindInt {
			continue
		}
		for _, r := range rows {
			if v := r.Get(i); v.Kind() == row.KindFloat && v.AsFloat() != math.Trunc(v.AsFloat()) {
				w.kinds[i] = row.KindFloat
				changed = true
				break
			}
		}
	}
	if !changed {
		return nil
	}
	if err := w.finish(); err != nil {
		return err
	}
	w.buildSchema()
	return nil
}

// buildSchema derives the Parquet schema from w.kinds.
func (w *writer) buildSchema() {
	sc := w.s.schema
	group := pq.Group{}
	for i, f := range sc.Fields() {
		var n pq.Node
		switch w.kinds[i] {
		case row.KindBool:
			n = pq.Leaf(pq.BooleanType)
		case row.KindInt:
			n = pq.Int(64)
		case row.KindFloat:
			n = pq.Leaf(pq.DoubleType)
		case row.KindTimestamp:
			n = pq.Timestamp(pq.Millisecond)
		case row.KindJSON:
			n = pq.JSON()
		default:
			n = pq.String()
		}
		group[f.Name] = pq.Optional(n)
	}
	w.schema = pq.NewSchema("row", group)
	names := sc.Names()
	sorted := slices.Clone(names)
	slices.Sort(sorted) // parquet orders a group's columns by name
	w.colOf = make([]int, len(names))
	for i, n := range names {
		w.colOf[i], _ = slices.BinarySearch(sorted, n)
	}
}

func (w *writer) open() error {
	name := fmt.Sprintf("part-%d-%s-%06d.parquet", w.subtask, w.run, w.seq)
	w.seq++
	final := filepath.Join(w.s.cfg.Path, name)
	tmp := filepath.Join(w.s.cfg.Path, "."+name+".inprogress") // tmpPrefix ... tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	w.cur = &file{tmp: tmp, final: final, f: f, w: pq.NewWriter(f, w.schema, pq.Compression(&pq.Snappy), pq.CreatedBy("sluice", "", ""))}
	return nil
}

// finish writes the current file's footer and syncs it; the file joins
// the closed ones.
func (w *writer) finish() error {
	c := w.cur
	if c == nil {
		return nil
	}
	w.cur = nil
	err := c.w.Close()
	if err == nil {
		err = c.f.Sync()
	}
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(c.tmp)
		return fmt.Errorf("finish %s: %w", c.tmp, err)
	}
	w.closed = append(w.closed, c)
	return nil
}

// Write implements stream.SinkWriter. Rows are converted into a reused
// buffer and handed to the Parquet writer in runs that end where a file
// rolls.
func (w *writer) Write(_ context.Context, rows []row.Row) error {
	if len(rows) == 0 {
		return nil
	}
	if w.kinds == nil {
		w.resolve(rows)
	} else if err := w.widen(rows); err != nil {
		return fmt.Errorf("parquet sink %s: %w", w.s.cfg.Path, err)
	}
	nc := len(w.kinds)
	if cap(w.vals) < len(rows)*nc {
		w.vals = make([]pq.Value, len(rows)*nc)
		w.prows = make([]pq.Row, 0, len(rows))
	}
	var rejected []Rejected
	w.prows = w.prows[:0]
rows:
	for _, r := range rows {
		prow := pq.Row(w.vals[len(w.prows)*nc : (len(w.prows)+1)*nc])
		for i, k := range w.kinds {
			v, err := convert(r.Get(i), k)
			if err != nil {
				rejected = append(rejected, Rejected{Row: r, Field: w.s.schema.Field(i).Name, Err: err})
				continue rows
			}
			col := w.colOf[i]
			if v.IsNull() {
				prow[col] = v.Level(0, 0, col)
			} else {
				prow[col] = v.Level(0, 1, col)
			}
		}
		w.prows = append(w.prows, prow)
	}
	for todo := w.prows; len(todo) > 0; {
		if w.cur == nil {
			if err := w.clean(); err != nil {
				return err
			}
			if err := w.open(); err != nil {
				return fmt.Errorf("parquet sink %s: %w", w.s.cfg.Path, err)
			}
		}
		n := min(len(todo), w.s.cfg.MaxRowsPerFile-w.cur.rows)
		if _, err := w.cur.w.WriteRows(todo[:n]); err != nil {
			return fmt.Errorf("parquet sink %s: write %s: %w", w.s.cfg.Path, w.cur.tmp, err)
		}
		todo = todo[n:]
		w.cur.rows += n
		if w.cur.rows >= w.s.cfg.MaxRowsPerFile {
			if err := w.finish(); err != nil {
				return fmt.Errorf("parquet sink %s: %w", w.s.cfg.Path, err)
			}
		}
	}
	clear(w.vals[:len(w.prows)*nc]) // drop references to the rows' bytes
	if len(rejected) > 0 {
		return fmt.Errorf("parquet sink %s: %w", w.s.cfg.Path, &RejectError{Rejected: rejected})
	}
	return nil
}

// convert turns v into a parquet value for a column of kind k.
func convert(v row.Value, k row.Kind) (pq.Value, error) {
	if v.IsNull() {
		return pq.NullValue(), nil
	}
	vk := v.Kind()
	switch k {
	case row.KindBool:
		if vk == row.KindBool {
			return pq.BooleanValue(v.AsBool()), nil
		}
	case row.KindInt:
		switch vk {
		case row.KindInt, row.KindTimestamp:
			return pq.Int64Value(v.AsInt()), nil
		case row.KindFloat:
			if f := v.AsFloat(); f == math.Trunc(f) && math.Abs(f) < 1<<63 {
				return pq.Int64Value(int64(f)), nil
			}
		}
	case row.KindFloat:
		if vk == row.KindFloat || vk == row.KindInt {
			return pq.DoubleValue(v.AsFloat()), nil
		}
	case row.KindTimestamp:
		if ms, err := v.Millis(); err == nil {
			return pq.Int64Value(ms), nil
		}
	case row.KindJSON:
		return pq.ByteArrayValue(v.AppendJSON(nil)), nil
	case row.KindString:
		return pq.ByteArrayValue([]byte(v.String())), nil
	}
	return pq.Value{}, fmt.Errorf("%w: a %s value in a %s column", ErrIncompatible, vk, k)
}

// OnBarrier implements stream.BarrierWriter: it closes the file in
// progress and files every file closed since the previous barrier under
// checkpoint id (committing them at once with CommitOnBarrier).
func (w *writer) OnBarrier(ctx context.Context, id uint64) error {
	if w.s.cfg.TwoPhase {
		return nil // the runtime calls PreCommit right after
	}
	if err := w.finish(); err != nil {
		return fmt.Errorf("parquet sink %s: barrier %d: %w", w.s.cfg.Path, id, err)
	}
	if len(w.closed) > 0 {
		w.mu.Lock()
		w.pending = append(w.pending, pendingFiles{id: id, files: w.closed})
		w.mu.Unlock()
		w.closed = nil
	}
	if w.s.cfg.CommitOnBarrier {
		return w.CommitCheckpoint(ctx, id)
	}
	return nil
}

// CommitCheckpoint renames into place the files pre-committed at barriers
// up to and including id. It is safe to call from another goroutine than
// Write's.
func (w *writer) CommitCheckpoint(_ context.Context, id uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := 0
	for i < len(w.pending) && w.pending[i].id <= id {
		i++
	}
	var files []*file
	for _, p := range w.pending[:i] {
		files = append(files, p.files...)
	}
	w.pending = w.pending[i:]
	return w.publish(files)
}

func (w *writer) publish(files []*file) error {
	if len(files) == 0 {
		return nil
	}
	for _, f := range files {
		if err := os.Rename(f.tmp, f.final); err != nil {
			if _, serr := os.Stat(f.final); serr == nil {
				continue // published by Commit
			}
			return fmt.Errorf("parquet sink %s: commit: %w", w.s.cfg.Path, err)
		}
	}
	return w.s.sync()
}

// forget drops the files named from the pending ones: Commit published
// them.
func (w *writer) forget(names []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	keep := w.pending[:0]
	for _, p := range w.pending {
		files := slices.DeleteFunc(p.files, func(f *file) bool { return slices.Contains(names, filepath.Base(f.final)) })
		if len(files) > 0 {
			keep = append(keep, pendingFiles{id: p.id, files: files})
		}
	}
	clear(w.pending[len(keep):])
	w.pending = keep
}

// PreCommitted returns the names of the part files pre-committed at
// barriers up to and including id and not published yet: what checkpoint
// id must save for CommitRecovered.
func (w *writer) PreCommitted(id uint64) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, p := range w.pending {
		if p.id <= id {
			for _, f := range p.files {
				out = append(out, filepath.Base(f.final))
			}
		}
	}
	return out
}

// PreCommit implements checkpoint.TwoPhaseCommitter. With TwoPhase it
// finishes the file in progress and stages every file closed since the
// previous PreCommit. The handle lists their names; nil when none. In the
// default mode (neither TwoPhase nor CommitOnBarrier) it is called right
// after OnBarrier and returns the files OnBarrier filed under id: the
// stream runtime, which does not call CommitCheckpoint, then publishes
// them when the checkpoint completes (Commit) or on recovery (Recover),
// instead of Recover deleting them as another run's temporary files.
func (w *writer) PreCommit(_ context.Context, id checkpoint.ID) (checkpoint.Transaction, error) {
	if !w.s.cfg.TwoPhase {
		if w.s.cfg.CommitOnBarrier {
			return nil, nil // OnBarrier published the files
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		var b []byte
		for _, p := range w.pending {
			if p.id == uint64(id) {
				for _, f := range p.files {
					b = append(b, filepath.Base(f.final)...)
					b = append(b, '\n')
				}
			}
		}
		if len(b) > 0 {
			// The checkpoint names these files: Recover publishes them.
			if err := w.s.sync(); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	if err := w.finish(); err != nil {
		return nil, fmt.Errorf("parquet sink %s: checkpoint %d: %w", w.s.cfg.Path, id, err)
	}
	if len(w.closed) == 0 {
		return nil, nil
	}
	// Staged: the checkpoint will name these files, so their names must
	// survive a power loss as their bytes do (finish synced those).
	if err := w.s.sync(); err != nil {
		return nil, fmt.Errorf("parquet sink %s: checkpoint %d: %w", w.s.cfg.Path, id, err)
	}
	var b []byte
	for _, f := range w.closed {
		b = append(b, filepath.Base(f.final)...)
		b = append(b, '\n')
	}
	w.closed = nil
	return b, nil
}

// ErrBadTransaction is returned for a transaction handle that does not
// decode.
var ErrBadTransaction = errors.New("parquet sink: bad transaction handle")

// decodeTx returns the part file names of a PreCommit handle.
func decodeTx(tx checkpoint.Transaction) ([]string, error) {
	if len(tx) == 0 {
		return nil, nil
	}
	if tx[len(tx)-1] != '\n' {
		return nil, ErrBadTransaction
	}
	names := strings.Split(string(tx[:len(tx)-1]), "\n")
	for _, n := range names {
		if filepath.Base(n) != n || !strings.HasPrefix(n, "part-") || !strings.HasSuffix(n, ".parquet") {
			return nil, fmt.Errorf("%w: %q is not a part file name", ErrBadTransaction, n)
		}
	}
	return names, nil
}

// Commit implements checkpoint.TwoPhaseCommitter: it renames the staged
// files of tx into place. It is idempotent and uses nothing but tx.
func (w *writer) Commit(ctx context.Context, tx checkpoint.Transaction) error {
	names, err := decodeTx(tx)
	if err != nil {
		return err
	}
	if err := w.s.CommitRecovered(ctx, names); err != nil {
		return err
	}
	if !w.s.cfg.TwoPhase {
		w.forget(names)
	}
	return nil
}

// Abort implements checkpoint.TwoPhaseCommitter: it deletes the staged
// files of tx.
func (w *writer) Abort(_ context.Context, tx checkpoint.Transaction) error {
	names, err := decodeTx(tx)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := os.Remove(filepath.Join(w.s.cfg.Path, "."+n+".inprogress")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("parquet sink %s: abort: %w", w.s.cfg.Path, err)
		}
	}
	return nil
}

// Recover implements checkpoint.TwoPhaseCommitter: it commits the files
// the restored checkpoint had staged, then deletes the temporary files
// earlier runs left for subtasks s with s % parallelism == this subtask.
// It assumes one job per directory.
func (w *writer) Recover(ctx context.Context, committed []checkpoint.Transaction) error {
	w.recovered = true
	for _, tx := range committed {
		if err := w.Commit(ctx, tx); err != nil {
			return err
		}
	}
	ents, err := os.ReadDir(w.s.cfg.Path)
	if err != nil {
		return fmt.Errorf("parquet sink %s: recover: %w", w.s.cfg.Path, err)
	}
	mine := "-" + w.run + "-"
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, tmpPrefix) || !strings.HasSuffix(n, tmpSuffix) || strings.Contains(n, mine) {
			continue
		}
		// .part-<subtask>-<run>-<seq>.parquet.inprogress
		sub, _, _ := strings.Cut(strings.TrimPrefix(n, tmpPrefix), "-")
		k, err := strconv.Atoi(sub)
		if err != nil || k%w.par != w.subtask {
			continue
		}
		if err := os.Remove(filepath.Join(w.s.cfg.Path, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("parquet sink %s: recover: %w", w.s.cfg.Path, err)
		}
	}
	return nil
}

// Close implements stream.SinkWriter. At the end of the input (ctx live)
// it commits every file; when the job stops early it deletes the file in
// progress and the files closed since the last barrier, and leaves the
// pre-committed ones.
func (w *writer) Close(ctx context.Context) error {
	defer w.release()
	if ctx.Err() != nil {
		if w.cur != nil {
			w.cur.f.Close()
			os.Remove(w.cur.tmp)
			w.cur = nil
		}
		for _, f := range w.closed {
			os.Remove(f.tmp)
		}
		w.closed = nil
		return nil
	}
	if err := w.finish(); err != nil {
		return fmt.Errorf("parquet sink %s: %w", w.s.cfg.Path, err)
	}
	if err := w.clean(); err != nil {
		return err
	}
	if w.s.cfg.TwoPhase {
		if len(w.closed) > 0 {
			// Rows after the final PreCommit: none in a normal run.
			return fmt.Errorf("parquet sink %s: %d files written after the final checkpoint were not committed", w.s.cfg.Path, len(w.closed))
		}
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var files []*file
	for _, p := range w.pending {
		files = append(files, p.files...)
	}
	w.pending = nil
	files = append(files, w.closed...)
	w.closed = nil
	return w.publish(files)
}

// The capabilities the checkpoint coordinator looks for.
var (
	_ stream.BarrierWriter = (*writer)(nil)
	_ interface {
		CommitCheckpoint(context.Context, uint64) error
	} = (*writer)(nil)
	_ checkpoint.TwoPhaseCommitter = (*writer)(nil)
)
