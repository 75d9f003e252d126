package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"unsafe"

	"github.com/sluicehq/sluice/state/codec"
)

// Incremental snapshots of the in-memory backend.
//
// With change tracking on (EnableChangeTracking), every table remembers
// the keys written (Put) or deleted (Delete) since the last ClearChanges,
// per key group, and whether a key group was cleared as a whole. Tables
// of whole values (memTable) find a key's first write of a snapshot
// interval by the generation stamped on its value (one map lookup before
// the write, none after a Get of the same key) and list it then;
// ClearChanges starts the next generation without visiting the values.
// A snapshot then encodes only those keys (AppendChanges): the cost at
// the barrier is proportional to what changed, not to the state. A chain of
// such increments on top of a full snapshot (AppendChanges with full set)
// restores, applied in order (ApplyChanges), the state at the last one;
// MergeChanges folds a chain into one full section without the codecs of
// the tables, so that a chain can be compacted off the task goroutine.
//
// The change section of one key group is, per table with changes (in
// name order):
//
//	name string | body bytes
//	body:  flags byte (1: reset, drop the key group's entries first)
//	       count uvarint
//	       entries: op byte (0 put, 1 delete) | key bytes | value bytes (put only)
//
// Keys and values are length-prefixed (codec.AppendBytes) encodings of the
// tables' codecs, so a merge can match keys by their bytes: the codecs'
// encodings are deterministic, one encoding per key.

// ErrCorruptSnapshot marks snapshot bytes that do not decode.
var ErrCorruptSnapshot = errors.New("state: corrupt snapshot")

// splitBytes returns the length-prefixed bytes at the start of src (not
// copied) and the length of their encoding.
func splitBytes(src []byte) ([]byte, int, error) {
	l, n := binary.Uvarint(src)
	if n <= 0 || l > uint64(len(src)-n) {
		return nil, 0, fmt.Errorf("%w: length-prefixed bytes", ErrCorruptSnapshot)
	}
	return src[n : n+int(l)], n + int(l), nil
}

const (
	// Flags of a change body.
	changeReset = 1 // drop the key group's entries first
	// changeEntries: the body may hold entry groups (op 2) of map state
	// (memmap.go). Bodies without it are those of tables of whole values
	// (and every body written before map state tracked entries).
	changeEntries = 2

	opPut     = 0
	opDelete  = 1
	opEntries = 2 // key | group of entry puts and deletions (memmap.go)
)

// changeTable is implemented by the in-memory tables.
type changeTable interface {
	setTracking(on bool)
	changed() int
	clearChanges()
	appendChanges(dst []byte, kg int, full bool) ([]byte, error)
	applyChanges(kg int, body []byte) error
}

// EnableChangeTracking makes every table, open or opened later, track the
// keys changed since the last ClearChanges, for incremental snapshots
// (AppendChanges). A table of whole values stamps every value with the
// generation (snapshot interval) of its last write and lists a key at its
// first write of a generation: a write costs a comparison, and an append
// once per interval; map state tracks its entries (memmap.go).
func (m *Memory) EnableChangeTracking() {
	m.track = true
	for _, t := range m.tables {
		if ct, ok := t.(changeTable); ok {
			ct.setTracking(true)
		}
	}
}

// Changed returns the number of keys changed (written or deleted) since
// the last ClearChanges, over every table; a key changed in two tables
// counts twice.
func (m *Memory) Changed() int {
	n := 0
	for _, t := range m.tables {
		if ct, ok := t.(changeTable); ok {
			n += ct.changed()
		}
	}
	return n
}

// Len returns the number of keys stored over every table.
func (m *Memory) Len() int {
	n := 0
	for _, t := range m.tables {
		n += t.Len()
	}
	return n
}

// ClearChanges forgets the changes tracked so far: the next AppendChanges
// encodes only what changes after this call.
func (m *Memory) ClearChanges() {
	for _, t := range m.tables {
		if ct, ok := t.(changeTable); ok {
			ct.clearChanges()
		}
	}
}

// AppendChanges appends to dst the change section of key group kg: with
// full, every entry of every table (a section that restores the key group
// on its own); otherwise only the keys changed since the last
// ClearChanges. It appends nothing when there is nothing to record.
func (m *Memory) AppendChanges(dst []byte, kg int, full bool) ([]byte, error) {
	names := make([]string, 0, len(m.tables))
	for name := range m.tables {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		ct, ok := m.tables[name].(changeTable)
		if !ok {
			return nil, fmt.Errorf("state table %q cannot be snapshotted", name)
		}
		// The body is encoded in place behind its name (memencode.go).
		mark := len(dst)
		dst = codec.AppendString(dst, name)
		var n int
		var err error
		dst, n, err = appendLenPrefixed(dst, func(d []byte) ([]byte, error) { return ct.appendChanges(d, kg, full) })
		if err != nil {
			return nil, err
		}
		if n == 0 {
			dst = dst[:mark]
		}
	}
	return dst, nil
}

// ApplyChanges applies a change section of key group kg (made by
// AppendChanges or MergeChanges). Sections of one key group must be
// applied in the order they were made, starting with a full one. Tables
// not open yet get their changes when they are opened.
func (m *Memory) ApplyChanges(kg int, src []byte) error {
	if !m.groups.Contains(kg) {
		return fmt.Errorf("state: key group %d outside %s", kg, m.groups)
	}
	return walkChanges(src, func(name string, body []byte) error {
		if t, ok := m.tables[name]; ok {
			ct, ok := t.(changeTable)
			if !ok {
				return fmt.Errorf("state table %q cannot be restored", name)
			}
			return ct.applyChanges(kg, body)
		}
		if m.stash == nil {
			m.stash = make(map[string][]stashed)
		}
		m.stash[name] = append(m.stash[name], stashed{kg: kg, data: body, changes: true})
		return nil
	})
}

// walkChanges calls fn with every table's body of a change section.
func walkChanges(src []byte, fn func(name string, body []byte) error) error {
	for len(src) > 0 {
		name, a, err := codec.DecodeString(src)
		if err != nil {
			return fmt.Errorf("%w: table name: %w", ErrCorruptSnapshot, err)
		}
		body, b, err := splitBytes(src[a:])
		if err != nil {
			return fmt.Errorf("state changes of table %q: %w", name, err)
		}
		src = src[a+b:]
		if err := fn(name, body); err != nil {
			return err
		}
	}
	return nil
}

// changeEntry is one decoded entry of a change body: a put (key, value),
// a deletion (key) or, for map state, an entry group (key, value: the
// group, see walkGroup).
type changeEntry struct {
	op         byte
	key, value []byte
}

// walkBody decodes a change body: its reset flag, then every entry.
// Entry groups are accepted when entries is set (map state) and the body
// says it may hold them; anything else is corruption.
func walkBody(body []byte, entries bool, reset func(), fn func(e changeEntry) error) error {
	if len(body) < 1 {
		return fmt.Errorf("%w: empty change body", ErrCorruptSnapshot)
	}
	flags := body[0]
	if flags&^(changeReset|changeEntries) != 0 {
		return fmt.Errorf("%w: change flags %#x", ErrCorruptSnapshot, flags)
	}
	maxOp := byte(opDelete)
	if entries && flags&changeEntries != 0 {
		maxOp = opEntries
	}
	if flags&changeReset != 0 {
		reset()
	}
	n, k := binary.Uvarint(body[1:])
	if k <= 0 || n > uint64(len(body)) {
		return fmt.Errorf("%w: change count", ErrCorruptSnapshot)
	}
	src := body[1+k:]
	for range n {
		if len(src) < 1 || src[0] > maxOp {
			return fmt.Errorf("%w: change op", ErrCorruptSnapshot)
		}
		e := changeEntry{op: src[0]}
		key, a, err := splitBytes(src[1:])
		if err != nil {
			return fmt.Errorf("change key: %w", err)
		}
		e.key = key
		src = src[1+a:]
		if e.op != opDelete {
			v, b, err := splitBytes(src)
			if err != nil {
				return fmt.Errorf("change value: %w", err)
			}
			e.value = v
			src = src[b:]
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if len(src) != 0 {
		return fmt.Errorf("%w: %d bytes after the changes", ErrCorruptSnapshot, len(src))
	}
	return nil
}

// walkGroup decodes the entry group of a map key (memmap.go): fn gets
// every entry's user key and, for a put, value (aliasing g).
func walkGroup(g []byte, fn func(del bool, uk, v []byte) error) error {
	n, k := binary.Uvarint(g)
	if k <= 0 || n > uint64(len(g)) {
		return fmt.Errorf("%w: entry group count", ErrCorruptSnapshot)
	}
	src := g[k:]
	for range n {
		if len(src) < 1 || src[0] > opDelete {
			return fmt.Errorf("%w: entry op", ErrCorruptSnapshot)
		}
		del := src[0] == opDelete
		uk, a, err := splitBytes(src[1:])
		if err != nil {
			return fmt.Errorf("entry key: %w", err)
		}
		src = src[1+a:]
		var v []byte
		if !del {
			var b int
			if v, b, err = splitBytes(src); err != nil {
				return fmt.Errorf("entry value: %w", err)
			}
			src = src[b:]
		}
		if err := fn(del, uk, v); err != nil {
			return err
		}
	}
	if len(src) != 0 {
		return fmt.Errorf("%w: %d bytes after the entries", ErrCorruptSnapshot, len(src))
	}
	return nil
}

// MergeChanges folds change sections of one key group, oldest first (the
// first normally full), into one full section equivalent to applying them
// in order, and appends it to dst. It needs no codec: keys (and the user
// keys of map entries) are matched by their encoded bytes. Deleted keys
// and entries disappear from the result; a map key left without entries
// disappears too.
func MergeChanges(dst []byte, sections ...[]byte) ([]byte, error) {
	if out, ok := mergeChangesFast(dst, sections); ok && mergeFast { // memmerge.go
		return out, nil
	}
	type table struct {
		whole map[string][]byte     // key -> value
		maps  map[string]*mergedMap // map state
	}
	tables := map[string]*table{}
	for _, s := range sections {
		err := walkChanges(s, func(name string, body []byte) error {
			t := tables[name]
			if t == nil {
				t = &table{whole: map[string][]byte{}}
				tables[name] = t
			}
			reset := func() {
				clear(t.whole)
				t.maps = nil
			}
			return walkBody(body, true, reset, func(e changeEntry) error {
				k := aliasString(e.key)
				switch e.op {
				case opDelete:
					delete(t.whole, k)
					delete(t.maps, k)
				case opPut:
					delete(t.maps, k)
					t.whole[k] = e.value
				case opEntries:
					if _, ok := t.whole[k]; ok {
						return fmt.Errorf("%w: table %q: entry changes of a key stored whole", ErrCorruptSnapshot, name)
					}
					if t.maps == nil {
						t.maps = map[string]*mergedMap{}
					}
					m := t.maps[k]
					if m == nil {
						m = &mergedMap{}
						t.maps[k] = m
					}
					if err := m.add(e.value); err != nil {
						return fmt.Errorf("table %q: %w", name, err)
					}
				}
				return nil
			})
		})
		if err != nil {
			return nil, err
		}
	}
	names := make([]string, 0, len(tables))
	for name, t := range tables {
		if len(t.whole)+len(t.maps) > 0 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var group []byte
	for _, name := range names {
		t := tables[name]
		size := 16
		for k, v := range t.whole {
			size += len(k) + len(v) + 11
		}
		for k, m := range t.maps {
			size += len(k) + len(m.base) + 16
			for uk, c := range m.over {
				size += len(uk) + len(c.v) + 11
			}
		}
		// The body is written in place behind the table's name and a
		// reserved length prefix (no body buffer per call, copied after).
		mark := len(dst)
		dst = codec.AppendString(dst, name)
		dst = slices.Grow(dst, size+8)
		ops := 0
		dst, _, _ = appendLenPrefixed(dst, func(body []byte) ([]byte, error) {
			flags := byte(changeReset)
			if len(t.maps) > 0 {
				flags |= changeEntries
			}
			body = append(body, flags)
			at := len(body)
			body = binary.AppendUvarint(body, uint64(len(t.whole)+len(t.maps)))
			for k, v := range t.whole {
				body = append(body, opPut)
				body = codec.AppendString(body, k)
				body = codec.AppendBytes(body, v)
				ops++
			}
			for k, m := range t.maps {
				if m.over == nil && !m.baseDel && m.baseN > 0 {
					// Nothing over the first group, which holds only
					// puts: it is the key's group as it is.
					body = append(body, opEntries)
					body = codec.AppendString(body, k)
					body = codec.AppendBytes(body, m.base)
					ops++
					continue
				}
				var n int
				group, n = m.appendEntries(group[:0])
				if n == 0 {
					continue // every entry deleted
				}
				body = append(body, opEntries)
				body = codec.AppendString(body, k)
				gat := len(body)
				body = append(body, 0)
				body = binary.AppendUvarint(body, uint64(n))
				body = fixPrefix(append(body, group...), gat)
				ops++
			}
			if ops != len(t.whole)+len(t.maps) {
				// Fewer ops than announced: rewrite the count.
				rest := slices.Clone(body[at:])
				_, c := binary.Uvarint(rest)
				body = append(binary.AppendUvarint(body[:at], uint64(ops)), rest[c:]...)
			}
			return body, nil
		})
		if ops == 0 {
			dst = dst[:mark]
		}
	}
	return dst, nil
}

// aliasString returns b as a string without a copy: merge keys alias the
// sections, which outlive the merge and are not changed during it.
func aliasString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// mergedMap is a map key of MergeChanges: the first group of the key
// (normally a base's, most of its entries) kept as bytes, and the entries
// of later groups over it. The base's entries are thus copied, not
// hashed: only the changes since are.
type mergedMap struct {
	base []byte // a group; its deletions are of absent entries
	// baseN counts the base's entries; baseDel: some are deletions.
	baseN   int
	baseDel bool
	over    map[string]mergedEntry
}

type mergedEntry struct {
	v   []byte
	del bool
}

// add folds a group into the key.
func (m *mergedMap) add(g []byte) error {
	if m.base == nil {
		m.base = g
		return walkGroup(g, func(del bool, _, _ []byte) error {
			m.baseN++
			m.baseDel = m.baseDel || del
			return nil
		})
	}
	if m.over == nil {
		m.over = map[string]mergedEntry{}
	}
	return walkGroup(g, func(del bool, uk, v []byte) error {
		m.over[aliasString(uk)] = mergedEntry{v: v, del: del}
		return nil
	})
}

// appendEntries appends the key's entries (puts of a group, without its
// count) and returns their number.
func (m *mergedMap) appendEntries(dst []byte) ([]byte, int) {
	n := 0
	// The base was checked when added.
	_ = walkGroup(m.base, func(del bool, uk, v []byte) error {
		if del {
			return nil
		}
		if _, ok := m.over[aliasString(uk)]; ok {
			return nil
		}
		dst = append(dst, opPut)
		dst = codec.AppendBytes(dst, uk)
		dst = codec.AppendBytes(dst, v)
		n++
		return nil
	})
	for uk, c := range m.over {
		if c.del {
			continue
		}
		dst = append(dst, opPut)
		dst = codec.AppendString(dst, uk)
		dst = codec.AppendBytes(dst, c.v)
		n++
	}
	return dst, n
}

func (t *memTable[K, V]) setTracking(on bool) {
	t.track = on
	if on && t.dirty == nil {
		t.dirty = make([][]K, t.groups.Len())
		t.gone = make([]map[K]struct{}, t.groups.Len())
		t.reset = make([]bool, t.groups.Len())
		t.gen = 1
		t.lastOK = false
	}
}

// noteWrite lists key k (key group kg, index i; its map m) unless it was
// listed in the current generation already: its slot is of this
// generation, or it was deleted after being listed (gone). Its slot is
// known without a lookup when the last Get was of k.
func (t *memTable[K, V]) noteWrite(i, kg int, k K, m map[K]memSlot[V]) {
	has, g := t.lastHas, t.lastGen
	if !t.lastOK || t.lastKG != kg || t.lastK != k {
		var s memSlot[V]
		s, has = m[k]
		g = s.gen
	}
	// After the write, the slot is k's, of this generation.
	t.lastOK, t.lastHas, t.lastKG, t.lastK, t.lastGen = true, true, kg, k, t.gen
	if has && g == t.gen {
		return
	}
	if !has && len(t.gone[i]) > 0 {
		if _, ok := t.gone[i][k]; ok {
			return
		}
	}
	t.dirty[i] = append(t.dirty[i], k)
}

// noteDelete records the deletion of key k (key group index i) whose
// slot was of generation g.
func (t *memTable[K, V]) noteDelete(i int, k K, g uint32) {
	if g != t.gen {
		t.dirty[i] = append(t.dirty[i], k)
	}
	if t.gone[i] == nil {
		t.gone[i] = make(map[K]struct{})
	}
	t.gone[i][k] = struct{}{}
}

func (t *memTable[K, V]) changed() int {
	n := 0
	for i, d := range t.dirty {
		n += len(d)
		if t.reset[i] {
			n += len(t.maps[i])
		}
	}
	return n
}

// clearChanges starts a new generation: every slot is older than it.
// The lists keep their storage (the next interval changes about as many
// keys), without the keys they referenced.
func (t *memTable[K, V]) clearChanges() {
	for i := range t.dirty {
		clear(t.dirty[i])
		t.dirty[i] = t.dirty[i][:0]
		t.gone[i] = nil
		t.reset[i] = false
	}
	if t.gen++; t.gen == 0 {
		// Wrapped (after 2^32 snapshots): every slot becomes older than
		// generation 1.
		for _, m := range t.maps {
			for k, s := range m {
				m[k] = memSlot[V]{v: s.v}
			}
		}
		t.gen = 1
		t.lastOK = false
	}
}

func (t *memTable[K, V]) appendChanges(dst []byte, kg int, full bool) ([]byte, error) {
	i := kg - t.groups.Start
	m := t.maps[i]
	reset := full || (t.reset != nil && t.reset[i])
	var dirty []K
	if !reset {
		if t.dirty != nil {
			dirty = t.dirty[i]
		}
		if len(dirty) == 0 {
			return dst, nil
		}
	} else if len(m) == 0 && full {
		return dst, nil
	}
	kc, err := codec.For[K]()
	if err != nil {
		return nil, fmt.Errorf("state table %q key: %w", t.name, err)
	}
	vc, err := codec.For[V]()
	if err != nil {
		return nil, fmt.Errorf("state table %q value: %w", t.name, err)
	}
	var flags byte
	if reset {
		flags = changeReset
	}
	dst = append(dst, flags)
	ke, ve := newPrefixedEncoder(kc), newPrefixedEncoder(vc) // memencode.go
	defer ke.done()
	defer ve.done()
	appendKV := func(dst []byte, k K, v V, del bool) []byte {
		if del {
			dst = append(dst, opDelete)
		} else {
			dst = append(dst, opPut)
		}
		dst = ke.append(dst, k)
		if !del {
			dst = ve.append(dst, v)
		}
		return dst
	}
	if reset {
		dst = t.growFor(dst, len(m))
		start := len(dst)
		dst = binary.AppendUvarint(dst, uint64(len(m)))
		for k, s := range m {
			dst = appendKV(dst, k, s.v, false)
		}
		t.sized(len(dst)-start, len(m))
		return dst, nil
	}
	dst = t.growFor(dst, len(dirty))
	start := len(dst)
	dst = binary.AppendUvarint(dst, uint64(len(dirty)))
	for _, k := range dirty {
		s, ok := m[k]
		dst = appendKV(dst, k, s.v, !ok)
	}
	t.sized(len(dst)-start, len(dirty))
	return dst, nil
}

func (t *memTable[K, V]) applyChanges(kg int, body []byte) error {
	kc, err := codec.For[K]()
	if err != nil {
		return fmt.Errorf("state table %q key: %w", t.name, err)
	}
	vc, err := codec.For[V]()
	if err != nil {
		return fmt.Errorf("state table %q value: %w", t.name, err)
	}
	i := kg - t.groups.Start
	t.lastOK = false
	err = walkBody(body, false, func() { t.maps[i] = nil }, func(e changeEntry) error {
		k, n, err := kc.Decode(e.key)
		if err != nil || n != len(e.key) {
			return fmt.Errorf("key: %w", corruptOr(err))
		}
		if e.op == opDelete {
			delete(t.maps[i], k)
			return nil
		}
		v, n, err := vc.Decode(e.value)
		if err != nil || n != len(e.value) {
			return fmt.Errorf("value: %w", corruptOr(err))
		}
		m := t.maps[i]
		if m == nil {
			m = make(map[K]memSlot[V])
			t.maps[i] = m
		}
		m[k] = memSlot[V]{v: v} // generation 0: not a change since
		return nil
	})
	if err != nil {
		return fmt.Errorf("state table %q key group %d: %w", t.name, kg, err)
	}
	return nil
}

func corruptOr(err error) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: trailing bytes", ErrCorruptSnapshot)
}

// WalkChanges calls fn with the name and the change body of every table
// of a change section, for operators that keep more than tables (timers)
// in the same format.
func WalkChanges(src []byte, fn func(name string, body []byte) error) error {
	return walkChanges(src, fn)
}

// WalkChangeBody decodes a change body: reset is called first when the
// body resets the key group, then fn for every entry (value is nil for a
// deletion). key and value alias body.
func WalkChangeBody(body []byte, reset func(), fn func(del bool, key, value []byte) error) error {
	return walkBody(body, false, reset, func(e changeEntry) error { return fn(e.op == opDelete, e.key, e.value) })
}

// AppendChangeBody appends a change body of entries: puts (with their
// value) and deletions, reset first when reset is set.
func AppendChangeBody(dst []byte, reset bool, puts, puttedValues, dels [][]byte) []byte {
	var flags byte
	if reset {
		flags = changeReset
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(len(puts)+len(dels)))
	for i, k := range puts {
		dst = append(dst, opPut)
		dst = codec.AppendBytes(dst, k)
		dst = codec.AppendBytes(dst, puttedValues[i])
	}
	for _, k := range dels {
		dst = append(dst, opDelete)
		dst = codec.AppendBytes(dst, k)
	}
	return dst
}
