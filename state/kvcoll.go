package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"iter"

	"github.com/sluicehq/sluice/state/codec"
)

// Map and list state on a KVStore are stored one entry per store key, so
// that an update writes one entry instead of re-encoding the whole map or
// list of the key:
//
//	map entry:  KVPrefix(kg, name) ++ key ++ user key   -> value
//	list entry: KVPrefix(kg, name) ++ key ++ seq (8 bytes, big-endian) -> value
//
// The key group comes first, so checkpoints and rescaling cut key groups
// as ranges as for value state. The codecs' encodings are self-delimiting
// (length-prefixed or varint), hence prefix-free: the entries of one key
// are exactly the store keys that start with KVPrefix(kg, name) ++ key,
// and Clear is one range delete.
//
// List sequence numbers come from a counter per table. So that a restored
// or rescaled table never reuses a number below an existing entry, every
// Add also writes the counter's high-water mark in the key group (under
// the table name with the suffix "\x00#"), and the first Add of a key
// group after the table is opened reads it back once.
//
// In memory (NewMemory) maps and lists stay one Go map or slice per key.

// mapDescriptor is the TableDescriptor of map state: a TypedTable[K,
// map[UK]V] in memory, one store key per entry on a KVStore.
type mapDescriptor[K, UK comparable, V any] struct{ name string }

func (d mapDescriptor[K, UK, V]) Name() string { return d.name }

func (d mapDescriptor[K, UK, V]) NewMemoryTable(r KeyGroupRange) Table {
	return descriptor[K, map[UK]V]{name: d.name}.NewMemoryTable(r)
}

func (d mapDescriptor[K, UK, V]) NewKVTable(kv KVStore, r KeyGroupRange) (Table, error) {
	base, err := newKVBase[K, V](kv, d.name, r, 255)
	if err != nil {
		return nil, err
	}
	ukc, err := codec.For[UK]()
	if err != nil {
		return nil, fmt.Errorf("state table %q map key: %w", d.name, err)
	}
	base.filters = newKeyFilters(kv)
	t := &kvMapTable[K, UK, V]{kvBase: base, ukc: ukc}
	if base.filters != nil {
		if t.dir, err = newKeyDir(kv, t.scanKeys); err != nil {
			return nil, fmt.Errorf("state table %q: %w", d.name, err)
		}
	}
	return t, nil
}

// listDescriptor is the TableDescriptor of list state: a TypedTable[K,
// []V] in memory, one store key per element on a KVStore.
type listDescriptor[K comparable, V any] struct{ name string }

func (d listDescriptor[K, V]) Name() string { return d.name }

func (d listDescriptor[K, V]) NewMemoryTable(r KeyGroupRange) Table {
	return descriptor[K, []V]{name: d.name}.NewMemoryTable(r)
}

func (d listDescriptor[K, V]) NewKVTable(kv KVStore, r KeyGroupRange) (Table, error) {
	base, err := newKVBase[K, V](kv, d.name, r, 253)
	if err != nil {
		return nil, err
	}
	return &kvListTable[K, V]{kvBase: base, loaded: make([]bool, r.Len()), seqName: d.name + "\x00#"}, nil
}

// kvBase is what the map and list tables share: the store, the codecs of
// the key and the value, and the table-level operations.
type kvBase[K comparable, V any] struct {
	name   string
	groups KeyGroupRange
	kv     KVStore
	kc     codec.Codec[K]
	vc     codec.Codec[V]
	kbuf   []byte
	vbuf   []byte
	cache  kvCache // map entries only (kvcache.go); lists are scanned
	// filters are the membership filters of the keys of a map table
	// (kvfilter.go); nil for lists and without a cache budget.
	filters *keyFilters
}

func newKVBase[K comparable, V any](kv KVStore, name string, r KeyGroupRange, maxName int) (kvBase[K, V], error) {
	if len(name) > maxName {
		return kvBase[K, V]{}, fmt.Errorf("state table %q: name longer than %d bytes", name, maxName)
	}
	if r.End > 1<<16 {
		return kvBase[K, V]{}, fmt.Errorf("state table %q: more than 65536 key groups", name)
	}
	kc, err := codec.For[K]()
	if err != nil {
		return kvBase[K, V]{}, fmt.Errorf("state table %q key: %w", name, err)
	}
	vc, err := codec.For[V]()
	if err != nil {
		return kvBase[K, V]{}, fmt.Errorf("state table %q value: %w", name, err)
	}
	return kvBase[K, V]{name: name, groups: r, kv: kv, kc: kc, vc: vc, cache: newKVCache(kv, name)}, nil
}

func (t *kvBase[K, V]) check(op string, err error) {
	if err != nil {
		panic(&KVError{Table: t.name, Op: op, Err: err})
	}
}

func (t *kvBase[K, V]) Name() string             { return t.name }
func (t *kvBase[K, V]) KeyGroups() KeyGroupRange { return t.groups }

// Len counts the entries (map entries or list elements, not keys) with a
// scan of the table: it costs a pass over the data.
func (t *kvBase[K, V]) Len() int {
	n := 0
	for kg := t.groups.Start; kg < t.groups.End; kg++ {
		p := KVPrefix(nil, kg, t.name)
		t.check("len", t.kv.Scan(p, prefixEnd(p), func(_, _ []byte) bool { n++; return true }))
	}
	return n
}

// ClearKeyGroup deletes the entries of key group kg with one range delete.
func (t *kvBase[K, V]) ClearKeyGroup(kg int) {
	p := KVPrefix(nil, kg, t.name)
	t.check("clear", t.kv.DeleteRange(p, prefixEnd(p)))
	t.cache.clear()
	if t.filters != nil {
		t.filters.clear()
	}
}

// keyPrefix returns, in t.kbuf, the prefix of the entries of key k.
func (t *kvBase[K, V]) keyPrefix(kg int, k K) []byte {
	t.kbuf = KVPrefix(t.kbuf[:0], kg, t.name)
	t.kbuf = t.kc.Append(t.kbuf, k)
	return t.kbuf
}

// clearKey deletes every entry of key k.
func (t *kvBase[K, V]) clearKey(kg int, k K) {
	p := t.keyPrefix(kg, k)
	t.check("clear", t.kv.DeleteRange(p, prefixEnd(p)))
	t.cache.clear()
	if t.filters != nil {
		t.filters.reset(p, &t.cache)
	}
}

// countKey counts the entries of key k with a prefix scan.
func (t *kvBase[K, V]) countKey(kg int, k K) int {
	p := append([]byte(nil), t.keyPrefix(kg, k)...)
	n := 0
	t.check("len", t.kv.Scan(p, prefixEnd(p), func(_, _ []byte) bool { n++; return true }))
	return n
}

// kvMapTable is map state over a KVStore, one store key per entry.
type kvMapTable[K, UK comparable, V any] struct {
	kvBase[K, V]
	ukc codec.Codec[UK]
	// dir is the directory of the keys that have entries (kvfilter.go);
	// nil: none.
	dir *keyDir
}

// scanKeys calls add for the prefix of every key that has entries in the
// store, until add returns false.
func (t *kvMapTable[K, UK, V]) scanKeys(add func([]byte) bool) error {
	var last []byte
	for kg := t.groups.Start; kg < t.groups.End; kg++ {
		p := KVPrefix(nil, kg, t.name)
		var derr error
		stop := false
		err := t.kv.Scan(p, prefixEnd(p), func(key, _ []byte) bool {
			if last != nil && bytes.HasPrefix(key, last) {
				return true // another entry of the same key
			}
			_, n, err := t.kc.Decode(key[len(p):])
			if err != nil {
				derr = err
				return false
			}
			last = append(last[:0], key[:len(p)+n]...)
			stop = !add(last)
			return !stop
		})
		if err != nil {
			return err
		}
		if derr != nil {
			return fmt.Errorf("decode key: %w", derr)
		}
		if stop {
			return nil
		}
	}
	return nil
}

// entryKey returns, in t.kbuf, the store key of entry uk of key k and
// the length of its key prefix.
func (t *kvMapTable[K, UK, V]) entryKey(kg int, k K, uk UK) ([]byte, int) {
	p := t.keyPrefix(kg, k)
	plen := len(p)
	t.kbuf = t.ukc.Append(p, uk)
	return t.kbuf, plen
}

func (t *kvMapTable[K, UK, V]) get(kg int, k K, uk UK) (V, bool) {
	key, plen := t.entryKey(kg, k, uk)
	val, ok := t.cache.get(key)
	if !ok {
		if t.absent(key, plen) {
			var zero V
			return zero, false
		}
		var err error
		val, ok, err = t.kv.Get(key, t.vbuf[:0])
		t.check("get", err)
		if !ok {
			var zero V
			return zero, false
		}
		t.vbuf = val
		t.cache.put(key, val)
	}
	v, _, err := t.vc.Decode(val)
	t.check("decode", err)
	return v, true
}

func (t *kvMapTable[K, UK, V]) put(kg int, k K, uk UK, v V) {
	key, plen := t.entryKey(kg, k, uk)
	t.vbuf = t.vc.Append(t.vbuf[:0], v)
	t.check("put", t.kv.Set(key, t.vbuf))
	t.cache.put(key, t.vbuf)
	t.dir.add(key[:plen])
	if fs := t.filters; fs != nil {
		if f := fs.get(key[:plen]); f != nil && !f.tooBig {
			f.add(filterHash(fs.seed, key[plen:]))
			if f.last > f.capacity() {
				fs.grow(key[:plen], f, &t.cache)
			}
		}
	}
}

// absent reports whether the key's membership filter rules out the entry
// key (whose key prefix is key[:plen]), building the filter with a prefix
// scan if the key has none (kvfilter.go).
func (t *kvMapTable[K, UK, V]) absent(key []byte, plen int) bool {
	fs := t.filters
	if fs == nil {
		return false
	}
	p := key[:plen]
	f := fs.get(p)
	if f == nil {
		if !t.dir.mayHave(p) {
			// A key without entries: its filter is empty, no scan.
			fs.reset(p, &t.cache)
			fs.saved++
			return true
		}
		if !fs.mayLoad() {
			return false
		}
		f = t.loadFilter(p)
	}
	if f.tooBig || f.mayContain(filterHash(fs.seed, key[plen:])) {
		return false
	}
	fs.saved++
	return true
}

// loadFilter builds the filter of key prefix p from a scan of its
// entries. A key with more entries than a filter within a quarter of the
// budget can describe is marked as not filtered, and the scan stops there.
func (t *kvMapTable[K, UK, V]) loadFilter(p []byte) *memberFilter {
	fs := t.filters
	most := int(fs.budget.limit / 16) // 2*most+16 members fill limit/4 at 16 bits each
	hs := fs.hbuf[:0]
	over := false
	err := t.kv.Scan(p, prefixEnd(p), func(key, _ []byte) bool {
		if len(hs) >= most {
			over = true
			return false
		}
		hs = append(hs, filterHash(fs.seed, key[len(p):]))
		return true
	})
	t.check("filter scan", err)
	if cap(hs) <= 1<<16 {
		fs.hbuf = hs[:0]
	} else {
		fs.hbuf = nil // a large key's hashes are not worth keeping
	}
	if over {
		fs.scanned += int64(len(hs))
		f := &memberFilter{tooBig: true, n: len(hs)}
		fs.put(p, f, &t.cache)
		return f
	}
	return fs.build(p, hs, &t.cache)
}

func (t *kvMapTable[K, UK, V]) delete(kg int, k K, uk UK) {
	key, _ := t.entryKey(kg, k, uk)
	t.check("delete", t.kv.Delete(key))
	t.cache.del(key)
}

// all iterates the entries of k in the order of their encoded user keys.
// It owns its prefix, so fn may call the table's other methods.
func (t *kvMapTable[K, UK, V]) all(kg int, k K) iter.Seq2[UK, V] {
	p := append([]byte(nil), t.keyPrefix(kg, k)...)
	return func(yield func(UK, V) bool) {
		var derr error
		err := t.kv.Scan(p, prefixEnd(p), func(key, val []byte) bool {
			uk, _, err := t.ukc.Decode(key[len(p):])
			if err != nil {
				derr = err
				return false
			}
			v, _, err := t.vc.Decode(val)
			if err != nil {
				derr = err
				return false
			}
			return yield(uk, v)
		})
		t.check("range", err)
		t.check("decode", derr)
	}
}

// kvListTable is list state over a KVStore, one store key per element.
type kvListTable[K comparable, V any] struct {
	kvBase[K, V]
	seqName string
	next    uint64
	loaded  []bool // per key group: its high-water mark was read
	sbuf    []byte
}

// seqKey returns the key of the sequence high-water mark of key group kg.
func (t *kvListTable[K, V]) seqKey(kg int) []byte {
	t.sbuf = KVPrefix(t.sbuf[:0], kg, t.seqName)
	return t.sbuf
}

func (t *kvListTable[K, V]) add(kg int, k K, v V) {
	if i := kg - t.groups.Start; !t.loaded[i] {
		val, ok, err := t.kv.Get(t.seqKey(kg), nil)
		t.check("get sequence", err)
		if ok {
			if len(val) != 8 {
				t.check("decode sequence", fmt.Errorf("%w: sequence of %d bytes", codec.ErrShort, len(val)))
			}
			if hw := binary.BigEndian.Uint64(val); hw >= t.next {
				t.next = hw + 1
			}
		}
		t.loaded[i] = true
	}
	seq := t.next
	t.next++
	key := binary.BigEndian.AppendUint64(t.keyPrefix(kg, k), seq)
	t.kbuf = key
	t.vbuf = t.vc.Append(t.vbuf[:0], v)
	t.check("add", t.kv.Set(key, t.vbuf))
	t.vbuf = binary.BigEndian.AppendUint64(t.vbuf[:0], seq)
	t.check("add", t.kv.Set(t.seqKey(kg), t.vbuf))
}

func (t *kvListTable[K, V]) values(kg int, k K) []V {
	p := append([]byte(nil), t.keyPrefix(kg, k)...)
	var out []V
	var derr error
	err := t.kv.Scan(p, prefixEnd(p), func(_, val []byte) bool {
		v, _, err := t.vc.Decode(val)
		if err != nil {
			derr = err
			return false
		}
		out = append(out, v)
		return true
	})
	t.check("range", err)
	t.check("decode", derr)
	return out
}

func (t *kvListTable[K, V]) update(kg int, k K, vs []V) {
	t.clearKey(kg, k)
	for _, v := range vs {
		t.add(kg, k, v)
	}
}
