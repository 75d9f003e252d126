package state

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/sluicehq/sluice/state/codec"
)

// In-memory slots state (NewSlots on the memory backend) with changes
// logged as they are made.
//
// A change body of a slots table has the layout of map state's
// (memmap.go), the slot index (a uvarint) as the user key, so that
// MergeChanges folds it without the codecs:
//
//	op 2 (entries) | key bytes | group: count | per slot: op (0 put,
//	                 1 delete) | slot bytes | value bytes (put only)
//	op 1 (delete)  | key bytes                 the key's slots all go
//
// The head of a key is the put of slot MaxSlots (a user key no slot has).
// With change tracking on, every Set, Delete and Clear appends its op to
// its key group's log at once (a group of one slot); the increment of a
// key group is its log, in order, then the heads set in the interval,
// encoded at the barrier (a head changes with most records: logging it
// every time would cost more), then, for the keys that went whole
// (written more than slotsWholeAfter times their slots in the
// interval), a deletion and a group of the head and every slot set:
// applied in order, later ops win. A full body (reset) holds one group
// per key.

// slotsWholeAfter bounds the ops a key logs in one interval: past
// slotsWholeAfter times its slots set, plus slotsWholeAfter, it is encoded
// whole at the barrier instead.
const slotsWholeAfter = 2

// headSlot is the user key of a key's head in change bodies.
const headSlot = MaxSlots

// memSlotsKey is the head and slots of one key.
type memSlotsKey[H, V any] struct {
	head    H
	hasHead bool
	vals    []V
	mask    uint64
	// headGen is the generation (interval) in which the head was last
	// listed for the barrier.
	headGen uint32
	// With change tracking: gen is the generation (interval) writes
	// counts in, whole whether the key is listed to be encoded whole at
	// the barrier (in that generation).
	gen    uint32
	writes int32
	whole  bool
}

type memSlotsTable[K comparable, H, V any] struct {
	name   string
	groups KeyGroupRange
	keys   []map[K]*memSlotsKey[H, V]
	n      int // slots and heads set over every key
	// capacity is the room a key's new array of slots has.
	capacity int
	// The key looked up last (handles act on the current key, several
	// calls in a row).
	last   *memSlotsKey[H, V]
	lastK  K
	lastKG int
	// Change tracking, per key group: the log of ops since the last
	// snapshot and their number, the keys whose head was set, the keys to
	// encode whole, and whether the key group was cleared as a whole
	// (then the body is full).
	track bool
	gen   uint32
	logs  [][]byte
	ops   []int
	heads [][]K
	whole [][]K
	reset []bool
	// Codecs (codecs).
	codecErr error
	kc       codec.Codec[K]
	hc       codec.Codec[H]
	vc       codec.Codec[V]
	sc       codec.Codec[slotsValue[H, V]]
	ke       *prefixedEncoder[K]
	he       *prefixedEncoder[H]
	ve       *prefixedEncoder[V]
	// guess is the length of the last group's length prefix.
	guess int
}

func newMemSlotsTable[K comparable, H, V any](name string, r KeyGroupRange) *memSlotsTable[K, H, V] {
	return &memSlotsTable[K, H, V]{name: name, groups: r, keys: make([]map[K]*memSlotsKey[H, V], r.Len()), capacity: 4, guess: 1}
}

func (t *memSlotsTable[K, H, V]) Name() string             { return t.name }
func (t *memSlotsTable[K, H, V]) KeyGroups() KeyGroupRange { return t.groups }

// Len returns the number of slots and heads set (not keys), as map state
// counts entries: what an increment's ops are weighed against.
func (t *memSlotsTable[K, H, V]) Len() int { return t.n }

func (t *memSlotsTable[K, H, V]) ClearKeyGroup(kg int) {
	i := kg - t.groups.Start
	for _, e := range t.keys[i] {
		t.n -= e.entries()
	}
	t.keys[i] = nil
	t.last = nil
	if t.track {
		t.reset[i] = true
		t.logs[i] = t.logs[i][:0]
		t.ops[i] = 0
		t.heads[i] = t.heads[i][:0]
		t.whole[i] = t.whole[i][:0]
	}
}

// codecs makes the codecs on first use.
func (t *memSlotsTable[K, H, V]) codecs() error {
	if t.kc != nil || t.codecErr != nil {
		return t.codecErr
	}
	kc, err := codec.For[K]()
	if err != nil {
		t.codecErr = fmt.Errorf("state table %q key: %w", t.name, err)
		return t.codecErr
	}
	hc, err := codec.For[H]()
	if err != nil {
		t.codecErr = fmt.Errorf("state table %q head: %w", t.name, err)
		return t.codecErr
	}
	vc, err := codec.For[V]()
	if err != nil {
		t.codecErr = fmt.Errorf("state table %q value: %w", t.name, err)
		return t.codecErr
	}
	sc, err := codec.For[slotsValue[H, V]]()
	if err != nil {
		t.codecErr = fmt.Errorf("state table %q value: %w", t.name, err)
		return t.codecErr
	}
	t.kc, t.hc, t.vc, t.sc = kc, hc, vc, sc
	t.ke, t.he, t.ve = newPrefixedEncoder(kc), newPrefixedEncoder(hc), newPrefixedEncoder(vc)
	return nil
}

// lookup returns the slots of key k, or nil.
func (t *memSlotsTable[K, H, V]) lookup(kg int, k K) *memSlotsKey[H, V] {
	if t.last != nil && t.lastKG == kg && t.lastK == k {
		return t.last
	}
	e := t.keys[kg-t.groups.Start][k]
	if e != nil {
		t.last, t.lastK, t.lastKG = e, k, kg
	}
	return e
}

// entries is the number of slots and heads of e.
func (e *memSlotsKey[H, V]) entries() int {
	n := bits.OnesCount64(e.mask)
	if e.hasHead {
		n++
	}
	return n
}

// entry returns the slots of key k, created if needed.
func (t *memSlotsTable[K, H, V]) entry(kg int, k K) *memSlotsKey[H, V] {
	if e := t.lookup(kg, k); e != nil {
		return e
	}
	i := kg - t.groups.Start
	if t.keys[i] == nil {
		t.keys[i] = make(map[K]*memSlotsKey[H, V])
	}
	e := &memSlotsKey[H, V]{}
	t.keys[i][k] = e
	t.last, t.lastK, t.lastKG = e, k, kg
	return e
}

func (t *memSlotsTable[K, H, V]) setHead(kg int, k K, h H) {
	e := t.entry(kg, k)
	e.head = h
	if !e.hasHead {
		e.hasHead = true
		t.n++
	}
	if t.track && e.headGen != t.gen {
		i := kg - t.groups.Start
		if !t.reset[i] {
			e.headGen = t.gen
			t.heads[i] = append(t.heads[i], k)
		}
	}
}

func (t *memSlotsTable[K, H, V]) set(kg int, k K, slot int, v V) {
	e := t.entry(kg, k)
	if slot >= len(e.vals) {
		if slot >= cap(e.vals) {
			vals := make([]V, slot+1, max(slot+1, 2*cap(e.vals), t.capacity))
			copy(vals, e.vals)
			e.vals = vals
		}
		e.vals = e.vals[:slot+1]
	}
	e.vals[slot] = v
	if e.mask&(1<<slot) == 0 {
		e.mask |= 1 << slot
		t.n++
	}
	if t.track && t.logOp(kg, k, e) {
		t.logSlot(kg, k, slot, &e.vals[slot], false)
	}
}

func (t *memSlotsTable[K, H, V]) delete(kg int, k K, slot int) {
	e := t.lookup(kg, k)
	if e == nil || e.mask&(1<<slot) == 0 {
		return
	}
	var zero V
	e.vals[slot] = zero
	e.mask &^= 1 << slot
	t.n--
	e.vals = e.vals[:slotsLen(e.mask)]
	if t.track && t.logOp(kg, k, e) {
		t.logSlot(kg, k, slot, nil, true)
	}
	if e.mask == 0 && !e.hasHead {
		t.remove(kg, k)
	}
}

func (t *memSlotsTable[K, H, V]) clearKey(kg int, k K) {
	e := t.lookup(kg, k)
	if e == nil {
		return
	}
	t.n -= e.entries()
	var zero H
	e.mask, e.vals, e.head, e.hasHead = 0, nil, zero, false
	if t.track && t.logOp(kg, k, e) {
		i := kg - t.groups.Start
		t.logs[i] = append(t.logs[i], opDelete)
		t.logs[i] = t.ke.append(t.logs[i], k)
		t.ops[i]++
	}
	t.remove(kg, k)
}

// remove drops key k, whose slots are all empty.
func (t *memSlotsTable[K, H, V]) remove(kg int, k K) {
	delete(t.keys[kg-t.groups.Start], k)
	t.last = nil
}

// logOp counts an op of key k (its slots e) in the current interval and
// reports whether it goes to the log: not when the key group is reset or
// the key is (or goes now) whole.
func (t *memSlotsTable[K, H, V]) logOp(kg int, k K, e *memSlotsKey[H, V]) bool {
	i := kg - t.groups.Start
	if t.reset[i] {
		return false
	}
	if e.gen != t.gen {
		e.gen, e.writes, e.whole = t.gen, 0, false
	}
	if e.whole {
		return false
	}
	e.writes++
	if int(e.writes) > slotsWholeAfter*(bits.OnesCount64(e.mask)+1) {
		e.whole = true
		t.whole[i] = append(t.whole[i], k)
		return false
	}
	return true
}

// logSlot appends to key group kg's log the change of slot of key k: the
// put of *v, or its deletion.
func (t *memSlotsTable[K, H, V]) logSlot(kg int, k K, slot int, v *V, del bool) {
	i := kg - t.groups.Start
	log := append(t.logs[i], opEntries)
	log = t.ke.append(log, k)
	log, at := t.beginGroup(log)
	log = append(log, 1) // one slot
	log = appendSlotOp(log, slot, del)
	if !del {
		log = t.ve.append(log, *v)
	}
	t.logs[i] = t.endGroup(log, at)
	t.ops[i]++
}

// beginGroup reserves the length prefix of a group (t.guess bytes, the
// length of the last one) and returns its offset for endGroup.
func (t *memSlotsTable[K, H, V]) beginGroup(dst []byte) ([]byte, int) {
	at := len(dst)
	for range t.guess {
		dst = append(dst, 0)
	}
	return dst, at
}

// endGroup writes the length of the group begun at at, moving it when
// the length takes another number of bytes than reserved.
func (t *memSlotsTable[K, H, V]) endGroup(dst []byte, at int) []byte {
	n := len(dst) - at - t.guess
	need := codec.UvarintLen(uint64(n))
	if need != t.guess {
		for range need - t.guess {
			dst = append(dst, 0)
		}
		copy(dst[at+need:], dst[at+t.guess:at+t.guess+n])
		dst = dst[:at+need+n]
		t.guess = need
	}
	binary.PutUvarint(dst[at:], uint64(n))
	return dst
}

// appendSlotOp appends the op and the slot (its user key) of a slot's
// change.
func appendSlotOp(dst []byte, slot int, del bool) []byte {
	op := byte(opPut)
	if del {
		op = opDelete
	}
	return append(dst, op, 1, byte(slot)) // slot <= 64: a one-byte uvarint
}

// appendKeySlots appends the entries op of key k: its head and every
// slot set of e.
func (t *memSlotsTable[K, H, V]) appendKeySlots(dst []byte, k K, e *memSlotsKey[H, V]) []byte {
	dst = append(dst, opEntries)
	dst = t.ke.append(dst, k)
	dst, at := t.beginGroup(dst)
	dst = binary.AppendUvarint(dst, uint64(e.entries()))
	if e.hasHead {
		dst = appendSlotOp(dst, headSlot, false)
		dst = t.he.append(dst, e.head)
	}
	for m := e.mask; m != 0; m &= m - 1 {
		s := bits.TrailingZeros64(m)
		dst = appendSlotOp(dst, s, false)
		dst = t.ve.append(dst, e.vals[s])
	}
	return t.endGroup(dst, at)
}

// Change tracking (memdelta.go).

func (t *memSlotsTable[K, H, V]) setTracking(on bool) {
	t.track = on
	if on && t.logs == nil {
		n := t.groups.Len()
		t.logs, t.ops, t.reset = make([][]byte, n), make([]int, n), make([]bool, n)
		t.heads, t.whole = make([][]K, n), make([][]K, n)
		t.gen = 1
	}
}

func (t *memSlotsTable[K, H, V]) changed() int {
	n := 0
	for i := range t.logs {
		if t.reset[i] {
			for _, e := range t.keys[i] {
				n += e.entries()
			}
			continue
		}
		n += t.ops[i] + len(t.heads[i])
		for _, k := range t.whole[i] {
			n++
			if e := t.keys[i][k]; e != nil {
				n += e.entries()
			}
		}
	}
	return n
}

// clearChanges starts a new interval; the logs keep their storage.
func (t *memSlotsTable[K, H, V]) clearChanges() {
	for i := range t.logs {
		t.logs[i] = t.logs[i][:0]
		t.ops[i] = 0
		clear(t.heads[i])
		t.heads[i] = t.heads[i][:0]
		clear(t.whole[i])
		t.whole[i] = t.whole[i][:0]
		t.reset[i] = false
	}
	if t.gen++; t.gen == 0 {
		// Wrapped: every key's count becomes older than generation 1.
		for _, keys := range t.keys {
			for _, e := range keys {
				e.gen, e.headGen = 0, 0
			}
		}
		t.gen = 1
	}
}

func (t *memSlotsTable[K, H, V]) appendChanges(dst []byte, kg int, full bool) ([]byte, error) {
	if err := t.codecs(); err != nil {
		return nil, err
	}
	defer t.ke.done()
	defer t.he.done()
	defer t.ve.done()
	i := kg - t.groups.Start
	keys := t.keys[i]
	if full || (t.reset != nil && t.reset[i]) {
		if len(keys) == 0 && full {
			return dst, nil
		}
		dst = append(dst, changeReset|changeEntries)
		dst = binary.AppendUvarint(dst, uint64(len(keys)))
		for k, e := range keys {
			dst = t.appendKeySlots(dst, k, e)
		}
		return dst, nil
	}
	if t.logs == nil || t.ops[i]+len(t.heads[i])+len(t.whole[i]) == 0 {
		return dst, nil
	}
	ops := t.ops[i]
	for _, k := range t.heads[i] {
		if e := keys[k]; e != nil && e.hasHead {
			ops++
		}
	}
	for _, k := range t.whole[i] {
		ops++ // the deletion
		if keys[k] != nil {
			ops++
		}
	}
	dst = append(dst, changeEntries)
	dst = binary.AppendUvarint(dst, uint64(ops))
	dst = append(dst, t.logs[i]...)
	for _, k := range t.heads[i] {
		if e := keys[k]; e != nil && e.hasHead {
			dst = append(dst, opEntries)
			dst = t.ke.append(dst, k)
			var at int
			dst, at = t.beginGroup(dst)
			dst = append(dst, 1)
			dst = appendSlotOp(dst, headSlot, false)
			dst = t.he.append(dst, e.head)
			dst = t.endGroup(dst, at)
		}
	}
	for _, k := range t.whole[i] {
		dst = append(dst, opDelete)
		dst = t.ke.append(dst, k)
		if e := keys[k]; e != nil {
			dst = t.appendKeySlots(dst, k, e)
		}
	}
	return dst, nil
}

func (t *memSlotsTable[K, H, V]) applyChanges(kg int, body []byte) error {
	if err := t.codecs(); err != nil {
		return err
	}
	i := kg - t.groups.Start
	t.last = nil
	drop := func(k K) {
		if e := t.keys[i][k]; e != nil {
			t.n -= e.entries()
			delete(t.keys[i], k)
		}
	}
	reset := func() {
		for _, e := range t.keys[i] {
			t.n -= e.entries()
		}
		t.keys[i] = nil
	}
	err := walkBody(body, true, reset, func(ce changeEntry) error {
		k, n, err := t.kc.Decode(ce.key)
		if err != nil || n != len(ce.key) {
			return fmt.Errorf("key: %w", corruptOr(err))
		}
		switch ce.op {
		case opDelete:
			drop(k)
			return nil
		case opPut:
			return fmt.Errorf("%w: a whole value in slots state", ErrCorruptSnapshot)
		}
		e := t.keys[i][k]
		if e == nil {
			e = &memSlotsKey[H, V]{}
		}
		before := e.entries()
		err = walkGroup(ce.value, func(del bool, ub, vb []byte) error {
			s, n := binary.Uvarint(ub)
			if n <= 0 || n != len(ub) || s > headSlot {
				return fmt.Errorf("%w: slot", ErrCorruptSnapshot)
			}
			if s == headSlot {
				var zero H
				e.head, e.hasHead = zero, false
				if del {
					return nil
				}
				h, n, err := t.hc.Decode(vb)
				if err != nil || n != len(vb) {
					return fmt.Errorf("slots head: %w", corruptOr(err))
				}
				e.head, e.hasHead = h, true
				return nil
			}
			if del {
				if e.mask&(1<<s) != 0 {
					var zero V
					e.vals[s] = zero
					e.mask &^= 1 << s
				}
				return nil
			}
			v, n, err := t.vc.Decode(vb)
			if err != nil || n != len(vb) {
				return fmt.Errorf("slot value: %w", corruptOr(err))
			}
			for int(s) >= len(e.vals) {
				var zero V
				e.vals = append(e.vals, zero)
			}
			e.vals[s] = v
			e.mask |= 1 << s
			return nil
		})
		e.vals = e.vals[:slotsLen(e.mask)]
		t.n += e.entries() - before
		switch {
		case e.mask == 0 && !e.hasHead:
			delete(t.keys[i], k)
		case t.keys[i] == nil:
			t.keys[i] = map[K]*memSlotsKey[H, V]{k: e}
		default:
			t.keys[i][k] = e
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("state table %q key group %d: %w", t.name, kg, err)
	}
	return nil
}

// Full snapshots (memsnap.go): per key its head and slots as one
// slotsValue, the value of a KVStore's slots table.

func (t *memSlotsTable[K, H, V]) encodeKeyGroup(dst []byte, kg int) ([]byte, error) {
	if err := t.codecs(); err != nil {
		return nil, err
	}
	keys := t.keys[kg-t.groups.Start]
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	for k, e := range keys {
		dst = t.kc.Append(dst, k)
		dst = t.sc.Append(dst, slotsValue[H, V]{HasHead: e.hasHead, Head: e.head, Mask: e.mask, Vals: e.vals})
	}
	return dst, nil
}

func (t *memSlotsTable[K, H, V]) decodeKeyGroup(kg int, src []byte) error {
	if err := t.codecs(); err != nil {
		return err
	}
	n, c := binary.Uvarint(src)
	if c <= 0 || n > uint64(len(src)) {
		return fmt.Errorf("state table %q: bad entry count", t.name)
	}
	src = src[c:]
	i := kg - t.groups.Start
	t.last = nil
	for range n {
		k, a, err := t.kc.Decode(src)
		if err != nil {
			return fmt.Errorf("state table %q: %w", t.name, err)
		}
		sv, b, err := t.sc.Decode(src[a:])
		if err != nil {
			return fmt.Errorf("state table %q: %w", t.name, err)
		}
		src = src[a+b:]
		if sv.Mask == 0 && !sv.HasHead {
			continue
		}
		if len(sv.Vals) < slotsLen(sv.Mask) {
			return fmt.Errorf("%w: state table %q: %d values for slots %#x", ErrCorruptSnapshot, t.name, len(sv.Vals), sv.Mask)
		}
		if old := t.keys[i][k]; old != nil {
			t.n -= old.entries()
		}
		if t.keys[i] == nil {
			t.keys[i] = make(map[K]*memSlotsKey[H, V])
		}
		e := &memSlotsKey[H, V]{head: sv.Head, hasHead: sv.HasHead, vals: sv.Vals[:slotsLen(sv.Mask)], mask: sv.Mask}
		t.keys[i][k] = e
		t.n += e.entries()
	}
	return nil
}
