package pebble

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/vfs"
	"github.com/sluicehq/sluice/state"
)

// Options configures a Backend.
type Options struct {
	// Dir is the backend's local working directory, created if needed.
	// Its content is disposable: state survives through checkpoints.
	Dir string
	// CacheSize is the block cache size in bytes. This overrides the
	// default of 8 MiB.
	CacheSize int64
	// MemTableSize is the size of a memtable in bytes. This overrides the
	// default of 4 MiB.
	MemTableSize uint64
	// MemoryLimit, when positive, is the memory this backend may use; the
	// sizes not set explicitly are derived from it: a block cache of a
	// quarter of it and memtables of a sixteenth (at most 64 MiB; Pebble
	// keeps up to three while flushes lag: its own stall is set one
	// memtable above the backend's, which holds writes at two while
	// flushes fail, see BackgroundErrorTimeout).
	MemoryLimit int64
	// Cache, when set, is the block cache shared with other backends;
	// CacheSize is then ignored.
	Cache *Cache
	// HotCacheSize bounds, in bytes, what the backend's value and map
	// tables keep in Go memory in front of Pebble: the cache of hot
	// entries (value tables: decoded values, written back before
	// snapshots, state/kvvalue.go; map tables: encoded entries, written
	// through, state/kvcache.go), the membership filters of map state and
	// the directories of the tables' keys (state/kvfilter.go). This
	// overrides the default of 4 MiB, or an eighth of MemoryLimit when
	// that is set; negative: none of them.
	HotCacheSize int64
	// Logger receives Pebble's background errors (a flush or compaction
	// that failed, as on a full disk: Pebble retries it, and a snapshot
	// and the writes behind a full memtable wait for it). This overrides
	// the default of slog.Default().
	Logger *slog.Logger
	// BackgroundErrorTimeout bounds how long Pebble's background errors
	// may go on without a successful flush (as on a full disk, where
	// Pebble retries the flush for ever while a snapshot and the writes
	// behind a full memtable wait). Past it, the next state access or the
	// snapshot waiting for the flush returns an error wrapping
	// ErrBackgroundFailed that names the directory, so the job fails and
	// restarts from its last checkpoint; errors that clear sooner fail
	// nothing. This overrides the default of one minute; negative: wait
	// for ever.
	BackgroundErrorTimeout time.Duration

	// fs, when set, is the file system Pebble uses (tests inject faults).
	fs vfs.FS
}

func (o *Options) defaults() {
	if o.MemoryLimit > 0 {
		if o.CacheSize <= 0 {
			o.CacheSize = o.MemoryLimit / 4
		}
		if o.MemTableSize == 0 {
			o.MemTableSize = uint64(min(o.MemoryLimit/16, 64<<20))
			if o.MemTableSize < 256<<10 {
				o.MemTableSize = 256 << 10
			}
		}
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 8 << 20
	}
	if o.HotCacheSize == 0 {
		o.HotCacheSize = 4 << 20
		if o.MemoryLimit > 0 {
			o.HotCacheSize = o.MemoryLimit / 8
		}
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = 4 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.BackgroundErrorTimeout == 0 {
		o.BackgroundErrorTimeout = time.Minute
	}
}

// Backend is a state.Backend over a Pebble database. Like every backend it
// is used by one goroutine (the subtask's), except Snapshot.Upload.
type Backend struct {
	opts   Options
	db     *pebble.DB
	dbDir  string
	maxPar int
	groups state.KeyGroupRange
	tables map[string]state.Table
	// inst names this database instance's sstables in the shared area;
	// sstable numbers are unique only within one instance.
	inst string
	// shared maps local sstable names restored from a checkpoint to their
	// shared names, so that they are not stored again.
	shared map[string]string
	seq    int
	// lastSnap is closed once the latest snapshot is uploaded or
	// discarded: the next one's Upload waits for it (see Snapshot).
	lastSnap chan struct{}
	// beforeWait, when set (by tests), runs when an Upload is about to
	// wait for the previous snapshot's.
	beforeWait func()
	// batch holds the writes since the last Flush (nil: none): an indexed
	// batch, so that reads see them. scans counts the open iterators; the
	// batch is committed early (when it grows past batchLimit) only when
	// none is open.
	batch *pebble.Batch
	scans int
	hot   *state.CacheBudget
	// bgErrs logs Pebble's background errors and bounds them.
	bgErrs *bgErrors
}

// batchLimit is the size at which a write batch is committed before the
// operator's Flush, at most half a memtable: it bounds the memory of a
// batch of large records.
func (b *Backend) batchLimit() int { return int(min(4<<20, b.opts.MemTableSize/2)) }

type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Errorf("pebble: "+format, args...))
}

// Open returns an empty backend for key groups r of a job with
// maxParallelism key groups, in opts.Dir (whose previous content is
// removed).
func Open(opts Options, maxParallelism int, r state.KeyGroupRange) (*Backend, error) {
	opts.defaults()
	if err := os.RemoveAll(opts.Dir); err != nil {
		return nil, fmt.Errorf("pebble state %s: %w", opts.Dir, err)
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("pebble state %s: %w", opts.Dir, err)
	}
	b := newBackend(opts, maxParallelism, r)
	if err := b.open(); err != nil {
		return nil, err
	}
	return b, nil
}

func newBackend(opts Options, maxParallelism int, r state.KeyGroupRange) *Backend {
	var id [6]byte
	_, _ = rand.Read(id[:])
	return &Backend{opts: opts, dbDir: filepath.Join(opts.Dir, "db"), maxPar: maxParallelism, groups: r,
		tables: make(map[string]state.Table), inst: hex.EncodeToString(id[:]), shared: make(map[string]string),
		hot: state.NewCacheBudget(opts.HotCacheSize), bgErrs: newBGErrors(opts.Logger, opts.Dir, opts.BackgroundErrorTimeout)}
}

func (b *Backend) pebbleOptions() *pebble.Options {
	var cache *pebble.Cache
	if b.opts.Cache != nil {
		cache = b.opts.Cache.c
		cache.Ref() // open drops one reference
	} else {
		cache = pebble.NewCache(b.opts.CacheSize)
	}
	o := &pebble.Options{
		Cache:        cache,
		MemTableSize: b.opts.MemTableSize,
		// Pebble's own stall, which nothing can interrupt, is a
		// backstop: waitRoom stalls writes at two memtables while
		// flushes fail, and gives up when bgErrors says so.
		MemTableStopWritesThreshold: memTableStopWrites + 1,
		DisableWAL:                  true,
		Logger:                      quietLogger{},
		EventListener: &pebble.EventListener{
			BackgroundError: b.bgErrs.report,
			FlushEnd:        b.bgErrs.flushEnd,
			CompactionEnd:   b.bgErrs.compactionEnd,
		},
	}
	if b.opts.fs != nil {
		o.FS = b.opts.fs
	}
	// Bloom filters let point reads of absent keys (new map entries, such
	// as a distinct set's first sight of a value) skip most sstables.
	o.Levels = make([]pebble.LevelOptions, 7)
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		o.Levels[i].TargetFileSize = 2 << 20 << i
	}
	return o
}

func (b *Backend) open() error {
	o := b.pebbleOptions()
	db, err := pebble.Open(b.dbDir, o)
	o.Cache.Unref()
	if err != nil {
		return fmt.Errorf("pebble state %s: %w", b.dbDir, err)
	}
	b.db = db
	return nil
}

// Close closes the database; the working directory is left for the next
// Open or Restore to clear.
func (b *Backend) Close() error {
	if b.db == nil {
		return nil
	}
	if b.batch != nil {
		_ = b.batch.Close() // state survives through checkpoints, not Close
		b.batch = nil
	}
	err := b.db.Close()
	b.db = nil
	if err != nil {
		return fmt.Errorf("pebble state %s: close: %w", b.dbDir, err)
	}
	return nil
}

// MaxParallelism implements state.Backend.
func (b *Backend) MaxParallelism() int { return b.maxPar }

// KeyGroups implements state.Backend.
func (b *Backend) KeyGroups() state.KeyGroupRange { return b.groups }

// ErrNoKVTable is returned by Open for a table descriptor that cannot be
// stored as bytes.
var ErrNoKVTable = errors.New("pebble state: table kind has no byte encoding")

// Open implements state.Backend.
func (b *Backend) Open(desc state.TableDescriptor) (state.Table, error) {
	if t, ok := b.tables[desc.Name()]; ok {
		return t, nil
	}
	kd, ok := desc.(state.KVTableDescriptor)
	if !ok {
		return nil, fmt.Errorf("table %q: %w", desc.Name(), ErrNoKVTable)
	}
	t, err := kd.NewKVTable(kvStore{b}, b.groups)
	if err != nil {
		return nil, err
	}
	b.tables[desc.Name()] = t
	return t, nil
}

// Tables implements state.Backend.
func (b *Backend) Tables() []state.Table {
	out := make([]state.Table, 0, len(b.tables))
	for _, t := range b.tables {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

// DiskUsage returns the bytes of the database's files.
func (b *Backend) DiskUsage() uint64 { return b.db.Metrics().DiskSpaceUsage() }

// Flush implements state.Flusher: it commits the writes buffered since
// the last Flush as one Pebble batch (operators call it once per record
// batch, so that a batch of records costs one commit, not one per write).
// The values that value tables hold in memory stay there until a
// snapshot (writeBack): nothing but the tables reads the database between
// snapshots.
func (b *Backend) Flush() error { return b.commit() }

// writeBack makes the tables write the values they hold in memory to the
// write batch (state.KVWriteBack) and commits it: before a snapshot.
func (b *Backend) writeBack() error {
	for _, t := range b.tables {
		if w, ok := t.(state.KVWriteBack); ok {
			w.WriteBack()
		}
	}
	return b.commit()
}

// commit commits the write batch.
func (b *Backend) commit() error {
	if err := b.bgErrs.err(); err != nil {
		return err
	}
	if b.batch == nil {
		return nil
	}
	if err := b.waitRoom(); err != nil {
		return err
	}
	if b.scans > 0 {
		return errors.New("pebble state: flush with an open iterator")
	}
	batch := b.batch
	b.batch = nil
	if batch.Empty() {
		return batch.Close()
	}
	if err := batch.Commit(pebble.NoSync); err != nil {
		_ = batch.Close()
		return fmt.Errorf("pebble state: commit write batch: %w", err)
	}
	return batch.Close()
}

// memTableStopWrites is the number of memtables' worth of data at which
// waitRoom holds writes back while flushes fail.
const memTableStopWrites = 2

// waitRoom holds a commit (or a flush, which needs a memtable too) back
// while background flushes fail and the memtables are full: it waits for
// a flush to succeed, or returns the error once bgErrors gives up. Pebble
// would wait inside the commit, for ever if the disk stays full. Without
// failures it costs one atomic load.
func (b *Backend) waitRoom() error {
	for {
		if err := b.bgErrs.err(); err != nil {
			return err
		}
		if !b.bgErrs.running.Load() {
			return nil
		}
		changed := b.bgErrs.wait()
		m := b.db.Metrics()
		if m.MemTable.Size < memTableStopWrites*b.opts.MemTableSize {
			return nil
		}
		select {
		case <-changed:
		case <-b.bgErrs.failed:
		}
	}
}

// writer returns the write batch, starting one.
func (b *Backend) writer() *pebble.Batch {
	if b.batch == nil {
		b.batch = b.db.NewIndexedBatch()
	}
	return b.batch
}

// wrote commits the batch early when it is large and no iterator is open.
func (b *Backend) wrote() error {
	if b.batch.Len() < b.batchLimit() || b.scans > 0 {
		return nil
	}
	return b.commit() // the tables' dirty entries stay in their caches
}

// reader returns what reads go through: the batch, if there is one, so
// that they see its writes.
func (b *Backend) reader() pebble.Reader {
	if b.batch != nil {
		return b.batch
	}
	return b.db
}

// kvStore adapts the backend's database and write batch to
// state.KVStore.
type kvStore struct{ b *Backend }

// CacheBudget implements state.KVCacheBudget.
func (s kvStore) CacheBudget() *state.CacheBudget { return s.b.hot }

// HotCacheUsed returns the bytes held by the tables' read caches.
func (b *Backend) HotCacheUsed() int64 { return b.hot.Used() }

func (s kvStore) Get(key, dst []byte) ([]byte, bool, error) {
	if err := s.b.bgErrs.err(); err != nil {
		return dst, false, err
	}
	v, closer, err := s.b.reader().Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return dst, false, nil
	}
	if err != nil {
		return dst, false, err
	}
	dst = append(dst, v...)
	return dst, true, closer.Close()
}

func (s kvStore) Set(key, val []byte) error {
	if err := s.b.writer().Set(key, val, nil); err != nil {
		return err
	}
	return s.b.wrote()
}

func (s kvStore) Delete(key []byte) error {
	if err := s.b.writer().Delete(key, nil); err != nil {
		return err
	}
	return s.b.wrote()
}

func (s kvStore) DeleteRange(start, end []byte) error {
	if err := s.b.writer().DeleteRange(start, end, nil); err != nil {
		return err
	}
	return s.b.wrote()
}

// Scan iterates a consistent view: writes made by fn during the scan are
// not seen by it.
func (s kvStore) Scan(start, end []byte, fn func(key, val []byte) bool) error {
	it, err := s.b.reader().NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		return err
	}
	s.b.scans++
	defer func() { s.b.scans-- }()
	for ok := it.First(); ok; ok = it.Next() {
		if !fn(it.Key(), it.Value()) {
			break
		}
	}
	return it.Close()
}
