package pebble

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
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
	// keeps up to two while one flushes).
	MemoryLimit int64
	// Cache, when set, is the block cache shared with other backends;
	// CacheSize is then ignored.
	Cache *Cache
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
	if o.MemTableSize == 0 {
		o.MemTableSize = 4 << 20
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
}

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
		tables: make(map[string]state.Table), inst: hex.EncodeToString(id[:]), shared: make(map[string]string)}
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
		DisableWAL:   true,
		Logger:       quietLogger{},
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
	t, err := kd.NewKVTable(kvStore{b.db}, b.groups)
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

// kvStore adapts a Pebble database to state.KVStore.
type kvStore struct{ db *pebble.DB }

func (s kvStore) Get(key, dst []byte) ([]byte, bool, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return dst, false, nil
	}
	if err != nil {
		return dst, false, err
	}
	dst = append(dst, v...)
	return dst, true, closer.Close()
}

func (s kvStore) Set(key, val []byte) error { return s.db.Set(key, val, pebble.NoSync) }

func (s kvStore) Delete(key []byte) error { return s.db.Delete(key, pebble.NoSync) }

func (s kvStore) DeleteRange(start, end []byte) error {
	return s.db.DeleteRange(start, end, pebble.NoSync)
}

func (s kvStore) Scan(start, end []byte, fn func(key, val []byte) bool) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		if !fn(it.Key(), it.Value()) {
			break
		}
	}
	return it.Close()
}
