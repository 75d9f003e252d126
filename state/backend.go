package state

import (
	"errors"
	"fmt"
	"sort"
)

// ErrTypeMismatch is returned when a table is opened twice under one name
// with different key or value types.
var ErrTypeMismatch = errors.New("state: table reopened with different types")

// Backend stores the keyed state of one operator subtask, for the key
// groups it owns. Implementations: the in-memory backend (NewMemory); a
// Pebble backend is planned. A backend is used by one goroutine.
type Backend interface {
	// MaxParallelism returns the number of key groups of the job.
	MaxParallelism() int
	// KeyGroups returns the key groups this backend owns.
	KeyGroups() KeyGroupRange
	// Open returns the table called desc.Name(), creating it from desc on
	// first use. Opening a name again returns the same table.
	Open(desc TableDescriptor) (Table, error)
	// Tables returns the open tables sorted by name (snapshots iterate it).
	Tables() []Table
}

// TableDescriptor describes a table to create: its name and how to build
// it in each kind of backend. Descriptors are made by the typed handle
// constructors (NewValue, NewMap, NewList); a new backend kind adds a
// construction method here.
type TableDescriptor interface {
	Name() string
	// NewMemoryTable returns an empty in-memory table for key groups r.
	NewMemoryTable(r KeyGroupRange) Table
}

// Table is the type-erased view of a table that a backend needs for
// bookkeeping, snapshots and rescaling.
type Table interface {
	// Name returns the table's name, unique within its operator.
	Name() string
	// KeyGroups returns the key groups the table covers.
	KeyGroups() KeyGroupRange
	// Len returns the number of keys stored in the table (of entries, for
	// map state and the tables of a KVStore).
	Len() int
	// ClearKeyGroup removes every entry of key group kg.
	ClearKeyGroup(kg int)
}

// TypedTable is a table of values of type V by key K, partitioned by key
// group. Every method takes the key group of the key, which the caller has
// already computed when routing the record.
type TypedTable[K comparable, V any] interface {
	Table
	// Get returns the value of k, if any.
	Get(kg int, k K) (V, bool)
	// Put sets the value of k.
	Put(kg int, k K, v V)
	// Delete removes k.
	Delete(kg int, k K)
	// Range calls fn for every entry of key group kg, in no particular
	// order, until fn returns false. fn must not modify the table.
	Range(kg int, fn func(K, V) bool)
}

// Memory is the in-memory backend: one Go map per key group and table.
type Memory struct {
	maxPar int
	groups KeyGroupRange
	tables map[string]Table
	stash  map[string][]stashed
	track  bool // change tracking (memdelta.go)
}

// NewMemory returns an in-memory backend for key groups r of a job with
// maxParallelism key groups.
func NewMemory(maxParallelism int, r KeyGroupRange) *Memory {
	return &Memory{maxPar: maxParallelism, groups: r, tables: make(map[string]Table)}
}

// MaxParallelism implements Backend.
func (m *Memory) MaxParallelism() int { return m.maxPar }

// KeyGroups implements Backend.
func (m *Memory) KeyGroups() KeyGroupRange { return m.groups }

// Open implements Backend.
func (m *Memory) Open(desc TableDescriptor) (Table, error) {
	if t, ok := m.tables[desc.Name()]; ok {
		return t, nil
	}
	t := desc.NewMemoryTable(m.groups)
	if ct, ok := t.(changeTable); ok && m.track {
		ct.setTracking(true)
	}
	if err := m.applyStash(t); err != nil {
		return nil, err
	}
	m.tables[desc.Name()] = t
	return t, nil
}

// Tables implements Backend.
func (m *Memory) Tables() []Table {
	out := make([]Table, 0, len(m.tables))
	for _, t := range m.tables {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

// descriptor is the TableDescriptor of a TypedTable[K, V].
type descriptor[K comparable, V any] struct{ name string }

func (d descriptor[K, V]) Name() string { return d.name }

func (d descriptor[K, V]) NewMemoryTable(r KeyGroupRange) Table {
	return &memTable[K, V]{name: d.name, groups: r, maps: make([]map[K]memSlot[V], r.Len())}
}

// OpenTable opens (or creates) the typed table name in backend b.
func OpenTable[K comparable, V any](b Backend, name string) (TypedTable[K, V], error) {
	t, err := b.Open(descriptor[K, V]{name: name})
	if err != nil {
		return nil, fmt.Errorf("state table %q: %w", name, err)
	}
	tt, ok := t.(TypedTable[K, V])
	if !ok {
		return nil, fmt.Errorf("state table %q: %w", name, ErrTypeMismatch)
	}
	return tt, nil
}

type memTable[K comparable, V any] struct {
	name   string
	groups KeyGroupRange
	maps   []map[K]memSlot[V]
	// With change tracking (memdelta.go): the current generation (from
	// 1; one per snapshot interval) and, per key group, the keys written
	// or deleted in it (listed once each), the listed keys deleted since
	// (gone, so that a key put again is not listed twice) and whether
	// the key group was cleared as a whole.
	track bool
	gen   uint32
	dirty [][]K
	gone  []map[K]struct{}
	reset []bool
	// The slot found by the last Get (Value.Get, then Value.Set of the
	// same key): Put then knows the key's generation without a second
	// lookup. Valid while lastOK; a Delete or a restore ends it.
	lastOK  bool
	lastHas bool
	lastKG  int
	lastK   K
	lastGen uint32
	// entrySize is the average size of an entry at the last snapshot
	// (memencode.go), to size the next one's buffer.
	entrySize int
}

// memSlot is a value of a memTable with the generation of its last
// write (0: before tracking began, or restored).
type memSlot[V any] struct {
	v   V
	gen uint32
}

func (t *memTable[K, V]) Name() string             { return t.name }
func (t *memTable[K, V]) KeyGroups() KeyGroupRange { return t.groups }

func (t *memTable[K, V]) Len() int {
	n := 0
	for _, m := range t.maps {
		n += len(m)
	}
	return n
}

func (t *memTable[K, V]) ClearKeyGroup(kg int) {
	i := kg - t.groups.Start
	t.maps[i] = nil
	t.lastOK = false
	if t.track {
		t.reset[i] = true
		clear(t.dirty[i])
		t.dirty[i] = t.dirty[i][:0]
		t.gone[i] = nil
	}
}

func (t *memTable[K, V]) Get(kg int, k K) (V, bool) {
	s, ok := t.maps[kg-t.groups.Start][k]
	if t.track {
		t.lastOK, t.lastHas, t.lastKG, t.lastK, t.lastGen = true, ok, kg, k, s.gen
	}
	return s.v, ok
}

func (t *memTable[K, V]) Put(kg int, k K, v V) {
	i := kg - t.groups.Start
	m := t.maps[i]
	if m == nil {
		m = make(map[K]memSlot[V])
		t.maps[i] = m
	}
	if t.track {
		t.noteWrite(i, kg, k, m)
	}
	m[k] = memSlot[V]{v: v, gen: t.gen}
}

func (t *memTable[K, V]) Delete(kg int, k K) {
	i := kg - t.groups.Start
	m := t.maps[i]
	s, ok := m[k]
	if !ok {
		return
	}
	delete(m, k)
	if t.track {
		t.lastOK = false
		t.noteDelete(i, k, s.gen)
	}
}

func (t *memTable[K, V]) Range(kg int, fn func(K, V) bool) {
	for k, s := range t.maps[kg-t.groups.Start] {
		if !fn(k, s.v) {
			return
		}
	}
}
