package state

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"

	"github.com/sluicehq/sluice/state/codec"
)

// ID sets: distinct sets of integer ids per key (IDSet), each id with a
// mask of up to eight tags (the FILTER clauses of COUNT(DISTINCT) over
// one column: Nexmark q15/q16 count distinct bidders in total and per
// price rank).
//
// The id space is cut into chunks of idChunkSize consecutive ids, and a
// set is stored as one state entry per chunk that holds any of its ids:
// the chunk's index (with the set of the key it belongs to, in its low
// 3 bits) is the user key, the chunk (a roaring-style container) the
// value. A chunk is sparse (its ids' offsets, sorted, and
// their tag masks: 3 bytes an id) until it holds more than idSparseMax
// ids, then dense (a bitmap of the chunk per tag in use: idChunkSize/8
// bytes a tag). Ids that arrive close together (auto-increment keys,
// the recent persons and auctions of Nexmark) share chunks, so that:
//
//   - a lookup is a small map's lookup and a bit test, not a probe of a
//     hash set of every id;
//   - in memory, the entries are those of a memMapTable (memmap.go) with
//     the chunk codec: change tracking is per entry, so a checkpoint
//     encodes the chunks that gained an id since the previous one (the
//     chunks near the frontier of the id space), and snapshots, merges
//     and restores are those of map state;
//   - over a KVStore (Pebble), a chunk is one store key,
//     KVPrefix(kg, name) ++ key ++ uvarint(chunk index) -> chunk bytes,
//     and the table keeps decoded chunks in a write-back cache
//     (kvIDSetTable below): an add to a cached chunk touches neither the
//     store nor the codecs, and a chunk changed by many adds is written
//     once per checkpoint (KVWriteBack) or eviction.
//
// Chunk encoding (self-delimiting):
//
//	sparse: 0 | count uvarint | per id: offset delta uvarint (from the
//	        previous offset; the first from 0) | tag mask byte
//	dense:  1 | tags byte (the tags with a bitmap) |
//	        per such tag, low to high: idChunkWords uint64 little-endian

const (
	idChunkBits  = 16
	idChunkSize  = 1 << idChunkBits // ids per chunk
	idChunkWords = idChunkSize / 64
	// idSparseMax is the most ids of a sparse chunk: 768 bytes, the size
	// of the dense form with one and a half tags.
	idSparseMax = 1024
)

// idChunk is the container of one chunk of ids: sparse (ids) or dense.
type idChunk struct {
	// ids (sparse): per id its offset in the chunk << 8 | its tag mask,
	// sorted.
	ids   []uint32
	dense *idDense
}

// idDense is a dense chunk: one bitmap per tag in use.
type idDense struct {
	present uint8 // the tags with a bitmap
	bits    [8]*[idChunkWords]uint64
}

// get returns the tag mask of offset off (0: absent).
func (c *idChunk) get(off uint16) uint8 {
	if d := c.dense; d != nil {
		var m uint8
		w, b := off>>6, uint64(1)<<(off&63)
		for p := d.present; p != 0; p &= p - 1 {
			t := bits.TrailingZeros8(p)
			if d.bits[t][w]&b != 0 {
				m |= 1 << t
			}
		}
		return m
	}
	if i, ok := c.find(off); ok {
		return uint8(c.ids[i])
	}
	return 0
}

// find returns the index of offset off in a sparse chunk, or where it
// goes, and whether it is there. The ids that arrive are mostly the
// newest (Nexmark's hot bidders and auctions, auto-increment keys): the
// last few entries, one cache line, are tried first, from the end, and
// only then the rest by binary search.
func (c *idChunk) find(off uint16) (int, bool) {
	x := uint32(off) << 8
	ids := c.ids
	hi := len(ids)
	for lo := max(hi-idTail, 0); hi > lo; hi-- {
		switch y := ids[hi-1] &^ 0xff; {
		case y == x:
			return hi - 1, true
		case y < x:
			return hi, false
		}
	}
	lo := 0
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ids[m] < x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(ids) && ids[lo]&^0xff == x
}

// idTail is how many of a sparse chunk's last ids find tries before its
// binary search.
const idTail = 8

// add adds the tags of mask (non-zero) to offset off and returns its mask
// before, with one search of a sparse chunk.
func (c *idChunk) add(off uint16, mask uint8) uint8 {
	if d := c.dense; d != nil {
		before := c.get(off)
		for p := mask &^ before; p != 0; p &= p - 1 {
			t := bits.TrailingZeros8(p)
			if d.bits[t] == nil {
				d.bits[t] = new([idChunkWords]uint64)
				d.present |= 1 << t
			}
			d.bits[t][off>>6] |= 1 << (off & 63)
		}
		return before
	}
	i, ok := c.find(off)
	if ok {
		before := uint8(c.ids[i])
		c.ids[i] |= uint32(mask)
		return before
	}
	if len(c.ids) >= idSparseMax {
		c.toDense()
		return c.add(off, mask)
	}
	if i == len(c.ids) {
		c.ids = append(c.ids, uint32(off)<<8|uint32(mask))
	} else {
		c.ids = slices.Insert(c.ids, i, uint32(off)<<8|uint32(mask))
	}
	return 0
}

// toDense turns a sparse chunk dense.
func (c *idChunk) toDense() {
	d := &idDense{}
	for _, x := range c.ids {
		off := x >> 8
		for p := uint8(x); p != 0; p &= p - 1 {
			t := bits.TrailingZeros8(p)
			if d.bits[t] == nil {
				d.bits[t] = new([idChunkWords]uint64)
				d.present |= 1 << t
			}
			d.bits[t][off>>6] |= 1 << (off & 63)
		}
	}
	c.ids, c.dense = nil, d
}

// memSize approximates the bytes the chunk holds, for cache budgets.
func (c *idChunk) memSize() int64 {
	if c.dense != nil {
		return 80 + int64(bits.OnesCount8(c.dense.present))*idChunkWords*8
	}
	return 32 + int64(cap(c.ids))*4
}

// empty reports whether the chunk holds no id.
func (c *idChunk) empty() bool { return c.dense == nil && len(c.ids) == 0 }

// appendIDChunk appends the encoding of c.
func appendIDChunk(dst []byte, c *idChunk) []byte {
	if d := c.dense; d != nil {
		dst = append(dst, 1, d.present)
		for p := d.present; p != 0; p &= p - 1 {
			for _, w := range d.bits[bits.TrailingZeros8(p)] {
				dst = binary.LittleEndian.AppendUint64(dst, w)
			}
		}
		return dst
	}
	dst = append(dst, 0)
	dst = binary.AppendUvarint(dst, uint64(len(c.ids)))
	// At most 3 bytes of offset delta (< 2^16) and the mask per id: grow
	// once and write in place.
	at := len(dst)
	dst = slices.Grow(dst, 4*len(c.ids))[:at+4*len(c.ids)]
	prev := uint32(0)
	for _, x := range c.ids {
		d := x>>8 - prev
		prev = x >> 8
		for d >= 0x80 {
			dst[at] = byte(d) | 0x80
			d >>= 7
			at++
		}
		dst[at], dst[at+1] = byte(d), uint8(x)
		at += 2
	}
	return dst[:at]
}

// decode sets c to the chunk encoded at the start of src, reusing c's
// sparse slices, and returns the bytes it used.
func (c *idChunk) decode(src []byte) (int, error) {
	if len(src) < 1 {
		return 0, fmt.Errorf("id chunk: %w", codec.ErrShort)
	}
	switch src[0] {
	case 0:
		n, k := binary.Uvarint(src[1:])
		if k <= 0 || n > idChunkSize {
			return 0, fmt.Errorf("%w: id chunk count", ErrCorruptSnapshot)
		}
		at := 1 + k
		c.ids, c.dense = c.ids[:0], nil
		off := uint64(0)
		for i := range n {
			d, k := binary.Uvarint(src[at:])
			if k <= 0 || at+k >= len(src) || (i > 0 && d == 0) {
				return 0, fmt.Errorf("%w: id chunk offset", ErrCorruptSnapshot)
			}
			if off += d; off >= idChunkSize {
				return 0, fmt.Errorf("%w: id chunk offset %d", ErrCorruptSnapshot, off)
			}
			c.ids = append(c.ids, uint32(off)<<8|uint32(src[at+k]))
			at += k + 1
		}
		return at, nil
	case 1:
		if len(src) < 2 {
			return 0, fmt.Errorf("id chunk: %w", codec.ErrShort)
		}
		d := &idDense{present: src[1]}
		at := 2
		for p := d.present; p != 0; p &= p - 1 {
			if len(src)-at < idChunkWords*8 {
				return 0, fmt.Errorf("id chunk bitmap: %w", codec.ErrShort)
			}
			b := new([idChunkWords]uint64)
			for i := range b {
				b[i] = binary.LittleEndian.Uint64(src[at+8*i:])
			}
			d.bits[bits.TrailingZeros8(p)] = b
			at += idChunkWords * 8
		}
		c.ids, c.dense = nil, d
		return at, nil
	}
	return 0, fmt.Errorf("%w: id chunk kind %d", ErrCorruptSnapshot, src[0])
}

func decodeIDChunk(src []byte) (*idChunk, int, error) {
	c := &idChunk{}
	n, err := c.decode(src)
	if err != nil {
		return nil, 0, err
	}
	return c, n, nil
}

// The codecs of the in-memory table: the chunk, and the map of a key's
// chunks (full snapshots).
var (
	idChunkCodec    = codec.Func(appendIDChunk, decodeIDChunk)
	idChunkMapCodec = codec.Func(appendIDChunkMap, decodeIDChunkMap)
	idChunkKeyCodec = codec.Func(codec.AppendInt64, codec.DecodeInt64)
)

func appendIDChunkMap(dst []byte, m map[int64]*idChunk) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(m)))
	for ci, c := range m {
		dst = codec.AppendInt64(dst, ci)
		dst = appendIDChunk(dst, c)
	}
	return dst
}

func decodeIDChunkMap(src []byte) (map[int64]*idChunk, int, error) {
	n, at := binary.Uvarint(src)
	if at <= 0 || n > uint64(len(src)) {
		return nil, 0, fmt.Errorf("%w: id chunk map count", ErrCorruptSnapshot)
	}
	m := make(map[int64]*idChunk, n)
	for range n {
		ci, k, err := codec.DecodeInt64(src[at:])
		if err != nil {
			return nil, 0, err
		}
		c, l, err := decodeIDChunk(src[at+k:])
		if err != nil {
			return nil, 0, err
		}
		m[ci] = c
		at += k + l
	}
	return m, at, nil
}

// touchEntry marks entry uk of key k, whose value (a pointer, stored
// under uk) was changed in place, as changed since the last snapshot: a
// putEntry that skips the store in the key's map and the change already
// recorded this interval (the common case of a busy chunk).
func (t *memMapTable[K, UK, V]) touchEntry(kg int, k K, uk UK) {
	if !t.track {
		return
	}
	e := t.entry(kg, k)
	if e.whole {
		return // the key's entries are all written
	}
	if _, ok := e.dirty[uk]; ok {
		return // its current value is what the snapshot encodes
	}
	t.markEntry(kg, k, e, uk) // the snapshot reads v from the key's map
}

// idSetDescriptor is the TableDescriptor of ID sets.
type idSetDescriptor[K comparable] struct{ name string }

func (d idSetDescriptor[K]) Name() string { return d.name }

func (d idSetDescriptor[K]) NewMemoryTable(r KeyGroupRange) Table {
	t := &memMapTable[K, int64, *idChunk]{name: d.name, groups: r, keys: make([]map[K]*memMapKey[int64, *idChunk], r.Len())}
	mt := &memIDSetTable[K]{memMapTable: t, ctr: memIDSetCounters{epoch: 1}}
	kc, err := codec.For[K]()
	if err != nil {
		t.codecErr = fmt.Errorf("state table %q key: %w", d.name, err)
		return mt
	}
	t.kc, t.ukc, t.vc, t.mc = kc, idChunkKeyCodec, idChunkCodec, idChunkMapCodec
	return mt
}

// memIDSetTable is the in-memory table of ID sets: the map state of
// chunks, with two counters for IDCursors. The epoch changes whenever a
// chunk that a cursor holds may no longer be the table's chunk of its key
// and index (a key or key group replaced, removed or restored): a cursor
// of an older epoch is not used. The generation changes whenever the
// changes tracked so far are forgotten (a checkpoint): a cursor of an
// older generation keeps its chunks but records their next change again.
type memIDSetTable[K comparable] struct {
	*memMapTable[K, int64, *idChunk]
	ctr memIDSetCounters
}

// memIDSetCounters are the epoch and generation of a memIDSetTable.
type memIDSetCounters struct{ epoch, gen uint64 }

func (t *memIDSetTable[K]) ClearKeyGroup(kg int) {
	t.ctr.epoch++
	t.memMapTable.ClearKeyGroup(kg)
}

func (t *memIDSetTable[K]) Put(kg int, k K, v map[int64]*idChunk) {
	t.ctr.epoch++
	t.memMapTable.Put(kg, k, v)
}

func (t *memIDSetTable[K]) Delete(kg int, k K) {
	t.ctr.epoch++
	t.memMapTable.Delete(kg, k)
}

func (t *memIDSetTable[K]) setTracking(on bool) {
	t.ctr.gen++
	t.memMapTable.setTracking(on)
}

func (t *memIDSetTable[K]) clearChanges() {
	t.ctr.gen++
	t.memMapTable.clearChanges()
}

func (t *memIDSetTable[K]) applyChanges(kg int, body []byte) error {
	t.ctr.epoch++
	return t.memMapTable.applyChanges(kg, body)
}

func (t *memIDSetTable[K]) decodeKeyGroup(kg int, src []byte) error {
	t.ctr.epoch++
	return t.memMapTable.decodeKeyGroup(kg, src)
}

// IDCursor remembers, for one key of an in-memory ID set, the chunk that
// each of sets 0 and 1 used last and whether its change is recorded for
// the next checkpoint, so that an add to the same chunk (the newest ids,
// the common case) skips the lookups of the key and of the chunk in its
// map: see IDSet.AddAt. It is a cache: it belongs to one key of one ID
// set, is checked against the table's epoch and generation on every use,
// and encodes as nothing (MarshalBinary), so that it can live in the
// key's own value state, where the caller finds it with the key's other
// state.
type IDCursor struct {
	owner      *memIDSetCounters // the counters of the cursor's table
	epoch, gen uint64
	sets       [idCursorSets]idCursorSet
}

// idCursorSets is the number of sets an IDCursor caches (0 and 1).
const idCursorSets = 2

type idCursorSet struct {
	ci      int64
	c       *idChunk
	touched bool // c's change is recorded for the next checkpoint
}

// MarshalBinary implements encoding.BinaryMarshaler: a cursor is not
// state, its encoding is empty.
func (IDCursor) MarshalBinary() ([]byte, error) { return nil, nil }

// UnmarshalBinary implements encoding.BinaryUnmarshaler: a decoded cursor
// is empty.
func (c *IDCursor) UnmarshalBinary([]byte) error {
	*c = IDCursor{}
	return nil
}

func (d idSetDescriptor[K]) NewKVTable(kv KVStore, r KeyGroupRange) (Table, error) {
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
	t := &kvIDSetTable[K]{name: d.name, groups: r, kv: kv, kc: kc}
	if b, ok := kv.(KVCacheBudget); ok {
		if bu := b.CacheBudget(); bu != nil && bu.limit > 0 {
			t.budget, t.m = bu, make(map[idRef[K]]*kvIDChunk)
		}
	}
	if t.budget != nil {
		t.dir, err = newKeyDir(kv, tableKeys(kv, r, d.name))
		if err != nil {
			return nil, fmt.Errorf("state table %q: %w", d.name, err)
		}
	}
	return t, nil
}

// IDSet is up to eight sets of int64 ids per key (set 0-7: the distinct
// values of up to eight columns), each id with a mask of up to eight tags
// (tag i for the i-th FILTER of a COUNT(DISTINCT) over the column), that
// costs a few bits per id when the ids are dense (see the layout above).
// An id is in a set when its mask is not zero. Like the other handles it
// acts on the current key of its Keyed context.
type IDSet[K comparable] struct {
	c   *Keyed[K]
	mem *memIDSetTable[K] // in memory
	kv  *kvIDSetTable[K]  // on a KVStore
}

// NewIDSet opens the ID set state called name.
func NewIDSet[K comparable](c *Keyed[K], name string) (*IDSet[K], error) {
	t, err := c.backend.Open(idSetDescriptor[K]{name: name})
	if err != nil {
		return nil, fmt.Errorf("id set state %q: %w", name, err)
	}
	switch tt := t.(type) {
	case *memIDSetTable[K]:
		if tt.codecErr != nil {
			return nil, fmt.Errorf("id set state: %w", tt.codecErr)
		}
		return &IDSet[K]{c: c, mem: tt}, nil
	case *kvIDSetTable[K]:
		return &IDSet[K]{c: c, kv: tt}, nil
	}
	return nil, fmt.Errorf("id set state %q: %w", name, ErrTypeMismatch)
}

// idSplit returns the index of the chunk of id in set (the user key of
// the chunk: the chunk of the id space and the set, in the low 3 bits)
// and id's offset in it.
func idSplit(set int, id int64) (chunk int64, off uint16) {
	return int64(uint64(id)>>idChunkBits<<3 | uint64(set&7)), uint16(uint64(id) & (idChunkSize - 1))
}

// Add adds the tags of mask to id in set (0-7) of the current key and
// returns id's mask before: zero when id was not in the set. A zero mask
// adds nothing.
func (s *IDSet[K]) Add(set int, id int64, mask uint8) uint8 {
	ci, off := idSplit(set, id)
	if s.kv != nil {
		return s.kv.add(s.c.kg, s.c.key, ci, off, mask)
	}
	c, _ := s.mem.getEntry(s.c.kg, s.c.key, ci)
	if c != nil {
		if mask == 0 {
			return c.get(off)
		}
		before := c.add(off, mask)
		if before|mask != before {
			s.mem.touchEntry(s.c.kg, s.c.key, ci)
		}
		return before
	}
	if mask == 0 {
		return 0
	}
	c = &idChunk{}
	c.add(off, mask)
	s.mem.putEntry(s.c.kg, s.c.key, ci, c)
	return 0
}

// AddAt is Add through cur, the IDCursor of the current key (kept with
// the key's other state; a zero cursor is fine): an add to the chunk that
// the same set used last, since the last checkpoint, costs the chunk's
// own search only. Sets other than 0 and 1, and ID sets on a KVStore,
// ignore cur.
func (s *IDSet[K]) AddAt(cur *IDCursor, set int, id int64, mask uint8) uint8 {
	t := s.mem
	if t == nil || uint(set) >= idCursorSets || mask == 0 {
		return s.Add(set, id, mask)
	}
	if cur.owner != &t.ctr || cur.epoch != t.ctr.epoch {
		*cur = IDCursor{owner: &t.ctr, epoch: t.ctr.epoch, gen: t.ctr.gen}
	} else if cur.gen != t.ctr.gen {
		cur.gen = t.ctr.gen
		for i := range cur.sets {
			cur.sets[i].touched = false
		}
	}
	ci, off := idSplit(set, id)
	cs := &cur.sets[set]
	if cs.c == nil || cs.ci != ci {
		c, _ := t.getEntry(s.c.kg, s.c.key, ci)
		if c == nil {
			c = &idChunk{}
			c.add(off, mask)
			t.putEntry(s.c.kg, s.c.key, ci, c) // records the change
			*cs = idCursorSet{ci: ci, c: c, touched: true}
			return 0
		}
		*cs = idCursorSet{ci: ci, c: c}
	}
	before := cs.c.add(off, mask)
	if before|mask != before && !cs.touched {
		t.touchEntry(s.c.kg, s.c.key, ci)
		cs.touched = true
	}
	return before
}

// Tags returns the mask of id in set (0-7) of the current key (zero: not
// in the set).
func (s *IDSet[K]) Tags(set int, id int64) uint8 {
	ci, off := idSplit(set, id)
	if s.kv != nil {
		return s.kv.tags(s.c.kg, s.c.key, ci, off)
	}
	if c, _ := s.mem.getEntry(s.c.kg, s.c.key, ci); c != nil {
		return c.get(off)
	}
	return 0
}

// Clear empties the current key's set.
func (s *IDSet[K]) Clear() {
	if s.kv != nil {
		s.kv.clearKey(s.c.kg, s.c.key)
		return
	}
	s.mem.Delete(s.c.kg, s.c.key)
}
