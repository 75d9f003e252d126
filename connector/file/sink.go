package file

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/internal/durable"
	"github.com/sluicehq/sluice/stream"
)

// SinkConfig configures a file sink.
type SinkConfig struct {
	// Path is the directory of the part files; it is created if needed.
	Path string
	// Prefix starts every part file name. This overrides the default of
	// "part".
	Prefix string
	// Suffix ends every part file name. This overrides the default of
	// ".jsonl".
	Suffix string
	// RollBytes rolls to a new part file once the current one holds at
	// least this many bytes. This overrides the default of 128 MiB.
	RollBytes int64
	// RollInterval rolls to a new part file once the current one is this
	// old (checked when records arrive). Zero, the default, means never.
	RollInterval time.Duration
	// TwoPhase makes parts visible only through the checkpoint
	// two-phase commit (exactly-once delivery, with checkpointing on): a
	// roll leaves the part staged for the next PreCommit, and Commit
	// publishes it once the checkpoint completed.
	TwoPhase bool
	// Container, when set, writes each part file as a container of
	// blocks of records (Avro object container files) instead of lines.
	Container Container
	// BlockBytes is how many bytes of records a Container block holds
	// before it is written. This overrides the default of 64 KiB.
	BlockBytes int
	// Framed writes each value as it is, without a newline after it:
	// the values frame themselves (length-delimited protobuf records).
	Framed bool
}

// Container frames part files as a header and blocks of records.
type Container interface {
	// NewPart appends the start of a new part file to dst and returns a
	// function that appends a block of count records (their bytes
	// concatenated) of that part to dst.
	NewPart(dst []byte) ([]byte, func(dst []byte, count int, records []byte) []byte, error)
}

// Sink is a rolling part-file sink; see the package doc.
type Sink struct {
	cfg SinkConfig
	// syncDir makes a directory's entries durable (durable.SyncDir;
	// tests record what it made durable).
	syncDir func(string) error
	// syncFile makes a part file's data durable ((*os.File).Sync; tests
	// make it fail).
	syncFile func(*os.File) error
}

// NewSink checks cfg, creates the directory (durably) and returns a sink.
func NewSink(cfg SinkConfig) (*Sink, error) { return newSink(cfg, durable.SyncDir) }

// newSink is NewSink with the directory sync given (a test records what
// it made durable).
func newSink(cfg SinkConfig, syncDir func(string) error) (*Sink, error) {
	if cfg.Path == "" {
		return nil, errors.New("file sink: path is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "part"
	}
	if cfg.Suffix == "" {
		cfg.Suffix = ".jsonl"
	}
	if strings.ContainsAny(cfg.Prefix+cfg.Suffix, `/\`) {
		return nil, fmt.Errorf("file sink: prefix and suffix must not contain path separators")
	}
	if cfg.RollBytes <= 0 {
		cfg.RollBytes = 128 << 20
	}
	if cfg.BlockBytes <= 0 {
		cfg.BlockBytes = 64 << 10
	}
	if err := durable.MkdirAll(cfg.Path, 0o755, syncDir); err != nil {
		return nil, fmt.Errorf("file sink: %w", err)
	}
	return &Sink{cfg: cfg, syncDir: syncDir, syncFile: (*os.File).Sync}, nil
}

// newRun returns a run id: the time and 8 random hex digits.
func newRun() string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	return time.Now().UTC().Format(runLayout) + "-" + hex.EncodeToString(r[:])
}

// Open implements stream.Sink. Every writer has a run id of its own: a job
// restarted in-process (stream.WithRestartPolicy) opens the same Sink's
// writers again, and their part names must not repeat those of the failed
// attempt, whose staged parts their Recover deletes.
func (s *Sink) Open(_ context.Context, info stream.SubtaskInfo) (stream.SinkWriter[connector.Message], error) {
	return &Writer{sink: s, run: newRun(), sub: info.Index, par: max(info.Parallelism, 1)}, nil
}

// Writer writes the part files of one sink subtask. Its methods are
// called by one goroutine, except Commit and Abort, which act only on
// their arguments and are safe to call concurrently (the checkpoint
// coordinator calls Commit). It keeps no list of the parts it committed:
// the checkpoint state holds the transactions not yet committed, and
// Commit is idempotent by looking at the directory.
type Writer struct {
	sink *Sink
	run  string // distinguishes this writer's part files from other runs'
	sub  int
	par  int
	seq  int

	f      *os.File
	w      *bufio.Writer
	tmp    string
	final  string
	size   int64
	opened time.Time
	loose  []part // finished parts not yet staged by PreCommit (TwoPhase)
	// failed is the error of a write, flush, fsync or close of the
	// current part: its bytes on disk are not trusted (a failed fsync is
	// not retried, as the kernel may have dropped the dirty pages), so
	// it is never committed or staged; Close and Discard remove it.
	failed error

	// With a Container: the current part's block function, the records
	// of the block being filled, their count and a scratch buffer.
	block func(dst []byte, count int, records []byte) []byte
	blk   []byte
	blkN  int
	out   []byte
}

type part struct{ tmp, final string }

// Write implements stream.SinkWriter: each value is written as one line,
// or with a Container added to the current block.
func (w *Writer) Write(_ context.Context, msgs []connector.Message) error {
	if w.failed != nil {
		return w.failed
	}
	for i := range msgs {
		if w.f == nil {
			if err := w.openPart(); err != nil {
				return err
			}
		}
		v := msgs[i].Value
		if w.block != nil {
			w.blk = append(w.blk, v...)
			w.blkN++
			if len(w.blk) >= w.sink.cfg.BlockBytes {
				if err := w.flushBlock(); err != nil {
					return err
				}
			}
			if w.size >= w.sink.cfg.RollBytes || w.sink.cfg.RollInterval > 0 && time.Since(w.opened) >= w.sink.cfg.RollInterval {
				if err := w.finishPart(); err != nil {
					return err
				}
			}
			continue
		}
		if _, err := w.w.Write(v); err != nil {
			return w.ioErr(err)
		}
		w.size += int64(len(v))
		if !w.sink.cfg.Framed {
			if err := w.w.WriteByte('\n'); err != nil {
				return w.ioErr(err)
			}
			w.size++
		}
		if w.size >= w.sink.cfg.RollBytes || w.sink.cfg.RollInterval > 0 && time.Since(w.opened) >= w.sink.cfg.RollInterval {
			if err := w.finishPart(); err != nil {
				return err
			}
		}
	}
	return nil
}

// flushBlock writes the records buffered for a Container as one block.
func (w *Writer) flushBlock() error {
	if w.blkN == 0 {
		return nil
	}
	w.out = w.block(w.out[:0], w.blkN, w.blk)
	w.blk, w.blkN = w.blk[:0], 0
	if _, err := w.w.Write(w.out); err != nil {
		return w.ioErr(err)
	}
	w.size += int64(len(w.out))
	return nil
}

// ioErr records a failed I/O of the current part (see failed) and
// returns it with context.
func (w *Writer) ioErr(err error) error {
	w.failed = fmt.Errorf("file sink: %s: %w (the part is discarded, not published)", w.tmp, err)
	return w.failed
}

func (w *Writer) openPart() error {
	c := w.sink.cfg
	name := fmt.Sprintf("%s-%s-%d-%06d%s", c.Prefix, w.run, w.sub, w.seq, c.Suffix)
	w.seq++
	w.final = filepath.Join(c.Path, name)
	w.tmp = filepath.Join(c.Path, "."+name+".inprogress")
	f, err := os.OpenFile(w.tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	w.f = f
	if w.w == nil {
		w.w = bufio.NewWriterSize(f, 256<<10)
	} else {
		w.w.Reset(f)
	}
	w.size = 0
	w.opened = time.Now()
	if c.Container != nil {
		hdr, block, err := c.Container.NewPart(w.out[:0])
		if err != nil {
			return fmt.Errorf("file sink: %s: %w", w.tmp, err)
		}
		if _, err := w.w.Write(hdr); err != nil {
			return w.ioErr(err)
		}
		w.size, w.out, w.block = int64(len(hdr)), hdr, block
	}
	return nil
}

// finishPart flushes, syncs and closes the current part; it is then
// committed, or kept as loose (two-phase) until the next PreCommit.
func (w *Writer) finishPart() error {
	if w.failed != nil {
		return w.failed
	}
	if w.f == nil {
		return nil
	}
	if w.block != nil {
		if err := w.flushBlock(); err != nil {
			return err
		}
	}
	if err := w.w.Flush(); err != nil {
		return w.ioErr(err)
	}
	if err := w.sink.syncFile(w.f); err != nil {
		return w.ioErr(err)
	}
	if err := w.f.Close(); err != nil {
		return w.ioErr(err)
	}
	w.f = nil
	p := part{tmp: w.tmp, final: w.final}
	if w.sink.cfg.TwoPhase {
		w.loose = append(w.loose, p)
		return nil
	}
	return w.commitParts([]part{p})
}

func (w *Writer) commitParts(ps []part) error {
	for _, p := range ps {
		if err := os.Rename(p.tmp, p.final); err != nil {
			return fmt.Errorf("file sink: commit %s: %w", p.final, err)
		}
	}
	if len(ps) > 0 {
		return w.syncDir()
	}
	return nil
}

// syncDir makes the directory's entries durable: a part's final name
// after its rename, and a staged part's hidden name before a checkpoint
// refers to it.
func (w *Writer) syncDir() error {
	if err := w.sink.syncDir(w.sink.cfg.Path); err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	return nil
}

// OnBarrier implements stream.BarrierWriter. Without TwoPhase a barrier
// commits the current part, so that output becomes visible at least once
// per checkpoint interval. With TwoPhase it does nothing: the runtime
// calls PreCommit right after it.
func (w *Writer) OnBarrier(_ context.Context, _ uint64) error {
	if w.sink.cfg.TwoPhase {
		return nil
	}
	return w.finishPart()
}

// PreCommit implements checkpoint.TwoPhaseCommitter: it finishes the
// current part and stages every part finished since the previous
// PreCommit: durable under its hidden name (the file and its directory
// entry fsynced), not visible. The handle lists their temporary and final
// names; nil when there is none.
func (w *Writer) PreCommit(_ context.Context, _ checkpoint.ID) (checkpoint.Transaction, error) {
	if err := w.finishPart(); err != nil {
		return nil, err
	}
	if len(w.loose) == 0 {
		return nil, nil
	}
	// The checkpoint will name these parts: their names must survive a
	// power loss as their bytes do, or Commit on recovery finds them gone.
	if err := w.syncDir(); err != nil {
		return nil, err
	}
	tx := encodeParts(w.loose)
	w.loose = nil
	return tx, nil
}

// Commit implements checkpoint.TwoPhaseCommitter: it renames the staged
// parts of tx to their final names. It is idempotent (a part already
// renamed is skipped) and uses nothing but tx, so it may run after Close
// and in another process.
func (w *Writer) Commit(_ context.Context, tx checkpoint.Transaction) error {
	ps, err := decodeParts(tx)
	if err != nil {
		return err
	}
	var todo []part
	for _, p := range ps {
		if _, err := os.Stat(p.tmp); err == nil {
			todo = append(todo, p)
		} else if _, ferr := os.Stat(p.final); ferr != nil {
			return fmt.Errorf("file sink: commit %s: staged part %s is gone", p.final, p.tmp)
		}
	}
	return w.commitParts(todo)
}

// Abort implements checkpoint.TwoPhaseCommitter: it deletes the staged
// parts of tx.
func (w *Writer) Abort(_ context.Context, tx checkpoint.Transaction) error {
	ps, err := decodeParts(tx)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if err := os.Remove(p.tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("file sink: abort: %w", err)
		}
	}
	return nil
}

// Recover implements checkpoint.TwoPhaseCommitter: it commits the parts
// the restored checkpoint had staged, then aborts what earlier runs left
// staged after that checkpoint: their hidden parts of subtasks s with
// s % parallelism == this subtask (the same share of the old subtasks the
// runtime hands this one). It assumes one job per directory and prefix.
func (w *Writer) Recover(ctx context.Context, committed []checkpoint.Transaction) error {
	for _, tx := range committed {
		if err := w.Commit(ctx, tx); err != nil {
			return err
		}
	}
	ents, err := os.ReadDir(w.sink.cfg.Path)
	if err != nil {
		return fmt.Errorf("file sink: recover: %w", err)
	}
	for _, e := range ents {
		run, sub, ok := w.sink.parseStaged(e.Name())
		if !ok || run == w.run || sub%w.par != w.sub {
			continue
		}
		if err := os.Remove(filepath.Join(w.sink.cfg.Path, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("file sink: recover: %w", err)
		}
	}
	return nil
}

// parseStaged recognises the hidden name of a staged part of this sink,
// ".<prefix>-<run>-<subtask>-<seq><suffix>.inprogress", and returns its
// run and subtask.
func (s *Sink) parseStaged(name string) (run string, sub int, ok bool) {
	c := s.cfg
	head, tail := "."+c.Prefix+"-", c.Suffix+".inprogress"
	if !strings.HasPrefix(name, head) || !strings.HasSuffix(name, tail) || len(name) <= len(head)+len(tail) {
		return "", 0, false
	}
	mid := name[len(head) : len(name)-len(tail)]
	i := strings.LastIndexByte(mid, '-')
	if i <= 0 {
		return "", 0, false
	}
	j := strings.LastIndexByte(mid[:i], '-')
	if j <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(mid[j+1 : i])
	if err != nil || n < 0 || !isRun(mid[:j]) {
		return "", 0, false
	}
	return mid[:j], n, true
}

// runLayout is the time part of a run id; a run id is that time, a dash
// and 8 hex digits (see NewSink).
const runLayout = "20060102T150405"

// isRun reports whether s has the form of a run id. It tells a staged part
// of this sink from one of a sink whose prefix extends this one's ("p" and
// "p-x" in one directory): the latter's name parses with a run "x-<run>".
func isRun(s string) bool {
	if len(s) != len(runLayout)+1+8 || s[len(runLayout)] != '-' {
		return false
	}
	if _, err := time.Parse(runLayout, s[:len(runLayout)]); err != nil {
		return false
	}
	_, err := hex.DecodeString(s[len(runLayout)+1:])
	return err == nil
}

// Discard deletes every part not committed or staged: the current one and
// those finished since the last PreCommit.
func (w *Writer) Discard() error {
	var first error
	w.blk, w.blkN = w.blk[:0], 0
	if w.f != nil {
		w.f.Close()
		w.f = nil
		if err := os.Remove(w.tmp); err != nil && first == nil {
			first = err
		}
	}
	for _, p := range w.loose {
		if err := os.Remove(p.tmp); err != nil && !errors.Is(err, os.ErrNotExist) && first == nil {
			first = err
		}
	}
	w.loose = nil
	w.failed = nil
	return first
}

// encodeParts frames part names: count, then length-prefixed names.
func encodeParts(ps []part) checkpoint.Transaction {
	b := binary.AppendUvarint(nil, uint64(len(ps)))
	for _, p := range ps {
		for _, s := range []string{p.tmp, p.final} {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	}
	return b
}

// ErrBadTransaction is returned for a transaction handle that does not
// decode.
var ErrBadTransaction = errors.New("file sink: bad transaction handle")

func decodeParts(b []byte) ([]part, error) {
	if len(b) == 0 {
		return nil, nil
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, ErrBadTransaction
	}
	b = b[k:]
	out := make([]part, 0, n)
	for range n {
		var names [2]string
		for i := range names {
			l, k := binary.Uvarint(b)
			if k <= 0 || l > uint64(len(b)-k) {
				return nil, ErrBadTransaction
			}
			names[i] = string(b[k : k+int(l)])
			b = b[k+int(l):]
		}
		out = append(out, part{tmp: names[0], final: names[1]})
	}
	return out, nil
}

// Close implements stream.SinkWriter. At the end of the input (ctx not
// cancelled) the current part is committed; with TwoPhase the runtime has
// staged everything with a final PreCommit just before, and Close only
// removes an empty part. When the job stopped early (ctx cancelled), a
// TwoPhase writer discards what it had not staged (the records are
// replayed from the last checkpoint), while an at-least-once writer still
// commits what it wrote. A writer whose part failed to be written or
// synced removes that part instead and returns the error.
func (w *Writer) Close(ctx context.Context) error {
	if err := w.failed; err != nil {
		w.Discard()
		return err
	}
	if w.sink.cfg.TwoPhase && ctx.Err() != nil {
		return w.Discard()
	}
	if w.f != nil && w.size == 0 {
		w.f.Close()
		w.f = nil
		return os.Remove(w.tmp)
	}
	if err := w.finishPart(); err != nil {
		return err
	}
	if w.sink.cfg.TwoPhase && len(w.loose) > 0 {
		// Records after the final PreCommit: none in a normal run.
		return fmt.Errorf("file sink: %d parts written after the final checkpoint were not committed", len(w.loose))
	}
	return nil
}
