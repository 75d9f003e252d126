package file

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/connector"
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
	// TwoPhase makes parts visible only through PreCommit and Commit
	// (exactly-once delivery): a roll or a close then leaves parts
	// pending instead of committing them.
	TwoPhase bool
}

// Sink is a rolling part-file sink; see the package doc.
type Sink struct {
	cfg SinkConfig
	run string // distinguishes the part files of one run from another's
}

// NewSink checks cfg, creates the directory and returns a sink.
func NewSink(cfg SinkConfig) (*Sink, error) {
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
	if err := os.MkdirAll(cfg.Path, 0o755); err != nil {
		return nil, fmt.Errorf("file sink: %w", err)
	}
	var r [4]byte
	_, _ = rand.Read(r[:])
	run := time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(r[:])
	return &Sink{cfg: cfg, run: run}, nil
}

// Open implements stream.Sink.
func (s *Sink) Open(_ context.Context, info stream.SubtaskInfo) (stream.SinkWriter[connector.Message], error) {
	return &Writer{sink: s, sub: info.Index}, nil
}

// Writer writes the part files of one sink subtask. Its methods are
// called by one goroutine, except Committed, which is safe to call
// concurrently.
type Writer struct {
	sink *Sink
	sub  int
	seq  int

	f       *os.File
	w       *bufio.Writer
	tmp     string
	final   string
	size    int64
	opened  time.Time
	pending map[uint64][]part // pre-committed parts by checkpoint id
	loose   []part            // finished parts not yet pre-committed

	mu        sync.Mutex
	committed []string
}

type part struct{ tmp, final string }

// Write implements stream.SinkWriter: each value is written as one line.
func (w *Writer) Write(_ context.Context, msgs []connector.Message) error {
	for i := range msgs {
		if w.f == nil {
			if err := w.openPart(); err != nil {
				return err
			}
		}
		v := msgs[i].Value
		if _, err := w.w.Write(v); err != nil {
			return w.ioErr(err)
		}
		if err := w.w.WriteByte('\n'); err != nil {
			return w.ioErr(err)
		}
		w.size += int64(len(v)) + 1
		if w.size >= w.sink.cfg.RollBytes || w.sink.cfg.RollInterval > 0 && time.Since(w.opened) >= w.sink.cfg.RollInterval {
			if err := w.finishPart(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *Writer) ioErr(err error) error { return fmt.Errorf("file sink: %s: %w", w.tmp, err) }

func (w *Writer) openPart() error {
	c := w.sink.cfg
	name := fmt.Sprintf("%s-%s-%d-%06d%s", c.Prefix, w.sink.run, w.sub, w.seq, c.Suffix)
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
	return nil
}

// finishPart flushes, syncs and closes the current part; it is then
// committed, or kept as loose (two-phase) until the next PreCommit.
func (w *Writer) finishPart() error {
	if w.f == nil {
		return nil
	}
	if err := w.w.Flush(); err != nil {
		return w.ioErr(err)
	}
	if err := w.f.Sync(); err != nil {
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
		w.mu.Lock()
		w.committed = append(w.committed, p.final)
		w.mu.Unlock()
	}
	if len(ps) > 0 {
		return syncDir(w.sink.cfg.Path)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("file sink: sync %s: %w", dir, err)
	}
	return nil
}

// OnBarrier implements stream.BarrierWriter. Under at-least-once delivery
// a barrier commits the current part, so that output becomes visible at
// least once per checkpoint interval; under TwoPhase it pre-commits.
func (w *Writer) OnBarrier(_ context.Context, id uint64) error {
	if w.sink.cfg.TwoPhase {
		return w.PreCommit(id)
	}
	return w.finishPart()
}

// PreCommit finishes the current part and marks every finished part as
// belonging to checkpoint id: durable, but not visible until
// CommitCheckpoint(id).
func (w *Writer) PreCommit(id uint64) error {
	if err := w.finishPart(); err != nil {
		return err
	}
	if w.pending == nil {
		w.pending = map[uint64][]part{}
	}
	w.pending[id] = append(w.pending[id], w.loose...)
	w.loose = nil
	return nil
}

// CommitCheckpoint makes visible every part pre-committed for checkpoints
// up to and including id, in checkpoint order. It is called once
// checkpoint id has completed.
func (w *Writer) CommitCheckpoint(_ context.Context, id uint64) error {
	ids := make([]uint64, 0, len(w.pending))
	for k := range w.pending {
		if k <= id {
			ids = append(ids, k)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, k := range ids {
		if err := w.commitParts(w.pending[k]); err != nil {
			return err
		}
		delete(w.pending, k)
	}
	return nil
}

// Abort deletes every part not committed: the current one, loose ones and
// pre-committed ones.
func (w *Writer) Abort() error {
	var first error
	if w.f != nil {
		w.f.Close()
		w.f = nil
		if err := os.Remove(w.tmp); err != nil && first == nil {
			first = err
		}
	}
	for _, ps := range w.pending {
		w.loose = append(w.loose, ps...)
	}
	w.pending = nil
	for _, p := range w.loose {
		if err := os.Remove(p.tmp); err != nil && !errors.Is(err, os.ErrNotExist) && first == nil {
			first = err
		}
	}
	w.loose = nil
	return first
}

// Close implements stream.SinkWriter. When the input ended (ctx not
// cancelled) the current part is committed (at-least-once) or kept
// pending (two-phase, for a final checkpoint to commit). When the job
// stopped early, an at-least-once writer still commits what it has
// written (it may be replayed: at least once); a two-phase writer leaves
// its parts for recovery to commit or abort.
func (w *Writer) Close(ctx context.Context) error {
	if w.f != nil && w.size == 0 {
		w.f.Close()
		w.f = nil
		return os.Remove(w.tmp)
	}
	return w.finishPart()
}

// Committed returns the final paths of the parts committed so far.
func (w *Writer) Committed() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.committed...)
}
