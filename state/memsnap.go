package state

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/sluicehq/sluice/state/codec"
)

// snapshotTable is implemented by the in-memory tables: they encode one
// key group's entries with the codecs of their key and value types.
type snapshotTable interface {
	encodeKeyGroup(dst []byte, kg int) ([]byte, error)
	decodeKeyGroup(kg int, src []byte) error
}

func (t *memTable[K, V]) encodeKeyGroup(dst []byte, kg int) ([]byte, error) {
	kc, err := codec.For[K]()
	if err != nil {
		return nil, fmt.Errorf("state table %q key: %w", t.name, err)
	}
	vc, err := codec.For[V]()
	if err != nil {
		return nil, fmt.Errorf("state table %q value: %w", t.name, err)
	}
	m := t.maps[kg-t.groups.Start]
	dst = binary.AppendUvarint(dst, uint64(len(m)))
	for k, s := range m {
		dst = kc.Append(dst, k)
		dst = vc.Append(dst, s.v)
	}
	return dst, nil
}

func (t *memTable[K, V]) decodeKeyGroup(kg int, src []byte) error {
	kc, err := codec.For[K]()
	if err != nil {
		return fmt.Errorf("state table %q key: %w", t.name, err)
	}
	vc, err := codec.For[V]()
	if err != nil {
		return fmt.Errorf("state table %q value: %w", t.name, err)
	}
	n, k := binary.Uvarint(src)
	if k <= 0 || n > uint64(len(src)) {
		return fmt.Errorf("state table %q: bad entry count", t.name)
	}
	src = src[k:]
	for range n {
		key, a, err := kc.Decode(src)
		if err != nil {
			return fmt.Errorf("state table %q: %w", t.name, err)
		}
		v, b, err := vc.Decode(src[a:])
		if err != nil {
			return fmt.Errorf("state table %q: %w", t.name, err)
		}
		src = src[a+b:]
		t.Put(kg, key, v)
	}
	return nil
}

// AppendKeyGroup appends the encoding of key group kg of every table
// (with the codecs of package codec) to dst: per table with entries in
// kg, its name and its entries, length-prefixed.
func (m *Memory) AppendKeyGroup(dst []byte, kg int) ([]byte, error) {
	names := make([]string, 0, len(m.tables))
	for name := range m.tables {
		names = append(names, name)
	}
	slices.Sort(names)
	var body []byte
	for _, name := range names {
		st, ok := m.tables[name].(snapshotTable)
		if !ok {
			return nil, fmt.Errorf("state table %q cannot be snapshotted", name)
		}
		var err error
		if body, err = st.encodeKeyGroup(body[:0], kg); err != nil {
			return nil, err
		}
		if len(body) == 1 && body[0] == 0 {
			continue // no entries
		}
		dst = codec.AppendString(dst, name)
		dst = codec.AppendBytes(dst, body)
	}
	return dst, nil
}

// RestoreKeyGroup loads key group kg from an encoding made by
// AppendKeyGroup. Tables not open yet get their entries when they are
// opened.
func (m *Memory) RestoreKeyGroup(kg int, src []byte) error {
	if !m.groups.Contains(kg) {
		return fmt.Errorf("state: key group %d outside %s", kg, m.groups)
	}
	for len(src) > 0 {
		name, a, err := codec.DecodeString(src)
		if err != nil {
			return fmt.Errorf("state snapshot: %w", err)
		}
		body, b, err := codec.DecodeBytes(src[a:])
		if err != nil {
			return fmt.Errorf("state snapshot: %w", err)
		}
		src = src[a+b:]
		if t, ok := m.tables[name]; ok {
			if err := t.(snapshotTable).decodeKeyGroup(kg, body); err != nil {
				return err
			}
			continue
		}
		if m.stash == nil {
			m.stash = make(map[string][]stashed)
		}
		m.stash[name] = append(m.stash[name], stashed{kg: kg, data: body})
	}
	return nil
}

// stashed is restored state of a table that was not open yet.
type stashed struct {
	kg   int
	data []byte
	// changes: data is a change section body (ApplyChanges), not an
	// AppendKeyGroup one.
	changes bool
}

// applyStash loads the restored entries of table t, just created.
func (m *Memory) applyStash(t Table) error {
	chunks := m.stash[t.Name()]
	if len(chunks) == 0 {
		return nil
	}
	delete(m.stash, t.Name())
	st, ok := t.(snapshotTable)
	ct, ok2 := t.(changeTable)
	if !ok || !ok2 {
		return fmt.Errorf("state table %q cannot be restored", t.Name())
	}
	for _, c := range chunks {
		var err error
		if c.changes {
			err = ct.applyChanges(c.kg, c.data)
		} else {
			err = st.decodeKeyGroup(c.kg, c.data)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
