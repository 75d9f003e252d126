package state

import (
	"fmt"
	"math/bits"
)

// Slots is, per key, a small head H (counters, masks, a timer) and a
// short array of up to MaxSlots slots, each empty or holding a V: state
// that is a few values per key of which a record changes one or two (a
// top-N list kept in stable slots, a small ring), with the bookkeeping
// that goes with them, found with one lookup. Like the other handles it
// acts on the current key of its Keyed context; a key exists while it
// has a head or a slot set.
//
// In memory (memslots.go), with change tracking on, Set and Delete encode
// the slot's change into the key group's log as they happen, while the
// value is still in the processor's cache, and a checkpoint's increment is
// that log: a barrier copies bytes instead of reading and encoding every
// changed key's values again. A key written much more often than it has
// slots in one checkpoint interval stops logging and is encoded whole at
// the barrier, so that the log stays within a small multiple of what a
// per-slot increment holds. A changed head is encoded at the barrier,
// once per interval. On a KVStore backend (Pebble) the head and slots of
// a key are one value (read, changed and written back by each change).
type Slots[K comparable, H, V any] struct {
	c   *Keyed[K]
	mem *memSlotsTable[K, H, V]         // in memory
	t   TypedTable[K, slotsValue[H, V]] // on a KVStore
}

// MaxSlots is the number of slots of a key.
const MaxSlots = 64

// slotsValue is the head and slots of one key as one value: on a
// KVStore, and in the full snapshots of the memory backend
// (AppendKeyGroup). Vals has at least as many elements as the highest
// slot set, plus one.
type slotsValue[H, V any] struct {
	HasHead bool
	Head    H
	Mask    uint64 // bit i: slot i is set
	Vals    []V
}

// slotsDescriptor is the TableDescriptor of slots state.
type slotsDescriptor[K comparable, H, V any] struct{ name string }

func (d slotsDescriptor[K, H, V]) Name() string { return d.name }

func (d slotsDescriptor[K, H, V]) NewMemoryTable(r KeyGroupRange) Table {
	return newMemSlotsTable[K, H, V](d.name, r)
}

func (d slotsDescriptor[K, H, V]) NewKVTable(kv KVStore, r KeyGroupRange) (Table, error) {
	return descriptor[K, slotsValue[H, V]](d).NewKVTable(kv, r)
}

// NewSlots opens the slots state called name. A key's array starts with
// room for capacity slots (and doubles when a higher slot is set).
func NewSlots[K comparable, H, V any](c *Keyed[K], name string, capacity int) (*Slots[K, H, V], error) {
	t, err := c.backend.Open(slotsDescriptor[K, H, V]{name: name})
	if err != nil {
		return nil, fmt.Errorf("slots state %q: %w", name, err)
	}
	switch tt := t.(type) {
	case *memSlotsTable[K, H, V]:
		if err := tt.codecs(); err != nil {
			return nil, err
		}
		tt.capacity = min(max(capacity, 1), MaxSlots)
		return &Slots[K, H, V]{c: c, mem: tt}, nil
	case TypedTable[K, slotsValue[H, V]]:
		return &Slots[K, H, V]{c: c, t: tt}, nil
	}
	return nil, fmt.Errorf("slots state %q: %w", name, ErrTypeMismatch)
}

// Head returns the current key's head and whether it is set.
func (s *Slots[K, H, V]) Head() (H, bool) {
	if s.mem != nil {
		if e := s.mem.lookup(s.c.kg, s.c.key); e != nil {
			return e.head, e.hasHead
		}
		var zero H
		return zero, false
	}
	v, _ := s.t.Get(s.c.kg, s.c.key)
	return v.Head, v.HasHead
}

// SetHead sets the current key's head.
func (s *Slots[K, H, V]) SetHead(h H) {
	if s.mem != nil {
		s.mem.setHead(s.c.kg, s.c.key, h)
		return
	}
	sv, _ := s.t.Get(s.c.kg, s.c.key)
	sv.Head, sv.HasHead = h, true
	s.t.Put(s.c.kg, s.c.key, sv)
}

// Values returns the current key's slots and the mask of those set (bit
// i: slot i); an unset slot of vals holds the zero V. The slice is owned
// by the state: read it, do not keep or modify it.
func (s *Slots[K, H, V]) Values() (vals []V, mask uint64) {
	if s.mem != nil {
		if e := s.mem.lookup(s.c.kg, s.c.key); e != nil {
			return e.vals, e.mask
		}
		return nil, 0
	}
	v, _ := s.t.Get(s.c.kg, s.c.key)
	return v.Vals, v.Mask
}

// Get returns slot i of the current key and whether it is set.
func (s *Slots[K, H, V]) Get(i int) (V, bool) {
	vals, mask := s.Values()
	if i < 0 || i >= MaxSlots || mask&(1<<i) == 0 {
		var zero V
		return zero, false
	}
	return vals[i], true
}

// Set sets slot i (0 <= i < MaxSlots) of the current key to v.
func (s *Slots[K, H, V]) Set(i int, v V) {
	checkSlot(i)
	if s.mem != nil {
		s.mem.set(s.c.kg, s.c.key, i, v)
		return
	}
	sv, _ := s.t.Get(s.c.kg, s.c.key)
	if i >= len(sv.Vals) {
		vals := make([]V, i+1, max(i+1, 2*len(sv.Vals)))
		copy(vals, sv.Vals)
		sv.Vals = vals
	}
	sv.Vals[i] = v
	sv.Mask |= 1 << i
	s.t.Put(s.c.kg, s.c.key, sv)
}

// Delete empties slot i of the current key; a key without slots set is
// removed.
func (s *Slots[K, H, V]) Delete(i int) {
	checkSlot(i)
	if s.mem != nil {
		s.mem.delete(s.c.kg, s.c.key, i)
		return
	}
	sv, ok := s.t.Get(s.c.kg, s.c.key)
	if !ok || sv.Mask&(1<<i) == 0 {
		return
	}
	sv.Mask &^= 1 << i
	if sv.Mask == 0 && !sv.HasHead {
		s.t.Delete(s.c.kg, s.c.key)
		return
	}
	var zero V
	sv.Vals[i] = zero
	sv.Vals = sv.Vals[:slotsLen(sv.Mask)]
	s.t.Put(s.c.kg, s.c.key, sv)
}

// Clear removes the current key: its head and every slot.
func (s *Slots[K, H, V]) Clear() {
	if s.mem != nil {
		s.mem.clearKey(s.c.kg, s.c.key)
		return
	}
	s.t.Delete(s.c.kg, s.c.key)
}

func checkSlot(i int) {
	if i < 0 || i >= MaxSlots {
		panic(fmt.Sprintf("state: slot %d outside [0, %d)", i, MaxSlots))
	}
}

// slotsLen is the length of a key's values with slots mask set: the
// highest slot set, plus one.
func slotsLen(mask uint64) int { return 64 - bits.LeadingZeros64(mask) }
