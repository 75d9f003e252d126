package state

import (
	"encoding/binary"
	"slices"

	"github.com/sluicehq/sluice/state/codec"
)

// Encoding of change entries at the barrier (memdelta.go's appendChanges):
// keys and values are written straight into the section, behind a
// length prefix reserved before and fixed after (no scratch buffer and
// copy per entry), through the codecs' AppendPtr (no heap copy per entry
// of a value that is not a pointer).

// prefixedEncoder appends length-prefixed encodings of T, byte for byte
// what codec.AppendBytes(dst, c.Append(nil, v)) appends.
type prefixedEncoder[T any] struct {
	c    codec.Codec[T]
	pa   codec.PtrAppender[T]
	slot *T
	// guess is the length of the previous prefix: entries of one table
	// are usually of similar size, so the prefix rarely moves.
	guess int
}

func newPrefixedEncoder[T any](c codec.Codec[T]) *prefixedEncoder[T] {
	e := &prefixedEncoder[T]{c: c, guess: 1}
	if pa, ok := c.(codec.PtrAppender[T]); ok {
		e.pa, e.slot = pa, new(T)
	}
	return e
}

// append appends v's encoding, length-prefixed.
func (e *prefixedEncoder[T]) append(dst []byte, v T) []byte {
	start := len(dst)
	for range e.guess {
		dst = append(dst, 0)
	}
	if e.pa != nil {
		*e.slot = v
		dst = e.pa.AppendPtr(dst, e.slot)
	} else {
		dst = e.c.Append(dst, v)
	}
	n := len(dst) - start - e.guess
	need := codec.UvarintLen(uint64(n))
	if need != e.guess {
		if need > e.guess {
			for range need - e.guess {
				dst = append(dst, 0)
			}
		}
		copy(dst[start+need:], dst[start+e.guess:start+e.guess+n])
		dst = dst[:start+need+n]
		e.guess = need
	}
	binary.PutUvarint(dst[start:], uint64(n))
	return dst
}

// done drops the reference to the last value encoded.
func (e *prefixedEncoder[T]) done() {
	if e.slot != nil {
		var zero T
		*e.slot = zero
	}
}

// growFor makes room in dst for n entries of the table's average size
// at its last snapshot, so that a large section does not grow by
// doubling (a copy of everything encoded so far at each step).
func (t *memTable[K, V]) growFor(dst []byte, n int) []byte {
	if t.entrySize == 0 || n == 0 {
		return dst
	}
	return slices.Grow(dst, n*t.entrySize+16)
}

// sized records the average entry size of a section just encoded.
func (t *memTable[K, V]) sized(bytes, n int) {
	if n > 0 {
		t.entrySize = bytes/n + 1
	}
}

// appendLenPrefixed appends what fn appends to dst, length-prefixed as
// codec.AppendBytes would, without encoding it elsewhere first, and
// returns the length of fn's part.
func appendLenPrefixed(dst []byte, fn func([]byte) ([]byte, error)) ([]byte, int, error) {
	dst, at := codec.BeginPrefixed(dst)
	dst, err := fn(dst)
	if err != nil {
		return nil, 0, err
	}
	dst, n := codec.EndPrefixed(dst, at)
	return dst, n, nil
}
