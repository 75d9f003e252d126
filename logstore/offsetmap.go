package logstore

import (
	"hash/maphash"
	"math/bits"
)

// offsetMap maps record keys to the offset of their latest record, for one
// cleaner pass. Its memory is fixed when it is made (CleanerOptions.
// DedupeBufferBytes), as Kafka's cleaner's: keys are not stored, only a
// 128-bit hash of each (two independent 64-bit hashes), so a slot is 24
// bytes whatever the key's size. Two keys collide only if both hashes are
// equal (about 2^-128 per pair), which would make the cleaner drop the
// older key's latest record; the same risk Kafka takes with MD5.
//
// It is an open-addressing table with linear probing, filled to at most
// maxLoad of its slots; put reports when it is full, and the pass then
// stops at the segment it was reading.
//
// Beside the table, a bitmap with a bit per offset from the pass's first
// dirty offset (one byte of it per slot, so 8 offsets per slot) marks the
// records that are their key's latest so far: put sets the new record's
// bit and clears the one of the record it supersedes (the offset the slot
// held). After the map phase, a record of the dirty segments is its key's
// latest exactly when its bit is set, so the rewrite of those segments
// reads the bitmap in offset order (latest) instead of probing the table
// with every record's key (get): each probe is a cache miss in a table of
// tens of MiB, the bitmap is read sequentially. Records outside the
// bitmap (the cleaned part of the log, or beyond its reach) are looked up
// with get.
type offsetMap struct {
	seed1, seed2 maphash.Seed
	slots        []mapSlot
	n            uint64 // len(slots)
	used         int
	limit        int

	bits    []uint64 // bit i: the record at bitBase+i is its key's latest
	bitBase int64
	bitMax  int64 // bits at or above bitBase+bitMax are all clear (for reset)
}

type mapSlot struct {
	h1, h2 uint64 // h2 == 0 marks an empty slot (real hashes are forced odd)
	offset int64
}

const (
	mapSlotBytes = 24
	maxLoad      = 0.9
	// mapBytesPerKey is the memory a slot takes with its share of the
	// bitmap (one byte: 8 offsets).
	mapBytesPerKey = mapSlotBytes + 1
)

// newOffsetMap makes a map of bytes/25 slots (at least 1024) and a bitmap of
// a byte per slot: all of the memory it is given, not the largest power of
// two that fits.
func newOffsetMap(bytes int) *offsetMap {
	n := max(1024, bytes/mapBytesPerKey)
	return &offsetMap{
		seed1: maphash.MakeSeed(),
		seed2: maphash.MakeSeed(),
		slots: make([]mapSlot, n),
		n:     uint64(n),
		limit: int(float64(n) * maxLoad),
		bits:  make([]uint64, (n+7)/8),
	}
}

// setLatest marks off as its key's latest record and, when old >= 0,
// unmarks old, the record it supersedes.
func (m *offsetMap) setLatest(off, old int64) {
	if i := old - m.bitBase; old >= 0 && i >= 0 && i < int64(len(m.bits))*64 {
		m.bits[i>>6] &^= 1 << (i & 63)
	}
	if i := off - m.bitBase; i >= 0 && i < int64(len(m.bits))*64 {
		m.bits[i>>6] |= 1 << (i & 63)
		m.bitMax = max(m.bitMax, i+1)
	}
}

// latest reports whether the record at off is its key's latest, when the
// bitmap knows (known): off is in its reach and at or after the pass's
// first dirty offset. It knows only of records put in this pass: a
// caller asks only about records that it put when it built the map.
func (m *offsetMap) latest(off int64) (latest, known bool) {
	i := off - m.bitBase
	if i < 0 || i >= int64(len(m.bits))*64 {
		return false, false
	}
	return m.bits[i>>6]&(1<<(i&63)) != 0, true
}

// anyLatest reports whether a record in offsets [from, to) is its key's
// latest, when the bitmap knows (known): the whole range is in its reach.
// The rewrite of a pass uses it to drop a batch or a whole segment whose
// records were all superseded without reading them again.
func (m *offsetMap) anyLatest(from, to int64) (found, known bool) {
	lo, hi := from-m.bitBase, to-m.bitBase
	if lo < 0 || hi > int64(len(m.bits))*64 || lo > hi {
		return false, false
	}
	if hi > m.bitMax {
		hi = m.bitMax // every bit from bitMax on is clear
	}
	for lo < hi {
		w := m.bits[lo>>6] >> (lo & 63)
		if n := hi - lo; n < 64-(lo&63) {
			w &= 1<<n - 1
		}
		if w != 0 {
			return true, true
		}
		lo = (lo | 63) + 1
	}
	return false, true
}

// home is the first slot probed for hash h1: h1 scaled to [0, n) (Lemire's
// multiply-shift, no power-of-two size needed).
func (m *offsetMap) home(h1 uint64) uint64 {
	hi, _ := bits.Mul64(h1, m.n)
	return hi
}

func (m *offsetMap) next(i uint64) uint64 {
	if i++; i == m.n {
		return 0
	}
	return i
}

func (m *offsetMap) hash(key []byte) (uint64, uint64) {
	return maphash.Bytes(m.seed1, key), maphash.Bytes(m.seed2, key) | 1
}

// put records that key's latest record is at offset (offsets only grow
// during a pass). It returns false, changing nothing, when the key is new
// and the map is full.
func (m *offsetMap) put(key []byte, offset int64) bool {
	h1, h2 := m.hash(key)
	for i := m.home(h1); ; i = m.next(i) {
		s := &m.slots[i]
		if s.h2 == 0 {
			if m.used >= m.limit {
				return false
			}
			s.h1, s.h2, s.offset = h1, h2, offset
			m.used++
			m.setLatest(offset, -1)
			return true
		}
		if s.h1 == h1 && s.h2 == h2 {
			m.setLatest(offset, s.offset)
			s.offset = offset
			return true
		}
	}
}

// get returns the offset of key's latest record, if the map has the key.
func (m *offsetMap) get(key []byte) (int64, bool) {
	h1, h2 := m.hash(key)
	for i := m.home(h1); ; i = m.next(i) {
		s := &m.slots[i]
		if s.h2 == 0 {
			return 0, false
		}
		if s.h1 == h1 && s.h2 == h2 {
			return s.offset, true
		}
	}
}

// full reports whether no new key fits.
func (m *offsetMap) full() bool { return m.used >= m.limit }

// reset empties the map for another pass, keeping its memory; the pass's
// dirty records start at offset base.
func (m *offsetMap) reset(base int64) {
	clear(m.slots)
	clear(m.bits[:(m.bitMax+63)/64])
	m.used = 0
	m.bitBase, m.bitMax = base, 0
	m.seed1, m.seed2 = maphash.MakeSeed(), maphash.MakeSeed()
}
