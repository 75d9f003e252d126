package state

import (
	"encoding/binary"
	"fmt"
	"iter"
	"reflect"
	"slices"

	"github.com/sluicehq/sluice/state/codec"
)

// In-memory map state (NewMap on the memory backend) with change tracking
// per entry.
//
// A memMapTable is a TypedTable[K, map[UK]V] (one Go map of user keys per
// key), so that full snapshots (AppendKeyGroup), rescaling and code that
// opens the table with OpenTable see what they saw before. What differs
// from a memTable is its change tracking: Map.Put and Map.Delete mark the
// entry (key, user key) dirty, not the key, so that an incremental
// snapshot encodes the entries written or deleted since the previous one
// instead of every entry of every key touched. A key replaced or removed
// as a whole (Put or Delete of the TypedTable, Map.Clear) is marked whole:
// the snapshot writes a deletion of the key and then its current entries.
//
// Change body of a map table (memdelta.go has the common part): the flags
// byte has changeEntries set, and besides the ops of whole values it holds
//
//	op 2 (entries) | key bytes | group bytes
//	group: count uvarint | per entry: op byte (0 put, 1 delete) |
//	       user key bytes | value bytes (put only)
//
// all length-prefixed, so that MergeChanges folds entries by their bytes
// without the codecs. A full body (reset) holds one group of puts per key.
// A key whose map becomes empty is removed (as Map.Delete always did), so
// a restored table never holds empty maps.

// mapEntriesDescriptor is the TableDescriptor of map state: a memMapTable
// in memory; on a KVStore the one store key per entry of mapDescriptor.
type mapEntriesDescriptor[K, UK comparable, V any] struct {
	mapDescriptor[K, UK, V]
}

func (d mapEntriesDescriptor[K, UK, V]) NewMemoryTable(r KeyGroupRange) Table {
	return &memMapTable[K, UK, V]{name: d.name, groups: r, keys: make([]map[K]*memMapKey[UK, V], r.Len())}
}

// memMapKey is the map of one key and its changes since the last
// snapshot.
type memMapKey[UK comparable, V any] struct {
	m map[UK]V
	// few and dirty hold the user keys of the entries written or
	// deleted since the last snapshot (unless whole is set): the
	// snapshot reads their current value in m (absent: deleted), and
	// walks these, not the key's large map. Only the user key is
	// stored: a copy of the value per write cost a larger map insertion
	// and more for the collector to scan. The first fewDirty user keys
	// go into few (a linear search finds a repeated one, cheaper than a
	// set for the few entries most keys change in an interval); past
	// that they all move into the set dirty and few is released.
	few   []UK
	dirty map[UK]struct{}
	// whole: the key was replaced or removed as a whole since the last
	// snapshot.
	whole bool
	// fresh: the key had no entries at the last snapshot (made since),
	// so its changes are all its entries: they are not tracked one by
	// one, and the snapshot writes the key's entries, as for whole but
	// without a deletion first.
	fresh bool
	// listed: the key is in its key group's dirty list.
	listed bool
	// hint is the size of dirty at the last snapshot: a set made for
	// the next interval starts at that size instead of growing to it
	// again.
	hint int
}

// fewDirty is the capacity of memMapKey.few.
const fewDirty = 8

// nDirty returns the number of user keys changed since the last
// snapshot (whole aside).
func (e *memMapKey[UK, V]) nDirty() int { return len(e.few) + len(e.dirty) }

type memMapTable[K, UK comparable, V any] struct {
	name   string
	groups KeyGroupRange
	keys   []map[K]*memMapKey[UK, V]
	n      int // entries over every key
	// The key looked up last (handles act on the current key, several
	// calls in a row): last is nil or the entry of lastK in lastKG.
	last   *memMapKey[UK, V]
	lastK  K
	lastKG int
	// With change tracking: per key group, the keys with changes (a
	// removed key stays here until the snapshot) and whether the key
	// group was cleared as a whole.
	track bool
	dirty []map[K]*memMapKey[UK, V]
	reset []bool
	hint  []int // size of each dirty map at the last snapshot
	// freeFew holds the few lists of keys of the last interval, emptied
	// at the snapshot, for the keys that change in the next one: a list
	// is not made anew per key and interval.
	freeFew [][]UK
	// Codecs, made on first use.
	codecErr error
	kc       codec.Codec[K]
	ukc      codec.Codec[UK]
	vc       codec.Codec[V]
	mc       codec.Codec[map[UK]V]
	// ve encodes values during appendChanges.
	ve *prefixedEncoder[V]
}

func (t *memMapTable[K, UK, V]) Name() string             { return t.name }
func (t *memMapTable[K, UK, V]) KeyGroups() KeyGroupRange { return t.groups }

// Len returns the number of entries (not keys), as the map tables of a
// KVStore do: it is what an incremental snapshot weighs its changes
// against.
func (t *memMapTable[K, UK, V]) Len() int { return t.n }

func (t *memMapTable[K, UK, V]) ClearKeyGroup(kg int) {
	i := kg - t.groups.Start
	for _, e := range t.keys[i] {
		t.n -= len(e.m)
	}
	t.keys[i] = nil
	t.last = nil
	if t.track {
		t.reset[i] = true
		t.dirty[i] = nil
	}
}

// lookup returns the entry of key k, or nil.
func (t *memMapTable[K, UK, V]) lookup(kg int, k K) *memMapKey[UK, V] {
	if t.last != nil && t.lastKG == kg && t.lastK == k {
		return t.last
	}
	e := t.keys[kg-t.groups.Start][k]
	if e != nil {
		t.last, t.lastK, t.lastKG = e, k, kg
	}
	return e
}

// entry returns the entry of key k, created if needed.
func (t *memMapTable[K, UK, V]) entry(kg int, k K) *memMapKey[UK, V] {
	if e := t.lookup(kg, k); e != nil {
		return e
	}
	i := kg - t.groups.Start
	var e *memMapKey[UK, V]
	if t.track {
		e = t.dirty[i][k] // removed since the last snapshot: its changes go on
	}
	if e == nil {
		// Not in the last snapshot, or it would be listed (removed
		// since) or in keys.
		e = &memMapKey[UK, V]{fresh: t.track}
	}
	if t.keys[i] == nil {
		t.keys[i] = make(map[K]*memMapKey[UK, V])
	}
	t.keys[i][k] = e
	t.last, t.lastK, t.lastKG = e, k, kg
	return e
}

// remove drops key k, whose map is empty or removed as a whole.
func (t *memMapTable[K, UK, V]) remove(kg int, k K) {
	delete(t.keys[kg-t.groups.Start], k)
	t.last = nil
}

// list puts e in the dirty list of its key group.
func (t *memMapTable[K, UK, V]) list(kg int, k K, e *memMapKey[UK, V]) {
	if e.listed {
		return
	}
	i := kg - t.groups.Start
	d := t.dirty[i]
	if d == nil {
		d = make(map[K]*memMapKey[UK, V], t.hint[i])
		t.dirty[i] = d
	}
	d[k] = e
	e.listed = true
}

// markWhole records that k was replaced or removed as a whole.
func (t *memMapTable[K, UK, V]) markWhole(kg int, k K, e *memMapKey[UK, V]) {
	e.whole = true
	t.release(e)
	t.list(kg, k, e)
}

// Get returns the map of k. It is owned by the table: read it, do not
// modify it (Put a new map, or use the entry methods of Map).
func (t *memMapTable[K, UK, V]) Get(kg int, k K) (map[UK]V, bool) {
	e := t.lookup(kg, k)
	if e == nil {
		return nil, false
	}
	return e.m, true
}

// Put replaces the map of k by v, which the table keeps. An empty v
// removes k: the table holds no empty maps.
func (t *memMapTable[K, UK, V]) Put(kg int, k K, v map[UK]V) {
	if len(v) == 0 {
		t.Delete(kg, k)
		return
	}
	e := t.entry(kg, k)
	if sameMap(v, e.m) {
		// The caller changed the stored map in place: its old size is
		// unknown, so count the table again.
		e.m = v
		t.recount()
	} else {
		t.n += len(v) - len(e.m)
		e.m = v
	}
	if t.track {
		t.markWhole(kg, k, e)
	}
}

func (t *memMapTable[K, UK, V]) Delete(kg int, k K) {
	e := t.lookup(kg, k)
	if e == nil {
		return
	}
	t.n -= len(e.m)
	e.m = nil
	t.remove(kg, k)
	if t.track {
		t.markWhole(kg, k, e)
	}
}

func (t *memMapTable[K, UK, V]) Range(kg int, fn func(K, map[UK]V) bool) {
	for k, e := range t.keys[kg-t.groups.Start] {
		if !fn(k, e.m) {
			return
		}
	}
}

// getEntry returns the value of user key uk of key k.
func (t *memMapTable[K, UK, V]) getEntry(kg int, k K, uk UK) (V, bool) {
	if e := t.lookup(kg, k); e != nil {
		v, ok := e.m[uk]
		return v, ok
	}
	var zero V
	return zero, false
}

// putEntry sets the value of user key uk of key k.
func (t *memMapTable[K, UK, V]) putEntry(kg int, k K, uk UK, v V) {
	e := t.entry(kg, k)
	if e.m == nil {
		e.m = make(map[UK]V)
	}
	l := len(e.m)
	e.m[uk] = v
	t.n += len(e.m) - l
	if t.track {
		t.markEntry(kg, k, e, uk)
	}
}

// deleteEntry removes user key uk of key k; k goes when its map is empty.
func (t *memMapTable[K, UK, V]) deleteEntry(kg int, k K, uk UK) {
	e := t.lookup(kg, k)
	if e == nil {
		return
	}
	l := len(e.m)
	delete(e.m, uk)
	if len(e.m) == l {
		return
	}
	t.n--
	if len(e.m) == 0 {
		t.remove(kg, k)
	}
	if t.track {
		t.markEntry(kg, k, e, uk)
	}
}

// markEntry records that entry uk of key k (entry e) changed.
func (t *memMapTable[K, UK, V]) markEntry(kg int, k K, e *memMapKey[UK, V], uk UK) {
	if !e.whole && !e.fresh {
		switch {
		case e.dirty != nil:
			e.dirty[uk] = struct{}{}
			if mostlyChanged(len(e.dirty), len(e.m)) {
				t.markWhole(kg, k, e)
				return
			}
		case slices.Contains(e.few, uk):
		case len(e.few) < fewDirty:
			if e.few == nil {
				if n := len(t.freeFew); n > 0 {
					e.few = t.freeFew[n-1]
					t.freeFew[n-1] = nil
					t.freeFew = t.freeFew[:n-1]
				} else {
					e.few = make([]UK, 0, fewDirty)
				}
			}
			e.few = append(e.few, uk)
		case mostlyChanged(fewDirty+1, len(e.m)):
			// The few list is full, and the map is hardly larger (a
			// new key, typically).
			t.markWhole(kg, k, e)
			return
		default:
			e.dirty = make(map[UK]struct{}, max(e.hint, 2*fewDirty))
			for _, u := range e.few {
				e.dirty[u] = struct{}{}
			}
			e.dirty[uk] = struct{}{}
			t.releaseFew(e)
		}
	}
	t.list(kg, k, e)
}

// mostlyChanged reports whether a key with changed entries changed of
// its n entries is better recorded whole: at least three quarters of
// them changed. The snapshot then writes at most a third more entries
// than changed, and in return the key's later writes of the interval
// are not tracked one by one (no set insertion per entry), and the
// snapshot walks the key's map instead of looking up every changed
// entry in it: new keys, and keys most of whose entries change between
// two snapshots (Nexmark's hot bidders), cost less to checkpoint.
func mostlyChanged(changed, n int) bool { return changed > fewDirty && 4*changed >= 3*n }

// lenKey returns the number of entries of key k.
func (t *memMapTable[K, UK, V]) lenKey(kg int, k K) int {
	if e := t.lookup(kg, k); e != nil {
		return len(e.m)
	}
	return 0
}

// allKey iterates the entries of key k.
func (t *memMapTable[K, UK, V]) allKey(kg int, k K) iter.Seq2[UK, V] {
	var m map[UK]V
	if e := t.lookup(kg, k); e != nil {
		m = e.m
	}
	return func(yield func(UK, V) bool) {
		for uk, v := range m {
			if !yield(uk, v) {
				return
			}
		}
	}
}

// codecs makes the codecs on first use.
func (t *memMapTable[K, UK, V]) codecs() error {
	if t.kc != nil || t.codecErr != nil {
		return t.codecErr
	}
	kc, err := codec.For[K]()
	if err != nil {
		t.codecErr = fmt.Errorf("state table %q key: %w", t.name, err)
		return t.codecErr
	}
	ukc, err := codec.For[UK]()
	if err != nil {
		t.codecErr = fmt.Errorf("state table %q map key: %w", t.name, err)
		return t.codecErr
	}
	vc, err := codec.For[V]()
	if err != nil {
		t.codecErr = fmt.Errorf("state table %q value: %w", t.name, err)
		return t.codecErr
	}
	mc, err := codec.For[map[UK]V]()
	if err != nil {
		t.codecErr = fmt.Errorf("state table %q value: %w", t.name, err)
		return t.codecErr
	}
	t.kc, t.ukc, t.vc, t.mc = kc, ukc, vc, mc
	return nil
}

// Snapshots (memsnap.go): the format of a memTable of map[UK]V, so that
// full snapshots did not change.

func (t *memMapTable[K, UK, V]) encodeKeyGroup(dst []byte, kg int) ([]byte, error) {
	if err := t.codecs(); err != nil {
		return nil, err
	}
	keys := t.keys[kg-t.groups.Start]
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	for k, e := range keys {
		dst = t.kc.Append(dst, k)
		dst = t.mc.Append(dst, e.m)
	}
	return dst, nil
}

func (t *memMapTable[K, UK, V]) decodeKeyGroup(kg int, src []byte) error {
	if err := t.codecs(); err != nil {
		return err
	}
	n, k := binary.Uvarint(src)
	if k <= 0 || n > uint64(len(src)) {
		return fmt.Errorf("state table %q: bad entry count", t.name)
	}
	src = src[k:]
	for range n {
		key, a, err := t.kc.Decode(src)
		if err != nil {
			return fmt.Errorf("state table %q: %w", t.name, err)
		}
		v, b, err := t.mc.Decode(src[a:])
		if err != nil {
			return fmt.Errorf("state table %q: %w", t.name, err)
		}
		src = src[a+b:]
		t.Put(kg, key, v)
	}
	return nil
}

// Change tracking (memdelta.go).

func (t *memMapTable[K, UK, V]) setTracking(on bool) {
	t.track = on
	if on && t.dirty == nil {
		t.dirty = make([]map[K]*memMapKey[UK, V], t.groups.Len())
		t.reset = make([]bool, t.groups.Len())
		t.hint = make([]int, t.groups.Len())
	}
}

// changed counts changed entries: a key changed as a whole counts its
// entries and one for the deletion.
func (t *memMapTable[K, UK, V]) changed() int {
	n := 0
	for i, d := range t.dirty {
		for _, e := range d {
			switch {
			case e.whole:
				n += 1 + len(e.m)
			case e.fresh:
				n += len(e.m)
			default:
				n += e.nDirty()
			}
		}
		if t.reset[i] {
			for _, e := range t.keys[i] {
				n += len(e.m)
			}
		}
	}
	return n
}

// clearChanges forgets the changes; the dirty sets and the key groups'
// lists are emptied and kept for the next interval (sets left over from
// the last one are dropped).
func (t *memMapTable[K, UK, V]) clearChanges() {
	clear(t.freeFew)
	t.freeFew = t.freeFew[:0]
	for i, d := range t.dirty {
		for _, e := range d {
			e.hint = e.nDirty()
			t.release(e)
			e.whole, e.fresh, e.listed = false, false, false
		}
		t.hint[i] = len(d)
		clear(d)
		t.reset[i] = false
	}
}

// release forgets e's changed user keys; its few list goes to the free
// list.
func (t *memMapTable[K, UK, V]) release(e *memMapKey[UK, V]) {
	t.releaseFew(e)
	e.dirty = nil
}

// releaseFew moves e's few list, emptied, to the free list.
func (t *memMapTable[K, UK, V]) releaseFew(e *memMapKey[UK, V]) {
	if e.few != nil {
		clear(e.few)
		t.freeFew = append(t.freeFew, e.few[:0])
		e.few = nil
	}
}

func (t *memMapTable[K, UK, V]) appendChanges(dst []byte, kg int, full bool) ([]byte, error) {
	i := kg - t.groups.Start
	keys := t.keys[i]
	reset := full || (t.reset != nil && t.reset[i])
	var dirty map[K]*memMapKey[UK, V]
	if !reset {
		if t.dirty != nil {
			dirty = t.dirty[i]
		}
		if len(dirty) == 0 {
			return dst, nil
		}
	} else if len(keys) == 0 && full {
		return dst, nil
	}
	if err := t.codecs(); err != nil {
		return nil, err
	}
	// Values are encoded through a slot, not boxed per entry
	// (memencode.go).
	t.ve = newPrefixedEncoder(t.vc)
	defer func() { t.ve.done(); t.ve = nil }()
	flags := byte(changeEntries)
	if reset {
		flags |= changeReset
	}
	dst = append(dst, flags)
	if reset {
		dst = binary.AppendUvarint(dst, uint64(len(keys)))
		for k, e := range keys {
			dst = t.appendGroup(dst, k, e.m)
		}
		return dst, nil
	}
	ops := 0
	for _, e := range dirty {
		switch {
		case e.whole:
			ops++ // the deletion
			if len(e.m) > 0 {
				ops++
			}
		case e.fresh:
			if len(e.m) > 0 {
				ops++
			}
		case e.nDirty() > 0:
			ops++
		}
	}
	dst = binary.AppendUvarint(dst, uint64(ops))
	for k, e := range dirty {
		if e.whole {
			dst = append(dst, opDelete)
			dst = appendPrefixed(dst, t.kc, k)
			if len(e.m) > 0 {
				dst = t.appendGroup(dst, k, e.m)
			}
		} else if e.fresh {
			if len(e.m) > 0 {
				dst = t.appendGroup(dst, k, e.m)
			}
		} else if e.nDirty() > 0 {
			dst = t.appendChangedGroup(dst, k, e)
		}
	}
	return dst, nil
}

// appendGroup appends the entries op of key k: every entry of m.
func (t *memMapTable[K, UK, V]) appendGroup(dst []byte, k K, m map[UK]V) []byte {
	dst, at := t.beginGroup(dst, k, len(m))
	for uk, v := range m {
		dst = append(dst, opPut)
		dst = appendPrefixed(dst, t.ukc, uk)
		dst = t.ve.append(dst, v)
	}
	return fixPrefix(dst, at)
}

// appendChangedGroup appends the entries op of key k (entry e): the
// entries changed since the last snapshot.
func (t *memMapTable[K, UK, V]) appendChangedGroup(dst []byte, k K, e *memMapKey[UK, V]) []byte {
	dst, at := t.beginGroup(dst, k, e.nDirty())
	for _, uk := range e.few {
		dst = t.appendEntryChange(dst, e.m, uk)
	}
	for uk := range e.dirty {
		dst = t.appendEntryChange(dst, e.m, uk)
	}
	return fixPrefix(dst, at)
}

// beginGroup appends the start of the entries op of key k with n
// entries and returns the offset of the group's length for fixPrefix.
// The group is length-prefixed: encoded in place after a one-byte
// length, moved if its length needs more.
func (t *memMapTable[K, UK, V]) beginGroup(dst []byte, k K, n int) ([]byte, int) {
	dst = append(dst, opEntries)
	dst = appendPrefixed(dst, t.kc, k)
	at := len(dst)
	dst = append(dst, 0)
	return binary.AppendUvarint(dst, uint64(n)), at
}

// appendEntryChange appends the put of user key uk's value in m, or its
// deletion when m has none.
func (t *memMapTable[K, UK, V]) appendEntryChange(dst []byte, m map[UK]V, uk UK) []byte {
	v, ok := m[uk]
	if !ok {
		dst = append(dst, opDelete)
		return appendPrefixed(dst, t.ukc, uk)
	}
	dst = append(dst, opPut)
	dst = appendPrefixed(dst, t.ukc, uk)
	return t.ve.append(dst, v)
}

// appendPrefixed appends v's encoding, length-prefixed as by
// codec.AppendBytes, without encoding it elsewhere first.
func appendPrefixed[T any](dst []byte, c codec.Codec[T], v T) []byte {
	at := len(dst)
	dst = append(dst, 0)
	return fixPrefix(c.Append(dst, v), at)
}

// fixPrefix writes at dst[at] the uvarint length of dst[at+1:], for
// which one byte was reserved, moving the bytes when it needs more.
func fixPrefix(dst []byte, at int) []byte {
	l := len(dst) - at - 1
	if l < 0x80 {
		dst[at] = byte(l)
		return dst
	}
	var pre [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(pre[:], uint64(l))
	dst = append(dst, pre[:n-1]...)
	copy(dst[at+n:], dst[at+1:at+1+l])
	copy(dst[at:], pre[:n])
	return dst
}

func (t *memMapTable[K, UK, V]) applyChanges(kg int, body []byte) error {
	if err := t.codecs(); err != nil {
		return err
	}
	i := kg - t.groups.Start
	t.last = nil
	// set stores m (nil or empty: removes) as the map of k.
	set := func(k K, m map[UK]V) {
		if e := t.keys[i][k]; e != nil {
			t.n -= len(e.m)
			if len(m) == 0 {
				delete(t.keys[i], k)
				return
			}
			e.m = m
			t.n += len(m)
			return
		}
		if len(m) == 0 {
			return
		}
		if t.keys[i] == nil {
			t.keys[i] = make(map[K]*memMapKey[UK, V])
		}
		t.keys[i][k] = &memMapKey[UK, V]{m: m}
		t.n += len(m)
	}
	reset := func() {
		for _, e := range t.keys[i] {
			t.n -= len(e.m)
		}
		t.keys[i] = nil
	}
	err := walkBody(body, true, reset, func(e changeEntry) error {
		k, n, err := t.kc.Decode(e.key)
		if err != nil || n != len(e.key) {
			return fmt.Errorf("key: %w", corruptOr(err))
		}
		switch e.op {
		case opDelete:
			set(k, nil)
		case opPut:
			m, n, err := t.mc.Decode(e.value)
			if err != nil || n != len(e.value) {
				return fmt.Errorf("value: %w", corruptOr(err))
			}
			set(k, m)
		case opEntries:
			ke := t.keys[i][k]
			if ke == nil {
				ke = &memMapKey[UK, V]{}
			}
			if ke.m == nil {
				ke.m = make(map[UK]V)
			}
			before := len(ke.m)
			err := walkGroup(e.value, func(d bool, ukb, vb []byte) error {
				uk, n, err := t.ukc.Decode(ukb)
				if err != nil || n != len(ukb) {
					return fmt.Errorf("map key: %w", corruptOr(err))
				}
				if d {
					delete(ke.m, uk)
					return nil
				}
				v, n, err := t.vc.Decode(vb)
				if err != nil || n != len(vb) {
					return fmt.Errorf("map value: %w", corruptOr(err))
				}
				ke.m[uk] = v
				return nil
			})
			t.n += len(ke.m) - before
			if err != nil {
				return err
			}
			switch {
			case len(ke.m) == 0:
				delete(t.keys[i], k)
			case t.keys[i] == nil:
				t.keys[i] = map[K]*memMapKey[UK, V]{k: ke}
			default:
				t.keys[i][k] = ke
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state table %q key group %d: %w", t.name, kg, err)
	}
	return nil
}

// sameMap reports whether a and b are the same map (not equal contents).
func sameMap[UK comparable, V any](a, b map[UK]V) bool {
	return a != nil && b != nil && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// recount sets the table's entry count from its maps (after a map was
// changed in place and Put back: rare, and linear in the keys).
func (t *memMapTable[K, UK, V]) recount() {
	t.n = 0
	for _, keys := range t.keys {
		for _, e := range keys {
			t.n += len(e.m)
		}
	}
}
