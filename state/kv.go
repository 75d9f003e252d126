package state

import (
	"encoding/binary"
	"fmt"

	"github.com/sluicehq/sluice/state/codec"
)

// KVStore is the byte-level store of a disk backend (package state/pebble
// provides one). Keys of one table and key group share a prefix (KVPrefix),
// so that a key group can be scanned or deleted as a range.
type KVStore interface {
	// Get appends the value of key to dst; ok is false when key is absent.
	Get(key, dst []byte) (val []byte, ok bool, err error)
	Set(key, val []byte) error
	Delete(key []byte) error
	// DeleteRange deletes the keys in [start, end).
	DeleteRange(start, end []byte) error
	// Scan calls fn for the keys in [start, end) in order until fn returns
	// false. The slices are valid only during the call.
	Scan(start, end []byte, fn func(key, val []byte) bool) error
}

// KVTableDescriptor is implemented by the descriptors of the typed tables
// (NewValue, NewMap, NewList): it builds the table over a KVStore, with
// the codecs of package codec for its key and value types.
type KVTableDescriptor interface {
	TableDescriptor
	NewKVTable(kv KVStore, r KeyGroupRange) (Table, error)
}

// KVPrefix appends the prefix of the keys of table name in key group kg:
// the key group (2 bytes, big-endian, so that a key group's tables are
// contiguous), the name's length and the name.
func KVPrefix(dst []byte, kg int, name string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(kg))
	dst = append(dst, byte(len(name)))
	return append(dst, name...)
}

// KVKeyGroupSpan returns the key span [start, end) of key groups
// [r.Start, r.End) of every table.
func KVKeyGroupSpan(r KeyGroupRange) (start, end []byte) {
	return binary.BigEndian.AppendUint16(nil, uint16(r.Start)), binary.BigEndian.AppendUint16(nil, uint16(r.End))
}

func (d descriptor[K, V]) NewKVTable(kv KVStore, r KeyGroupRange) (Table, error) {
	if len(d.name) > 255 {
		return nil, fmt.Errorf("state table %q: name longer than 255 bytes", d.name)
	}
	if r.End > 1<<16 {
		return nil, fmt.Errorf("state table %q: more than 65536 key groups", d.name)
	}
	kc, err := codec.For[K]()
	if err != nil {
		return nil, fmt.Errorf("state table %q key: %w", d.name, err)
	}
	vc, err := codec.For[V]()
	if err != nil {
		return nil, fmt.Errorf("state table %q value: %w", d.name, err)
	}
	t := &kvTable[K, V]{name: d.name, groups: r, kv: kv, kc: kc, vc: vc}
	t.hot.init(kv)
	t.dir, err = newKeyDir(kv, tableKeys(kv, r, d.name))
	if err != nil {
		return nil, fmt.Errorf("state table %q: %w", d.name, err)
	}
	return t, nil
}

// KVWriteBack is implemented by tables over a KVStore that keep some
// writes in memory (value tables: the latest value of hot keys, see
// kvvalue.go). A store calls WriteBack before it takes a snapshot (Pebble:
// before every checkpoint), so that what it snapshots is complete; until
// then the tables' own reads see the values they hold, and nothing else
// reads the store. Errors of the store panic with a *KVError, as in the
// tables' other operations.
type KVWriteBack interface {
	WriteBack()
}

// kvTable is a TypedTable over a KVStore. Errors of the store (I/O
// errors) panic with a *KVError: the runtime fails the task, and the job
// restarts from its last checkpoint.
type kvTable[K comparable, V any] struct {
	name   string
	groups KeyGroupRange
	kv     KVStore
	kc     codec.Codec[K]
	vc     codec.Codec[V]
	kbuf   []byte
	vbuf   []byte
	// hot is the cache of decoded hot values, written back (kvvalue.go).
	hot hotValues[K, V]
	// dir is the directory of the table's keys (kvfilter.go); nil: none.
	dir *keyDir
}

// KVError is the panic value of a failed KVStore operation.
type KVError struct {
	Table string
	Op    string
	Err   error
}

func (e *KVError) Error() string { return fmt.Sprintf("state table %q: %s: %v", e.Table, e.Op, e.Err) }

// Unwrap returns the store's error.
func (e *KVError) Unwrap() error { return e.Err }

func (t *kvTable[K, V]) check(op string, err error) {
	if err != nil {
		panic(&KVError{Table: t.name, Op: op, Err: err})
	}
}

func (t *kvTable[K, V]) key(kg int, k K) []byte {
	t.kbuf = KVPrefix(t.kbuf[:0], kg, t.name)
	t.kbuf = t.kc.Append(t.kbuf, k)
	return t.kbuf
}

func (t *kvTable[K, V]) Name() string             { return t.name }
func (t *kvTable[K, V]) KeyGroups() KeyGroupRange { return t.groups }

// WriteBack implements KVWriteBack.
func (t *kvTable[K, V]) WriteBack() { t.writeBack() }

// Len scans the table: it costs a pass over the data.
func (t *kvTable[K, V]) Len() int {
	t.writeBack()
	n := 0
	for kg := t.groups.Start; kg < t.groups.End; kg++ {
		p := KVPrefix(nil, kg, t.name)
		t.check("len", t.kv.Scan(p, prefixEnd(p), func(_, _ []byte) bool { n++; return true }))
	}
	return n
}

func (t *kvTable[K, V]) ClearKeyGroup(kg int) {
	t.writeBack() // the other key groups' entries
	p := KVPrefix(nil, kg, t.name)
	t.check("clear", t.kv.DeleteRange(p, prefixEnd(p)))
	t.hot.clear()
}

func (t *kvTable[K, V]) Get(kg int, k K) (V, bool) {
	if e := t.hot.lookup(k); e != nil {
		return e.v, true
	}
	key := t.key(kg, k)
	if !t.dir.mayHave(key) {
		var zero V
		return zero, false
	}
	val, ok, err := t.kv.Get(key, t.vbuf[:0])
	t.check("get", err)
	if !ok {
		var zero V
		return zero, false
	}
	t.vbuf = val
	v, _, err := t.vc.Decode(val)
	t.check("decode", err)
	t.cacheValue(kg, k, v, hotSize(len(key), len(val)), false)
	return v, true
}

func (t *kvTable[K, V]) Put(kg int, k K, v V) {
	if e := t.hot.lookup(k); e != nil {
		t.update(kg, k, e, v)
		return
	}
	key := t.key(kg, k)
	t.dir.add(key)
	t.vbuf = t.vc.Append(t.vbuf[:0], v)
	// Write-back: a hot key's value (an accumulator updated by every
	// record) reaches the store once per snapshot or eviction, not once
	// per Put.
	if !t.cacheValue(kg, k, v, hotSize(len(key), len(t.vbuf)), true) {
		t.check("put", t.kv.Set(t.key(kg, k), t.vc.Append(t.vbuf[:0], v)))
	}
}

func (t *kvTable[K, V]) Delete(kg int, k K) {
	t.hot.drop(k)
	key := t.key(kg, k)
	t.check("delete", t.kv.Delete(key))
}

func (t *kvTable[K, V]) Range(kg int, fn func(K, V) bool) {
	t.writeBack()
	p := KVPrefix(nil, kg, t.name)
	var derr error
	err := t.kv.Scan(p, prefixEnd(p), func(key, val []byte) bool {
		k, _, err := t.kc.Decode(key[len(p):])
		if err != nil {
			derr = err
			return false
		}
		v, _, err := t.vc.Decode(val)
		if err != nil {
			derr = err
			return false
		}
		return fn(k, v)
	})
	t.check("range", err)
	t.check("decode", derr)
}

// prefixEnd returns the smallest key after every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
