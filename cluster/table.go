package cluster

import "errors"

// Table is a task's keyed state in memory, backed by a changelog: it
// tracks the keys changed since the last flush (written to the changelog
// at the next commit, latest value only) and the values they had at the
// last commit (restored if the transaction aborts). V is usually a
// pointer mutated in place: call Touch before changing it.
type Table[V any] struct {
	m      map[string]V
	enc    func(V) []byte
	dec    func([]byte) (V, error)
	dirty  map[string]struct{}
	undo   map[string][]byte // encoded value at the last commit; nil: absent
	hasOld map[string]bool
	noUndo bool
}

// DisableUndo stops keeping the values at the last commit: Abort then
// fails, and the owner must rebuild the table from its changelog instead.
func (t *Table[V]) DisableUndo() { t.noUndo = true }

// ErrNoUndo is Abort's error on a table without undo.
var ErrNoUndo = errors.New("cluster: the table keeps no undo; restore it from its changelog")

// NewTable returns an empty table with the value codec.
func NewTable[V any](enc func(V) []byte, dec func([]byte) (V, error)) *Table[V] {
	return &Table[V]{m: map[string]V{}, enc: enc, dec: dec, dirty: map[string]struct{}{}, undo: map[string][]byte{}, hasOld: map[string]bool{}}
}

// Len is the number of keys.
func (t *Table[V]) Len() int { return len(t.m) }

// Get returns k's value.
func (t *Table[V]) Get(k string) (V, bool) {
	v, ok := t.m[k]
	return v, ok
}

// Touch records that k is about to change (its value at the last commit
// is kept for Abort).
func (t *Table[V]) Touch(k string) {
	t.dirty[k] = struct{}{}
	if t.noUndo {
		return
	}
	if _, seen := t.hasOld[k]; seen {
		return
	}
	if v, ok := t.m[k]; ok {
		t.undo[k] = t.enc(v)
		t.hasOld[k] = true
	} else {
		t.hasOld[k] = false
	}
}

// Put sets k to v.
func (t *Table[V]) Put(k string, v V) {
	t.Touch(k)
	t.m[k] = v
}

// Delete removes k.
func (t *Table[V]) Delete(k string) {
	t.Touch(k)
	delete(t.m, k)
}

// Range calls f for every key until it returns false.
func (t *Table[V]) Range(f func(k string, v V) bool) {
	for k, v := range t.m {
		if !f(k, v) {
			return
		}
	}
}

// Flush writes the changed keys' current values (nil for deleted ones)
// to write.
func (t *Table[V]) Flush(write func(k string, v []byte)) {
	for k := range t.dirty {
		if v, ok := t.m[k]; ok {
			write(k, t.enc(v))
		} else {
			write(k, nil)
		}
	}
	clear(t.dirty)
}

// Commit makes the current values the ones Abort returns to.
func (t *Table[V]) Commit() {
	clear(t.undo)
	clear(t.hasOld)
	clear(t.dirty)
}

// Abort returns every key changed since the last Commit to its value
// then.
func (t *Table[V]) Abort() error {
	if t.noUndo {
		clear(t.dirty)
		return ErrNoUndo
	}
	var first error
	for k, had := range t.hasOld {
		if !had {
			delete(t.m, k)
			continue
		}
		v, err := t.dec(t.undo[k])
		if err != nil && first == nil {
			first = err
		}
		t.m[k] = v
	}
	clear(t.undo)
	clear(t.hasOld)
	clear(t.dirty)
	return first
}

// Restore applies a changelog record (nil value: delete) without marking
// anything dirty.
func (t *Table[V]) Restore(k string, v []byte) error {
	if v == nil {
		delete(t.m, k)
		return nil
	}
	d, err := t.dec(v)
	if err != nil {
		return err
	}
	t.m[k] = d
	return nil
}

// Snapshot calls write with every key's encoded value (call it committed).
func (t *Table[V]) Snapshot(write func(k string, v []byte)) {
	for k, v := range t.m {
		write(k, t.enc(v))
	}
}
