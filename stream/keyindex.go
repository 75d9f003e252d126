package stream

import (
	"math/bits"

	"github.com/sluicehq/sluice/state"
)

// keyIndex maps the keys of a subtask's in-memory window state to small
// integers. With a cheap hash it is an open-addressing table with linear
// probing: a lookup is one hash and, usually, one cache line, against the
// several dependent loads of a Go map, and it is the hottest step of a
// keyed window. Keys are removed in bulk (removeIf rebuilds the table), so
// the table needs no tombstones. Keys whose only hash is the slow fmt
// fallback use a Go map instead.
type keyIndex[K comparable] struct {
	hash  func(K) uint64
	slots []keySlot[K]
	shift uint8 // 64 - log2(len(slots))
	n     int
	slow  map[K]int32
}

type keySlot[K comparable] struct {
	key K
	v   int32 // value + 1; 0 marks a free slot
}

func newKeyIndex[K comparable]() *keyIndex[K] {
	h, fast := state.FastHasher[K]()
	if !fast {
		return &keyIndex[K]{slow: make(map[K]int32)}
	}
	x := &keyIndex[K]{hash: h}
	x.resize(16)
	return x
}

// home is the first slot to probe for hash h. The hash's high bits are
// used (after a multiply by the golden ratio): the keys of one subtask
// share few residues of the hash modulo the key-group count, so its low
// bits would cluster.
func (x *keyIndex[K]) home(h uint64) uint64 {
	return ((h ^ h>>32) * 0x9e3779b97f4a7c15) >> x.shift
}

func (x *keyIndex[K]) len() int {
	if x.slow != nil {
		return len(x.slow)
	}
	return x.n
}

// get returns k's value.
func (x *keyIndex[K]) get(k K) (int32, bool) {
	if x.slow != nil {
		v, ok := x.slow[k]
		return v, ok
	}
	mask := uint64(len(x.slots) - 1)
	for i := x.home(x.hash(k)); ; i = (i + 1) & mask {
		s := &x.slots[i]
		if s.v == 0 {
			return 0, false
		}
		if s.key == k {
			return s.v - 1, true
		}
	}
}

// put sets k's value (v >= 0).
func (x *keyIndex[K]) put(k K, v int32) {
	if x.slow != nil {
		x.slow[k] = v
		return
	}
	if (x.n+1)*4 > len(x.slots)*3 {
		x.resize(len(x.slots) * 2)
	}
	x.insert(k, v)
}

func (x *keyIndex[K]) insert(k K, v int32) {
	mask := uint64(len(x.slots) - 1)
	for i := x.home(x.hash(k)); ; i = (i + 1) & mask {
		s := &x.slots[i]
		if s.v == 0 {
			s.key, s.v = k, v+1
			x.n++
			return
		}
		if s.key == k {
			s.v = v + 1
			return
		}
	}
}

func (x *keyIndex[K]) resize(size int) {
	old := x.slots
	x.slots = make([]keySlot[K], size)
	x.shift = uint8(64 - bits.TrailingZeros(uint(size)))
	x.n = 0
	for _, s := range old {
		if s.v != 0 {
			x.insert(s.key, s.v-1)
		}
	}
}

// removeIf removes the keys for which drop returns true.
func (x *keyIndex[K]) removeIf(drop func(k K, v int32) bool) {
	if x.slow != nil {
		for k, v := range x.slow {
			if drop(k, v) {
				delete(x.slow, k)
			}
		}
		return
	}
	dropped := 0
	for i := range x.slots {
		s := &x.slots[i]
		if s.v != 0 && drop(s.key, s.v-1) {
			*s = keySlot[K]{}
			dropped++
		}
	}
	if dropped == 0 {
		return
	}
	kept := x.n - dropped
	size := 16
	for kept*8 > size*3 { // at most 3/8 full after the rebuild
		size *= 2
	}
	// Removing from a linear-probing table without tombstones means
	// reinserting whatever follows a hole: rebuild.
	x.resize(size)
}
