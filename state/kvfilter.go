package state

import (
	"bytes"
	"hash/maphash"
	"math/bits"
)

// Membership filters of map state on a KVStore.
//
// A map entry that is absent costs a Pebble point read as much as one
// that is present, and more: the read walks every memtable and consults
// every sstable that may hold the key. Distinct sets (q15, q16, any
// count-distinct kept as map state) mostly ask about values they have not
// seen yet, and the read cache of hot entries (kvcache.go) cannot help
// with those, since absent entries are not cached. So a map table keeps,
// for the keys it touched recently, a membership filter of the key's
// entries: a blocked Bloom filter of the hashes of their encoded user
// keys. A Get whose user key the filter rules out returns "absent"
// without reading the store; a Get the filter lets through reads the
// store as before (the cache of hot entries first), so a false positive
// costs what every read cost without the filter.
//
// Invariant: a key's filter, while it exists, contains every entry of the
// key that the store holds. It is built by one prefix scan of the key's
// entries on the key's first Get (the scan sees the write batch), and
// kept up to date by Put (which adds the user key) and Clear (which
// replaces it with an empty filter). Delete leaves it unchanged: a deleted
// entry only becomes a false positive until the next rebuild. A key-group
// clear (rescaling) drops every filter of the table. A restore opens a new
// backend with new tables, so filters never outlive the data they
// describe.
//
// Sizes: a filter is built for twice the entries the scan found plus 16,
// with 16 bits per entry at that capacity (32 right after the build); a
// Put beyond the capacity adds a layer twice as large (no scan), up to
// filterLayers layers; a Put beyond the last layer's capacity drops the
// filter and the next Get rebuilds it as one layer, so a growing set pays
// a scan of its entries each time it grows about fifteen-fold (amortised,
// one scanned entry per fourteen inserts; before the layers, one per
// insert). One 64-bit word per four entries, four bits per entry within
// the word: about 0.3 % false positives per full layer at 16 bits per
// entry, at most about 1 % with every layer full. A key whose filter would take more than
// a quarter of the budget is not filtered (it is remembered as such until
// its map is cleared or the filter is evicted).
//
// Memory: filters are charged to the same budget as the cache of hot
// entries (CacheBudget) and take precedence over the table's own cached
// entries, which they evict first; beyond that, a table's filters may
// hold a sixteenth of the budget whatever the other tables hold, as the
// entries do. Eviction drops whole filters, a quarter of the table's at a
// time, in the map's random iteration order; an evicted key is rebuilt by
// a scan at its next Get. So that a budget too small for the working set
// does not turn every Get into a scan, a table stops building filters
// while the entries it scanned to build them exceed four times the reads
// its filters answered plus 4096 (it resumes when its remaining filters
// have answered enough reads).

// memberFilter is the filter of one key's entries. It has up to
// filterLayers layers: when the last one is full, a layer twice as large
// is added (no scan), and the key's filter is rebuilt as one layer by a
// scan only when the layers are all full.
type memberFilter struct {
	words  []uint64   // the last layer
	older  [][]uint64 // the full layers before it
	last   int        // user keys added to words
	n      int        // user keys added (at least the entries; overwrites count twice)
	tooBig bool       // the key is not filtered: Gets read the store
}

// filterLayers is the most layers of a key's filter.
const filterLayers = 4

// filterHash is the hash of an encoded user key that filters store.
func filterHash(seed maphash.Seed, uk []byte) uint64 { return maphash.Bytes(seed, uk) }

// capacity is the number of members the filter's last layer takes before
// it is full (16 bits each).
func (f *memberFilter) capacity() int { return len(f.words) * 4 }

func (f *memberFilter) add(h uint64) {
	f.words[(h>>32)&uint64(len(f.words)-1)] |= filterMask(h)
	f.n++
	f.last++
}

func (f *memberFilter) mayContain(h uint64) bool {
	m := filterMask(h)
	if f.words[(h>>32)&uint64(len(f.words)-1)]&m == m {
		return true
	}
	for _, w := range f.older {
		if w[(h>>32)&uint64(len(w)-1)]&m == m {
			return true
		}
	}
	return false
}

// filterMask is the four bits of h within its word.
func filterMask(h uint64) uint64 {
	return 1<<(h&63) | 1<<((h>>6)&63) | 1<<((h>>12)&63) | 1<<((h>>18)&63)
}

// newMemberFilter returns an empty filter for n members.
func newMemberFilter(n int) *memberFilter {
	words := max((n+3)/4, 1)
	return &memberFilter{words: make([]uint64, 1<<bits.Len(uint(words-1)))}
}

// filterOverhead approximates a filter's bytes beyond its words and its
// key (map slot, string header, the struct).
const filterOverhead = 96

func (f *memberFilter) size(prefix int) int64 {
	n := len(f.words)
	for _, w := range f.older {
		n += len(w)
	}
	return int64(8*n+prefix) + filterOverhead
}

// keyFilters holds the membership filters of one map table, by the store
// prefix of the key (KVPrefix ++ encoded key).
type keyFilters struct {
	budget  *CacheBudget
	seed    maphash.Seed
	m       map[string]*memberFilter
	bytes   int64
	lastKey []byte // the key of last: Gets and Puts of one record hit it
	last    *memberFilter
	// Thrash guard: entries scanned to build filters, reads answered by
	// them.
	scanned, saved int64
	hbuf           []uint64
}

func newKeyFilters(kv KVStore) *keyFilters {
	b, ok := kv.(KVCacheBudget)
	if !ok {
		return nil
	}
	bu := b.CacheBudget()
	if bu == nil || bu.limit <= 0 {
		return nil
	}
	return &keyFilters{budget: bu, seed: maphash.MakeSeed(), m: make(map[string]*memberFilter)}
}

// get returns the filter of prefix p, or nil.
func (k *keyFilters) get(p []byte) *memberFilter {
	if k.last != nil && bytes.Equal(k.lastKey, p) {
		return k.last
	}
	f := k.m[string(p)]
	if f != nil {
		k.last, k.lastKey = f, append(k.lastKey[:0], p...)
	}
	return f
}

// mayLoad reports whether building a filter is worth a scan (the thrash
// guard).
func (k *keyFilters) mayLoad() bool { return k.scanned <= 4*k.saved+4096 }

// build makes the filter of prefix p from the hashes of its entries and
// keeps it if the budget allows; it returns the filter either way.
func (k *keyFilters) build(p []byte, hashes []uint64, entries *kvCache) *memberFilter {
	k.scanned += int64(len(hashes)) + 1
	f := newMemberFilter(2*len(hashes) + 16)
	if f.size(len(p)) > k.budget.limit/4 {
		f = &memberFilter{tooBig: true, n: len(hashes)}
	} else {
		for _, h := range hashes {
			f.add(h)
		}
	}
	k.put(p, f, entries)
	return f
}

// put stores f as the filter of p, making room in the budget: first the
// table's cached entries, then its other filters down to the floor.
func (k *keyFilters) put(p []byte, f *memberFilter, entries *kvCache) {
	k.drop(p)
	size := f.size(len(p))
	if f.tooBig {
		size = int64(len(p)) + filterOverhead
	}
	b := k.budget
	for b.used+size > b.limit && entries.bytes > 0 {
		entries.evict()
	}
	floor := b.limit / 16
	for b.used+size > b.limit && k.bytes+size > floor && len(k.m) > 0 {
		k.evict()
	}
	if b.used+size > b.limit && k.bytes+size > floor {
		return // the other tables hold the budget: f serves this call only
	}
	k.m[string(p)] = f
	k.bytes += size
	b.used += size
	k.last, k.lastKey = f, append(k.lastKey[:0], p...)
}

func (k *keyFilters) sizeOf(key string, f *memberFilter) int64 {
	if f.tooBig {
		return int64(len(key)) + filterOverhead
	}
	return f.size(len(key))
}

// drop removes the filter of p.
func (k *keyFilters) drop(p []byte) {
	f, ok := k.m[string(p)]
	if !ok {
		return
	}
	k.release(string(p), f)
}

func (k *keyFilters) release(key string, f *memberFilter) {
	delete(k.m, key)
	size := k.sizeOf(key, f)
	k.bytes -= size
	k.budget.used -= size
	if k.last == f {
		k.last, k.lastKey = nil, k.lastKey[:0]
	}
}

// grow adds a layer to the full filter f of prefix p, or drops f when it
// has all its layers or would outgrow its share of the budget (the next
// Get rebuilds it by a scan, as one layer, or marks the key as not
// filtered).
func (k *keyFilters) grow(p []byte, f *memberFilter, entries *kvCache) {
	add := int64(16 * len(f.words))
	if len(f.older) >= filterLayers-1 || f.size(len(p))+add > k.budget.limit/4 {
		k.drop(p)
		return
	}
	f.older = append(f.older, f.words)
	f.words, f.last = make([]uint64, 2*len(f.words)), 0
	k.bytes += add
	k.budget.used += add
	for k.budget.used > k.budget.limit && entries.bytes > 0 {
		entries.evict()
	}
}

// evict drops about a quarter of the filters.
func (k *keyFilters) evict() {
	n := len(k.m)/4 + 1
	for key, f := range k.m {
		if n == 0 {
			break
		}
		k.release(key, f)
		n--
	}
}

// reset makes the filter of p empty (its map was cleared), if p has one
// or the budget has room.
func (k *keyFilters) reset(p []byte, entries *kvCache) {
	k.put(p, newMemberFilter(16), entries)
}

// clear drops every filter (a key group was cleared).
func (k *keyFilters) clear() {
	for key, f := range k.m {
		k.release(key, f)
	}
}

// Directories of the keys of a table.
//
// A key that has no data in the store costs a point read (value state) or
// a prefix scan (a map's membership filter, built at the key's first Get)
// to learn so, and every new key of an aggregation starts that way: a
// Pebble read walks the memtables and consults the filter of every
// sstable, a scan opens an iterator over all of them. So value and map
// tables keep a directory of their keys: a filter of the hashes of every
// key (value state: store key; map state: key prefix) that has data in
// the store or in the table's cache. A key it rules out is absent without
// a read; one it lets through (present, or a false positive) is read as
// before.
//
// Invariant: while the directory is on, it contains every key of the
// table in the store or in its cache. It is built when the table is
// opened, by a scan of the table's key groups (empty for a new job; a
// restored table's keys otherwise), and every write of a key not known
// adds it; deletions leave it (a deleted key only becomes a false
// positive). It grows by layers, each twice as large as the one before
// (16 bits per key at its capacity), so it never needs the keys again;
// past an eighth of the cache budget it is dropped (off), and the table
// reads as without it.
type keyDir struct {
	budget *CacheBudget // nil: off
	seed   maphash.Seed
	layers []*memberFilter
	bytes  int64
}

// dirFirstKeys is the capacity of a directory's first layer.
const dirFirstKeys = 1024

// tableKeys is the scan of newKeyDir over the keys of table name in the
// key groups r: every key under the table's prefix in each group.
func tableKeys(kv KVStore, r KeyGroupRange, name string) func(add func(key []byte) bool) error {
	return func(add func([]byte) bool) error {
		for kg := r.Start; kg < r.End; kg++ {
			p := KVPrefix(nil, kg, name)
			stop := false
			err := kv.Scan(p, prefixEnd(p), func(key, _ []byte) bool { stop = !add(key); return !stop })
			if err != nil || stop {
				return err
			}
		}
		return nil
	}
}

// newKeyDir returns the directory of a table over kv, built by scan, which
// calls add for every key in the store; nil when kv has no cache budget
// or the keys are too many.
func newKeyDir(kv KVStore, scan func(add func(key []byte) bool) error) (*keyDir, error) {
	b, ok := kv.(KVCacheBudget)
	if !ok {
		return nil, nil
	}
	bu := b.CacheBudget()
	if bu == nil || bu.limit <= 0 {
		return nil, nil
	}
	d := &keyDir{budget: bu, seed: maphash.MakeSeed()}
	var hs []uint64
	most := int(bu.limit / 16) // 2 bytes a key: an eighth of the budget
	err := scan(func(key []byte) bool {
		if len(hs) >= most {
			return false
		}
		hs = append(hs, maphash.Bytes(d.seed, key))
		return true
	})
	if err != nil {
		return nil, err
	}
	if len(hs) >= most || !d.grow(len(hs)+dirFirstKeys) {
		d.off()
		return nil, nil
	}
	for _, h := range hs {
		d.layers[0].add(h)
	}
	return d, nil
}

// grow adds a layer for n keys, if the budget share allows.
func (d *keyDir) grow(n int) bool {
	f := newMemberFilter(n)
	size := int64(8 * len(f.words))
	if d.bytes+size > d.budget.limit/8 {
		return false
	}
	d.layers = append(d.layers, f)
	d.bytes += size
	d.budget.used += size
	return true
}

// off drops the directory's layers: every key may have data.
func (d *keyDir) off() {
	d.budget.used -= d.bytes
	d.bytes = 0
	d.layers = nil
}

// mayHave reports whether key may have data (always, when off).
func (d *keyDir) mayHave(key []byte) bool {
	if d == nil || d.layers == nil {
		return true
	}
	return d.contains(maphash.Bytes(d.seed, key))
}

func (d *keyDir) contains(h uint64) bool {
	for _, f := range d.layers {
		if f.mayContain(h) {
			return true
		}
	}
	return false
}

// add records that key has data.
func (d *keyDir) add(key []byte) {
	if d == nil || d.layers == nil {
		return
	}
	h := maphash.Bytes(d.seed, key)
	if d.contains(h) {
		return
	}
	last := d.layers[len(d.layers)-1]
	if last.n >= last.capacity() {
		if !d.grow(2 * last.capacity()) {
			d.off()
			return
		}
		last = d.layers[len(d.layers)-1]
	}
	last.add(h)
}
