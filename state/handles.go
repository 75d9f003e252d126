package state

import (
	"fmt"
	"iter"
)

// Keyed is the current-key context of one keyed operator subtask. The
// runtime calls SetCurrentKey before it hands a record or a timer to user
// code; the state handles made from this context read and write the entry
// of the current key.
type Keyed[K comparable] struct {
	backend Backend
	key     K
	kg      int
}

// NewKeyed returns a context over backend b.
func NewKeyed[K comparable](b Backend) *Keyed[K] {
	return &Keyed[K]{backend: b, kg: b.KeyGroups().Start}
}

// SetCurrentKey sets the key (and its key group) that handles act on.
func (c *Keyed[K]) SetCurrentKey(key K, keyGroup int) {
	c.key = key
	c.kg = keyGroup
}

// CurrentKey returns the current key.
func (c *Keyed[K]) CurrentKey() K { return c.key }

// KeyGroup returns the key group of the current key.
func (c *Keyed[K]) KeyGroup() int { return c.kg }

// Backend returns the backend that holds the context's tables.
func (c *Keyed[K]) Backend() Backend { return c.backend }

// Value is a single value per key.
type Value[K comparable, V any] struct {
	c *Keyed[K]
	t TypedTable[K, V]
}

// NewValue opens the value state called name.
func NewValue[K comparable, V any](c *Keyed[K], name string) (*Value[K, V], error) {
	t, err := OpenTable[K, V](c.backend, name)
	if err != nil {
		return nil, fmt.Errorf("value state: %w", err)
	}
	return &Value[K, V]{c: c, t: t}, nil
}

// Get returns the current key's value and whether it is set.
func (v *Value[K, V]) Get() (V, bool) { return v.t.Get(v.c.kg, v.c.key) }

// Set sets the current key's value.
func (v *Value[K, V]) Set(x V) { v.t.Put(v.c.kg, v.c.key, x) }

// Clear removes the current key's value.
func (v *Value[K, V]) Clear() { v.t.Delete(v.c.kg, v.c.key) }

// Map is a map from user keys UK to values V per key. In memory it is one
// Go map per key, whose changes are tracked per entry for incremental
// snapshots (memmap.go); on a KVStore backend (Pebble) every entry is a
// store key of its own, so Get, Put and Delete touch one entry, All is a
// prefix scan and Clear a range delete.
type Map[K comparable, UK comparable, V any] struct {
	c   *Keyed[K]
	mem *memMapTable[K, UK, V]  // in memory
	t   TypedTable[K, map[UK]V] // in memory, a table opened as a plain one first
	kv  *kvMapTable[K, UK, V]   // on a KVStore
}

// NewMap opens the map state called name.
func NewMap[K comparable, UK comparable, V any](c *Keyed[K], name string) (*Map[K, UK, V], error) {
	t, err := c.backend.Open(mapEntriesDescriptor[K, UK, V]{mapDescriptor[K, UK, V]{name: name}})
	if err != nil {
		return nil, fmt.Errorf("map state %q: %w", name, err)
	}
	switch tt := t.(type) {
	case *kvMapTable[K, UK, V]:
		return &Map[K, UK, V]{c: c, kv: tt}, nil
	case *memMapTable[K, UK, V]:
		return &Map[K, UK, V]{c: c, mem: tt}, nil
	case TypedTable[K, map[UK]V]:
		return &Map[K, UK, V]{c: c, t: tt}, nil
	}
	return nil, fmt.Errorf("map state %q: %w", name, ErrTypeMismatch)
}

// EntryKeys reports whether the map stores every entry under a store key
// of its own (a KVStore backend such as Pebble): Get, Put and Delete then
// cost one point read or write whatever the map's size, so large sets are
// better kept here than inside a Value. In memory it is false, though
// snapshots are per entry there too (TracksEntries).
func (m *Map[K, UK, V]) EntryKeys() bool { return m.kv != nil }

// TracksEntries reports whether a change of one entry costs an
// incremental snapshot that entry only, not the key's whole map: true on
// a KVStore backend and in memory (unless the table was first opened as a
// plain table of maps with OpenTable).
func (m *Map[K, UK, V]) TracksEntries() bool { return m.kv != nil || m.mem != nil }

// Get returns the value under uk for the current key.
func (m *Map[K, UK, V]) Get(uk UK) (V, bool) {
	if m.kv != nil {
		return m.kv.get(m.c.kg, m.c.key, uk)
	}
	if m.mem != nil {
		return m.mem.getEntry(m.c.kg, m.c.key, uk)
	}
	mm, _ := m.t.Get(m.c.kg, m.c.key)
	v, ok := mm[uk]
	return v, ok
}

// Put sets the value under uk for the current key.
func (m *Map[K, UK, V]) Put(uk UK, v V) {
	if m.kv != nil {
		m.kv.put(m.c.kg, m.c.key, uk, v)
		return
	}
	if m.mem != nil {
		m.mem.putEntry(m.c.kg, m.c.key, uk, v)
		return
	}
	mm, ok := m.t.Get(m.c.kg, m.c.key)
	if !ok || mm == nil {
		mm = make(map[UK]V)
	}
	mm[uk] = v
	// Put even when mm came from the table, so that a table that tracks
	// writes (copy-on-write snapshots) sees the change.
	m.t.Put(m.c.kg, m.c.key, mm)
}

// Delete removes uk for the current key.
func (m *Map[K, UK, V]) Delete(uk UK) {
	if m.kv != nil {
		m.kv.delete(m.c.kg, m.c.key, uk)
		return
	}
	if m.mem != nil {
		m.mem.deleteEntry(m.c.kg, m.c.key, uk)
		return
	}
	mm, ok := m.t.Get(m.c.kg, m.c.key)
	if !ok {
		return
	}
	delete(mm, uk)
	if len(mm) == 0 {
		m.t.Delete(m.c.kg, m.c.key)
		return
	}
	m.t.Put(m.c.kg, m.c.key, mm)
}

// Len returns the number of entries for the current key. On a KVStore
// backend it is a prefix scan over the key's entries (their number of
// steps, without decoding them).
func (m *Map[K, UK, V]) Len() int {
	if m.kv != nil {
		return m.kv.countKey(m.c.kg, m.c.key)
	}
	if m.mem != nil {
		return m.mem.lenKey(m.c.kg, m.c.key)
	}
	mm, _ := m.t.Get(m.c.kg, m.c.key)
	return len(mm)
}

// All iterates the entries of the current key in no particular order
// (in memory) or in the order of their encoded user keys (on a KVStore).
// The map must not be modified during the iteration except by deleting the
// entry just yielded.
func (m *Map[K, UK, V]) All() iter.Seq2[UK, V] {
	if m.kv != nil {
		return m.kv.all(m.c.kg, m.c.key)
	}
	if m.mem != nil {
		return m.mem.allKey(m.c.kg, m.c.key)
	}
	mm, _ := m.t.Get(m.c.kg, m.c.key)
	return func(yield func(UK, V) bool) {
		for k, v := range mm {
			if !yield(k, v) {
				return
			}
		}
	}
}

// Clear removes every entry of the current key.
func (m *Map[K, UK, V]) Clear() {
	if m.kv != nil {
		m.kv.clearKey(m.c.kg, m.c.key)
		return
	}
	if m.mem != nil {
		m.mem.Delete(m.c.kg, m.c.key)
		return
	}
	m.t.Delete(m.c.kg, m.c.key)
}

// List is an ordered list of values per key. In memory it is one slice per
// key; on a KVStore backend (Pebble) every element is a store key of its
// own (the key's prefix and a sequence number), so Add appends without
// reading the list.
type List[K comparable, V any] struct {
	c  *Keyed[K]
	t  TypedTable[K, []V] // in memory
	kv *kvListTable[K, V] // on a KVStore
}

// NewList opens the list state called name.
func NewList[K comparable, V any](c *Keyed[K], name string) (*List[K, V], error) {
	t, err := c.backend.Open(listDescriptor[K, V]{name: name})
	if err != nil {
		return nil, fmt.Errorf("list state %q: %w", name, err)
	}
	switch tt := t.(type) {
	case *kvListTable[K, V]:
		return &List[K, V]{c: c, kv: tt}, nil
	case TypedTable[K, []V]:
		return &List[K, V]{c: c, t: tt}, nil
	}
	return nil, fmt.Errorf("list state %q: %w", name, ErrTypeMismatch)
}

// Add appends v to the current key's list.
func (l *List[K, V]) Add(v V) {
	if l.kv != nil {
		l.kv.add(l.c.kg, l.c.key, v)
		return
	}
	s, _ := l.t.Get(l.c.kg, l.c.key)
	l.t.Put(l.c.kg, l.c.key, append(s, v))
}

// Values returns the current key's list. The slice is owned by the state:
// read it, do not keep or modify it (use Update to replace the list). On a
// KVStore backend it is decoded by a prefix scan on each call.
func (l *List[K, V]) Values() []V {
	if l.kv != nil {
		return l.kv.values(l.c.kg, l.c.key)
	}
	s, _ := l.t.Get(l.c.kg, l.c.key)
	return s
}

// Update replaces the current key's list with vs (which the state keeps).
func (l *List[K, V]) Update(vs []V) {
	if l.kv != nil {
		l.kv.update(l.c.kg, l.c.key, vs)
		return
	}
	if len(vs) == 0 {
		l.t.Delete(l.c.kg, l.c.key)
		return
	}
	l.t.Put(l.c.kg, l.c.key, vs)
}

// Clear removes the current key's list.
func (l *List[K, V]) Clear() {
	if l.kv != nil {
		l.kv.clearKey(l.c.kg, l.c.key)
		return
	}
	l.t.Delete(l.c.kg, l.c.key)
}
