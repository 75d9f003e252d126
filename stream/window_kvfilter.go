package stream

import (
	"hash/maphash"

	"github.com/sluicehq/sluice/state"
)

// Membership filters of the windows on a KV state backend.
//
// Adding a record to a window is a read-modify-write of the (key, window)
// entry, and a window's first record of a key finds no entry: a Pebble
// point read of an absent key walks the memtables and asks the filter of
// every sstable level, which costs as much as a read that finds one (with
// many keys, most reads are of this kind: a window of ten million keys
// starts with ten million absent reads). So the operator keeps, per window
// end, a Bloom filter of the entries it wrote there; an entry the filter
// rules out is new (no read), one it lets through is read as before (a
// false positive costs the read every record paid without the filter).
//
// Invariant: the filter of window end mt, while it exists, contains every
// entry of the store whose window ends at mt (in this subtask's key
// groups). It is made when the operator writes the first entry at mt while
// no key group holds a window there (the store holds no entry at mt then),
// and every new entry at mt is added to it. Windows at mt that are there
// when the operator starts (a restore) have no filter, and none is ever
// made for them, as mt stays in the stored set until the windows are
// dropped, after which no record reaches them (they are late). Dropping
// windows (cleanup) drops their filter.
//
// Growth: a filter is a list of stages, each four times the capacity of
// the previous one (the first takes 16,384 entries); entries go to the
// last stage, a query asks every stage. 10 bits per entry and seven
// probes within one 512-bit block (one cache line) give about 1 % false
// positives per full stage. Memory is charged to the store's budget of
// hot entries (state.CacheBudget, an eighth of --memory's Pebble share per
// backend): a stage that does not fit drops the filter of its window end,
// whose later reads go to the store as without filters.

// wfFirstCap is the capacity of a filter's first stage (a variable so
// that tests make filters grow through many stages).
var wfFirstCap = 16 << 10

const (
	wfGrowth      = 4
	wfBitsPerKey  = 10
	wfProbes      = 7
	wfBlockWords  = 8 // 512 bits
	wfMaxStageCap = 1 << 40
)

// winFilter is the filter of the entries of one window end.
type winFilter struct {
	stages [][]uint64 // each a whole number of 512-bit blocks
	n      int        // entries in the last stage
	cap    int        // capacity of the last stage
	bytes  int64
}

// winFilters are the filters of one operator, by window end.
type winFilters struct {
	budget *state.CacheBudget
	seed   maphash.Seed
	m      map[int64]*winFilter
}

func newWinFilters(kv state.KVStore) *winFilters {
	b, ok := kv.(state.KVCacheBudget)
	if !ok {
		return nil
	}
	bu := b.CacheBudget()
	if bu == nil || bu.Limit() <= 0 {
		return nil
	}
	return &winFilters{budget: bu, seed: maphash.MakeSeed(), m: make(map[int64]*winFilter)}
}

func (fs *winFilters) hash(key []byte) uint64 { return maphash.Bytes(fs.seed, key) }

// create makes the (empty) filter of window end mt and reports whether
// the budget allowed it.
func (fs *winFilters) create(mt int64) *winFilter {
	f := &winFilter{}
	if !fs.grow(f) {
		return nil
	}
	fs.m[mt] = f
	return f
}

// grow adds a stage to f, charging it to the budget.
func (fs *winFilters) grow(f *winFilter) bool {
	c := wfFirstCap
	if f.cap > 0 {
		c = min(f.cap*wfGrowth, wfMaxStageCap)
	}
	blocks := (c*wfBitsPerKey + wfBlockWords*64 - 1) / (wfBlockWords * 64)
	size := int64(blocks * wfBlockWords * 8)
	if !fs.budget.Reserve(size) {
		return false
	}
	f.stages = append(f.stages, make([]uint64, blocks*wfBlockWords))
	f.n, f.cap = 0, c
	f.bytes += size
	return true
}

// add adds an entry's hash to the filter of mt, which it drops when it
// cannot grow.
func (fs *winFilters) add(mt int64, f *winFilter, h uint64) {
	if f.n >= f.cap && !fs.grow(f) {
		fs.drop(mt)
		return
	}
	wfSet(f.stages[len(f.stages)-1], h)
	f.n++
}

// drop removes the filter of mt.
func (fs *winFilters) drop(mt int64) {
	if f, ok := fs.m[mt]; ok {
		fs.budget.Release(f.bytes)
		delete(fs.m, mt)
	}
}

// dropUpTo removes the filters of the window ends at or before t.
func (fs *winFilters) dropUpTo(t int64) {
	for mt := range fs.m {
		if mt <= t {
			fs.drop(mt)
		}
	}
}

// dropAll removes every filter.
func (fs *winFilters) dropAll() {
	for mt := range fs.m {
		fs.drop(mt)
	}
}

func (f *winFilter) mayContain(h uint64) bool {
	for _, s := range f.stages {
		if wfHas(s, h) {
			return true
		}
	}
	return false
}

// wfBlock returns the block of h in stage s (from the high bits of h)
// and the first bit and odd step of its probes (from a remix of h, so
// that they do not depend on the block).
func wfBlock(s []uint64, h uint64) (b []uint64, p, step uint32) {
	i := ((h >> 32) * uint64(len(s)/wfBlockWords) >> 32) * wfBlockWords
	r := h * 0x9e3779b97f4a7c15
	return s[i : i+wfBlockWords : i+wfBlockWords], uint32(r >> 32), uint32(r) | 1
}

func wfSet(s []uint64, h uint64) {
	b, p, step := wfBlock(s, h)
	for range wfProbes {
		bit := p & 511
		b[bit>>6] |= 1 << (bit & 63)
		p += step
	}
}

func wfHas(s []uint64, h uint64) bool {
	b, p, step := wfBlock(s, h)
	for range wfProbes {
		bit := p & 511
		if b[bit>>6]&(1<<(bit&63)) == 0 {
			return false
		}
		p += step
	}
	return true
}
