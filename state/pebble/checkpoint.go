package pebble

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble"
	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/state"
)

// metaVersion is the version of the snapshot description file.
const metaVersion = 1

// meta describes one backend snapshot in a checkpoint: which key groups it
// holds and which stored file is which Pebble file.
type meta struct {
	Version        int           `json:"version"`
	MaxParallelism int           `json:"max_parallelism"`
	Start          int           `json:"key_group_start"`
	End            int           `json:"key_group_end"`
	Files          []metaFile    `json:"files"`
	Stats          SnapshotStats `json:"stats"`
}

type metaFile struct {
	Path string `json:"path"` // in the checkpoint storage
	Name string `json:"name"` // in the Pebble directory
}

// SnapshotStats says what one checkpoint of a backend cost.
type SnapshotStats struct {
	// Files and Bytes count every file the snapshot names.
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	// NewFiles and NewBytes count the files stored by this checkpoint; the
	// others were stored by an earlier one (incremental checkpoints).
	NewFiles int   `json:"new_files"`
	NewBytes int64 `json:"new_bytes"`
}

// Snapshot is a consistent local copy of a backend (hard links), taken on
// the processing goroutine; Upload stores it, possibly on another
// goroutine while processing goes on. Every Snapshot must be uploaded or
// discarded: the next one's Upload waits for it.
//
// The uploads of one backend run one at a time, in the order of their
// snapshots. A checkpoint that aborts (it timed out, say, because its
// upload is slow) does not stop its upload, and the next checkpoint's
// snapshot holds mostly the same sstables under the same names: run at
// once, both would put the same shared file (Pending.PutShared links it
// under one temporary name, which the two would remove and rename from
// under each other, failing the newer checkpoint), and the newer
// checkpoint could complete while the aborted upload still adds shared
// files that the completion's retention is deleting, leaving the shared
// index naming a file that is gone. Waiting also lets the newer upload
// find the older one's sstables already stored (Pending.Shared).
type Snapshot struct {
	b   *Backend
	dir string
	// prev is closed when the previous snapshot's upload or discard has
	// ended (nil: none); done when this one's has.
	prev <-chan struct{}
	done chan struct{}
	once sync.Once
}

// waitPrev waits until the previous snapshot of the backend is uploaded
// or discarded.
func (s *Snapshot) waitPrev() {
	if s.prev == nil {
		return
	}
	select {
	case <-s.prev:
		return
	default:
	}
	if s.b.beforeWait != nil {
		s.b.beforeWait()
	}
	<-s.prev
}

// end removes the local copy and lets the next snapshot's upload go.
func (s *Snapshot) end() {
	s.once.Do(func() {
		os.RemoveAll(s.dir)
		close(s.done)
	})
}

// Discard removes the local copy of a snapshot that is not to be
// uploaded. It returns once the previous snapshot's upload has ended, so
// that the next one still waits for that.
func (s *Snapshot) Discard() {
	s.waitPrev()
	s.end()
}

// Snapshot flushes the memtable and takes a local Pebble checkpoint. It is
// the synchronous part of a checkpoint; its cost is the flush of at most
// one memtable.
func (b *Backend) Snapshot() (*Snapshot, error) {
	if err := b.writeBack(); err != nil {
		return nil, err
	}
	if err := b.flush(); err != nil {
		return nil, err
	}
	b.seq++
	dir := filepath.Join(b.opts.Dir, fmt.Sprintf("snap-%d", b.seq))
	_ = os.RemoveAll(dir)
	if err := b.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return nil, fmt.Errorf("pebble state: checkpoint: %w", err)
	}
	s := &Snapshot{b: b, dir: dir, prev: b.lastSnap, done: make(chan struct{})}
	b.lastSnap = s.done
	return s, nil
}

// flush flushes the memtable, waiting for it unless Pebble's background
// errors become fatal meanwhile (bgErrors): a flush failing on a full disk
// is retried by Pebble for ever.
func (b *Backend) flush() error {
	if err := b.waitRoom(); err != nil {
		return err
	}
	flushed, err := b.db.AsyncFlush()
	if err != nil {
		return fmt.Errorf("pebble state: flush: %w", err)
	}
	select {
	case <-flushed:
		return nil
	case <-b.bgErrs.failed:
		return b.bgErrs.err()
	}
}

// Upload stores the snapshot into pending checkpoint p as files whose names
// start with name (unique per subtask, like "window-3.1"), and returns the
// storage paths to list in the task's Ack (the first is the description
// file that Restore takes). The local copy is removed. It starts once the
// previous snapshot's upload has ended (see Snapshot).
func (s *Snapshot) Upload(p checkpoint.Pending, name string) ([]string, SnapshotStats, error) {
	s.waitPrev()
	defer s.end()
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, SnapshotStats{}, fmt.Errorf("pebble snapshot: %w", err)
	}
	m := meta{Version: metaVersion, MaxParallelism: s.b.maxPar, Start: s.b.groups.Start, End: s.b.groups.End}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		local := filepath.Join(s.dir, e.Name())
		var fi checkpoint.FileInfo
		if strings.HasSuffix(e.Name(), ".sst") {
			shared, ok := s.b.shared[e.Name()]
			if !ok {
				shared = s.b.inst + "-" + e.Name()
			}
			var found bool
			if fi, found = p.Shared(shared); !found {
				if fi, err = p.PutShared(shared, local); err != nil {
					return nil, SnapshotStats{}, err
				}
				m.Stats.NewFiles++
				m.Stats.NewBytes += fi.Size
			}
		} else {
			w, err := p.Create(name + "." + e.Name())
			if err != nil {
				return nil, SnapshotStats{}, err
			}
			if err := copyInto(w, local); err != nil {
				return nil, SnapshotStats{}, err
			}
			fi = checkpoint.FileInfo{Path: w.Path()}
			if st, err := os.Stat(local); err == nil {
				fi.Size = st.Size()
			}
			m.Stats.NewFiles++
			m.Stats.NewBytes += fi.Size
		}
		m.Files = append(m.Files, metaFile{Path: fi.Path, Name: e.Name()})
		m.Stats.Files++
		m.Stats.Bytes += fi.Size
	}
	w, err := p.Create(name + ".pebble.json")
	if err != nil {
		return nil, SnapshotStats{}, err
	}
	if err := json.NewEncoder(w).Encode(&m); err != nil {
		w.Close()
		return nil, SnapshotStats{}, fmt.Errorf("pebble snapshot meta: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, SnapshotStats{}, err
	}
	paths := []string{w.Path()}
	for _, f := range m.Files {
		paths = append(paths, f.Path)
	}
	return paths, m.Stats, nil
}

func copyInto(w checkpoint.FileWriter, src string) error {
	f, err := os.Open(src)
	if err != nil {
		w.Close()
		return fmt.Errorf("pebble snapshot: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		w.Close()
		return fmt.Errorf("pebble snapshot: %w", err)
	}
	return w.Close()
}

// Checkpoint is Snapshot followed by Upload, for callers that do not need
// the upload off the processing goroutine.
func (b *Backend) Checkpoint(p checkpoint.Pending, name string) ([]string, SnapshotStats, error) {
	s, err := b.Snapshot()
	if err != nil {
		return nil, SnapshotStats{}, err
	}
	return s.Upload(p, name)
}

func readMeta(c *checkpoint.Checkpoint, path string) (*meta, error) {
	f, err := c.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var m meta
	if err := json.NewDecoder(f).Decode(&m); err != nil {
		return nil, fmt.Errorf("pebble snapshot %s: %w: %v", path, checkpoint.ErrCorrupt, err)
	}
	if m.Version < 1 || m.Version > metaVersion {
		return nil, fmt.Errorf("pebble snapshot %s: %w: version %d", path, checkpoint.ErrVersion, m.Version)
	}
	return &m, nil
}

// materialise links (or copies) the files of snapshot m into dir.
func materialise(c *checkpoint.Checkpoint, m *meta, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range m.Files {
		if strings.ContainsAny(f.Name, `/\`) {
			return fmt.Errorf("pebble snapshot: %w: file name %q", checkpoint.ErrCorrupt, f.Name)
		}
		dst := filepath.Join(dir, f.Name)
		if strings.HasSuffix(f.Name, ".sst") {
			// Immutable: a hard link is safe.
			if err := c.Fetch(f.Path, dst); err != nil {
				return fmt.Errorf("pebble snapshot: %w", err)
			}
			continue
		}
		// Pebble may append to its MANIFEST: copy, so that the stored
		// checkpoint never changes.
		if err := copyOut(c, f.Path, dst); err != nil {
			return err
		}
	}
	return nil
}

// Restore returns a backend for key groups r, in opts.Dir, holding the
// state of those key groups from the snapshots metas (the description
// files listed first in each Upload's paths) of checkpoint c. Snapshots
// that hold none of r are ignored; several are merged after rescaling.
func Restore(opts Options, maxParallelism int, r state.KeyGroupRange, c *checkpoint.Checkpoint, metas []string) (*Backend, error) {
	opts.defaults()
	var ms []*meta
	for _, p := range metas {
		m, err := readMeta(c, p)
		if err != nil {
			return nil, err
		}
		if m.MaxParallelism != maxParallelism {
			return nil, fmt.Errorf("pebble snapshot %s: %w: max parallelism %d, job has %d", p, checkpoint.ErrIncompatible, m.MaxParallelism, maxParallelism)
		}
		if m.Start < r.End && r.Start < m.End {
			ms = append(ms, m)
		}
	}
	if err := os.RemoveAll(opts.Dir); err != nil {
		return nil, fmt.Errorf("pebble state %s: %w", opts.Dir, err)
	}
	b := newBackend(opts, maxParallelism, r)
	// Fast path: one snapshot of exactly these key groups is opened as is.
	if len(ms) == 1 && ms[0].Start == r.Start && ms[0].End == r.End {
		if err := materialise(c, ms[0], b.dbDir); err != nil {
			return nil, err
		}
		for _, f := range ms[0].Files {
			if name, ok := strings.CutPrefix(f.Path, "shared/"); ok {
				b.shared[f.Name] = name
			}
		}
		if err := b.open(); err != nil {
			return nil, err
		}
		return b, nil
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("pebble state %s: %w", opts.Dir, err)
	}
	if err := b.open(); err != nil {
		return nil, err
	}
	lo, hi := state.KVKeyGroupSpan(r)
	for i, m := range ms {
		dir := filepath.Join(opts.Dir, fmt.Sprintf("restore-%d", i))
		if err := materialise(c, m, dir); err != nil {
			b.Close()
			return nil, err
		}
		if err := b.copyFrom(dir, lo, hi); err != nil {
			b.Close()
			return nil, err
		}
		os.RemoveAll(dir)
	}
	return b, nil
}

// copyFrom copies the keys in [lo, hi) of the database in dir into b.
func (b *Backend) copyFrom(dir string, lo, hi []byte) error {
	o := b.pebbleOptions()
	o.ReadOnly = true
	src, err := pebble.Open(dir, o)
	o.Cache.Unref()
	if err != nil {
		return fmt.Errorf("pebble restore %s: %w", dir, err)
	}
	defer src.Close()
	it, err := src.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("pebble restore %s: %w", dir, err)
	}
	batch := b.db.NewBatch()
	for ok := it.First(); ok; ok = it.Next() {
		if err := batch.Set(it.Key(), it.Value(), nil); err != nil {
			it.Close()
			return err
		}
		if batch.Len() > 4<<20 {
			if err := batch.Commit(pebble.NoSync); err != nil {
				it.Close()
				return fmt.Errorf("pebble restore: %w", err)
			}
			batch = b.db.NewBatch()
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("pebble restore %s: %w", dir, err)
	}
	if err := batch.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("pebble restore: %w", err)
	}
	return nil
}

func copyOut(c *checkpoint.Checkpoint, path, dst string) error {
	in, err := c.Open(path)
	if err != nil {
		return fmt.Errorf("pebble snapshot: %w", err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("pebble snapshot: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("pebble snapshot: copy %s: %w", path, err)
	}
	return out.Close()
}

// SnapshotFiles implements state.FileSnapshotter.
func (b *Backend) SnapshotFiles() (func(p checkpoint.Pending, name string) ([]string, error), error) {
	s, err := b.Snapshot()
	if err != nil {
		return nil, err
	}
	return func(p checkpoint.Pending, name string) ([]string, error) {
		if p == nil {
			// Not to be written: only the local copy goes.
			s.Discard()
			return nil, nil
		}
		paths, _, err := s.Upload(p, name)
		return paths, err
	}, nil
}

// Factory returns a state.BackendFactory of Pebble backends whose working
// directories are under opts.Dir (one per operator subtask); a restored
// subtask reads the Pebble snapshots among the operator's files.
func Factory(opts Options) state.BackendFactory {
	return func(op string, sub, maxPar int, r state.KeyGroupRange, restored *checkpoint.Checkpoint, files []string) (state.Backend, error) {
		o := opts
		o.Dir = filepath.Join(opts.Dir, fmt.Sprintf("op%s-%d", op, sub))
		if restored != nil {
			var metas []string
			for _, f := range files {
				if strings.HasSuffix(f, ".pebble.json") {
					metas = append(metas, f)
				}
			}
			if len(metas) > 0 {
				return Restore(o, maxPar, r, restored, metas)
			}
		}
		return Open(o, maxPar, r)
	}
}
