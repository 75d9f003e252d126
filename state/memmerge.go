package state

import (
	"encoding/binary"
	"slices"
	"unsafe"

	"github.com/sluicehq/sluice/state/codec"
)

// The common case of MergeChanges (a chain's compaction): per table, a
// base body (reset flag set, puts only) followed by increments. Instead
// of inserting every entry of the base into a map and encoding them all
// again, only the increments' keys go into a map; the base's entries that
// no increment overrides are copied as they are, in runs of adjacent
// entries. The result applies to the same state as MergeChanges' (which
// it falls back to for anything else: no base, a deletion in the base, an
// op code it does not know, bytes that do not parse).

// mergeFast is off in tests that compare with the general merge.
var mergeFast = true

// rawEntry is one entry of a change body with its byte range.
type rawEntry struct {
	op         byte
	key, value []byte
	start, end int // within the body
}

// scanBody calls fn with every entry of body; false if body does not
// parse or holds an op other than put and delete.
func scanBody(body []byte, fn func(e rawEntry)) bool {
	if len(body) < 1 || body[0]&^(changeReset|changeEntries) != 0 {
		return false // the general merge reports unknown flags
	}
	n, k := binary.Uvarint(body[1:])
	if k <= 0 || n > uint64(len(body)) {
		return false
	}
	off := 1 + k
	for range n {
		if off >= len(body) || body[off] > opDelete {
			return false
		}
		e := rawEntry{op: body[off], start: off}
		key, a, err := splitBytes(body[off+1:])
		if err != nil {
			return false
		}
		e.key = key
		off += 1 + a
		if e.op == opPut {
			v, b, err := splitBytes(body[off:])
			if err != nil {
				return false
			}
			e.value = v
			off += b
		}
		e.end = off
		fn(e)
	}
	return off == len(body)
}

type newerEntry struct {
	del   bool
	value []byte
}

// mergeChangesFast is MergeChanges for bases followed by increments; ok
// is false when it does not apply (nothing is appended then).
func mergeChangesFast(dst []byte, sections [][]byte) (out []byte, ok bool) {
	bodies := map[string][][]byte{}
	for _, s := range sections {
		err := walkChanges(s, func(name string, body []byte) error {
			if len(body) == 0 {
				return ErrCorruptSnapshot
			}
			if body[0]&changeReset != 0 {
				// Dropped, but checked as MergeChanges checks them.
				for _, b := range bodies[name] {
					if !scanBody(b, func(rawEntry) {}) {
						return ErrCorruptSnapshot
					}
				}
				bodies[name] = bodies[name][:0]
			}
			bodies[name] = append(bodies[name], body)
			return nil
		})
		if err != nil {
			return nil, false
		}
	}
	names := make([]string, 0, len(bodies))
	for name := range bodies {
		names = append(names, name)
	}
	slices.Sort(names)
	type merged struct {
		name  string
		base  []byte
		runs  [][2]int
		newer map[string]newerEntry
		count int
		size  int
	}
	var all []merged
	for _, name := range names {
		bs := bodies[name]
		if bs[0][0]&changeReset == 0 {
			return nil, false
		}
		m := merged{name: name, base: bs[0], newer: map[string]newerEntry{}}
		for _, b := range bs[1:] {
			if !scanBody(b, func(e rawEntry) {
				// The keys alias the sections, which outlive the merge.
				k := unsafe.String(unsafe.SliceData(e.key), len(e.key))
				m.newer[k] = newerEntry{del: e.op == opDelete, value: e.value}
			}) {
				return nil, false
			}
		}
		baseOK := true
		if !scanBody(m.base, func(e rawEntry) {
			if e.op != opPut {
				baseOK = false
				return
			}
			if _, hit := m.newer[unsafe.String(unsafe.SliceData(e.key), len(e.key))]; hit {
				return
			}
			m.count++
			m.size += e.end - e.start
			if n := len(m.runs); n > 0 && m.runs[n-1][1] == e.start {
				m.runs[n-1][1] = e.end
			} else {
				m.runs = append(m.runs, [2]int{e.start, e.end})
			}
		}) || !baseOK {
			return nil, false
		}
		for k, e := range m.newer {
			if !e.del {
				m.count++
				m.size += 1 + codec.UvarintLen(uint64(len(k))) + len(k) + codec.UvarintLen(uint64(len(e.value))) + len(e.value)
			}
		}
		if m.count == 0 {
			continue
		}
		m.size += 1 + codec.UvarintLen(uint64(m.count))
		all = append(all, m)
	}
	total := 0
	for _, m := range all {
		total += 2*binary.MaxVarintLen64 + len(m.name) + m.size
	}
	dst = slices.Grow(dst, total)
	for _, m := range all {
		dst = codec.AppendString(dst, m.name)
		dst = binary.AppendUvarint(dst, uint64(m.size))
		dst = append(dst, changeReset)
		dst = binary.AppendUvarint(dst, uint64(m.count))
		for _, r := range m.runs {
			dst = append(dst, m.base[r[0]:r[1]]...)
		}
		for k, e := range m.newer {
			if !e.del {
				dst = append(dst, opPut)
				dst = codec.AppendString(dst, k)
				dst = codec.AppendBytes(dst, e.value)
			}
		}
	}
	return dst, true
}
