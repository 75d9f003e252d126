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
type offsetMap struct {
	seed1, seed2 maphash.Seed
	slots        []mapSlot
	n            uint64 // len(slots)
	used         int
	limit        int
}

type mapSlot struct {
	h1, h2 uint64 // h2 == 0 marks an empty slot (real hashes are forced odd)
	offset int64
}

const (
	mapSlotBytes = 24
	maxLoad      = 0.9
)

// newOffsetMap makes a map of bytes/24 slots (at least 1024): all of the
// memory it is given, not the largest power of two that fits.
func newOffsetMap(bytes int) *offsetMap {
	n := max(1024, bytes/mapSlotBytes)
	return &offsetMap{
		seed1: maphash.MakeSeed(),
		seed2: maphash.MakeSeed(),
		slots: make([]mapSlot, n),
		n:     uint64(n),
		limit: int(float64(n) * maxLoad),
	}
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
			return true
		}
		if s.h1 == h1 && s.h2 == h2 {
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

// reset empties the map for another pass, keeping its memory.
func (m *offsetMap) reset() {
	clear(m.slots)
	m.used = 0
	m.seed1, m.seed2 = maphash.MakeSeed(), maphash.MakeSeed()
}
