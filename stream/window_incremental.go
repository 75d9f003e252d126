package stream

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/state/codec"
	"github.com/sluicehq/sluice/window"
)

// Incremental snapshots of the in-memory window operator (winOp: tumbling,
// sliding, session and custom windows, window joins, the YAML/SQL window
// aggregates on the memory backend). The chain of files is chain.go's;
// this file says what goes into it. Design: docs/checkpoints.md,
// "Incremental snapshots of in-memory state".
//
// The unit of change is a key's list of open windows: every change of a
// window (a record added, a window opened, fired, merged or dropped) marks
// the key's list dirty (touch: one flag per list, no map operation on the
// record path). At the barrier the task goroutine encodes each dirty
// list whole, as one entry of the pseudo-table windowsTable:
//
//	key    the key's encoding (codec of K)
//	value  count uvarint, then per window: start varint | end varint |
//	       fired byte | accumulator (codec of A)
//
// a key without open windows as a deletion, and, in every key group the
// subtask owns, the operator's watermark as the one entry of the
// pseudo-table watermarkTable (empty key, varint value). A base holds every key
// with open windows. Timers are not stored: restore re-arms each window's
// firing or cleanup time from its end and fired flag, as the full format
// (window_snapshot.go) does.

const (
	windowsTable   = "\x00windows"
	watermarkTable = "\x00watermark"
)

// touch marks list li changed since the last snapshot.
func (o *winOp[K, T, A, O]) touch(li int32) {
	if o.inc != nil && !o.dirty[li] {
		o.dirty[li] = true
		o.dirtyLists = append(o.dirtyLists, li)
	}
}

// clearDirty forgets the changes tracked so far.
func (o *winOp[K, T, A, O]) clearDirty() {
	for _, li := range o.dirtyLists {
		o.dirty[li] = false
	}
	if cap(o.dirtyLists) > 4096 && len(o.dirtyLists) < cap(o.dirtyLists)/4 {
		o.dirtyLists = nil // not kept at a high-water size
	}
	o.dirtyLists = o.dirtyLists[:0]
	clear(o.deadKeys)
	o.deadKeys = o.deadKeys[:0]
}

// snapshotIncremental encodes the lists changed since the previous
// snapshot (all of them for a base) and hands them to the chain's writer.
func (o *winOp[K, T, A, O]) snapshotIncremental(chk *chkRun, id uint64) {
	task := checkpoint.TaskID{Operator: opKey(o.node), Subtask: o.sub}
	inc := o.inc
	full := inc.needFull(len(o.dirtyLists)+len(o.deadKeys), o.keys.len())
	groups, arena := o.encodeWindowChanges(chk.maxPar, full)
	o.clearDirty()
	inc.submit(chk, id, task, full, groups, arena, &o.snapWG)
}

// winBody accumulates the entries of one key group's windowsTable body.
type winBody struct {
	n    int
	ents []byte
}

// encodeWindowChanges encodes the sections of a chain file, in place in
// one arena (chain.go): per key group the watermark and the changed lists
// (every list for a base).
func (o *winOp[K, T, A, O]) encodeWindowChanges(maxPar int, full bool) (map[int][]byte, *sectionArena) {
	bodies := map[int]*winBody{}
	var kbuf, vbuf []byte
	add := func(k K, li int32) {
		kg := state.KeyGroup(o.hash(k), maxPar)
		wb := bodies[kg]
		if wb == nil {
			wb = &winBody{}
			bodies[kg] = wb
		}
		wb.n++
		kbuf = o.codecs.key.Append(kbuf[:0], k)
		if li < 0 || len(o.lists[li]) == 0 {
			wb.ents = append(wb.ents, 1) // deletion
			wb.ents = codec.AppendBytes(wb.ents, kbuf)
			return
		}
		wb.ents = append(wb.ents, 0) // put
		wb.ents = codec.AppendBytes(wb.ents, kbuf)
		vbuf = o.appendList(vbuf[:0], li)
		wb.ents = codec.AppendBytes(wb.ents, vbuf)
	}
	if full {
		for li, l := range o.lists {
			if len(l) > 0 {
				add(o.listKey[li], int32(li))
			}
		}
	} else {
		for _, k := range o.deadKeys {
			if _, ok := o.keys.get(k); !ok {
				add(k, -1)
			}
		}
		for _, li := range o.dirtyLists {
			// A list freed by sweepKeys (its key is in deadKeys) may
			// have been reused by another key since: its key now.
			k := o.listKey[li]
			if cur, ok := o.keys.get(k); ok && cur == li {
				add(k, li)
			}
		}
	}
	var flags byte
	if full {
		flags = 1 // reset: a base restores the key group on its own
	}
	wm := binary.AppendVarint(nil, o.wm)
	groups := make(map[int][]byte, o.kgr.Len())
	a := o.inc.takeArena()
	var body []byte
	for kg := o.kgr.Start; kg < o.kgr.End; kg++ {
		at := a.begin(o.kgr.End - kg - 1)
		a.buf = codec.AppendString(a.buf, watermarkTable)
		body = state.AppendChangeBody(body[:0], full, [][]byte{nil}, [][]byte{wm}, nil)
		a.buf = codec.AppendBytes(a.buf, body)
		if wb := bodies[kg]; wb != nil {
			a.buf = codec.AppendString(a.buf, windowsTable)
			var bt int
			a.buf, bt = codec.BeginPrefixed(a.buf)
			a.buf = append(a.buf, flags)
			a.buf = binary.AppendUvarint(a.buf, uint64(wb.n))
			a.buf = append(a.buf, wb.ents...)
			a.buf, _ = codec.EndPrefixed(a.buf, bt)
		}
		if sec := a.end(at); sec != nil {
			groups[kg] = sec
		}
	}
	return groups, a
}

// appendList appends the encoding of list li's windows.
func (o *winOp[K, T, A, O]) appendList(dst []byte, li int32) []byte {
	l := o.lists[li]
	dst = binary.AppendUvarint(dst, uint64(len(l)))
	for i := range l {
		e := &l[i]
		w := o.slots.at(e.id).win
		dst = binary.AppendVarint(dst, w.Start)
		dst = binary.AppendVarint(dst, w.End)
		if e.fired {
			dst = append(dst, 1)
		} else {
			dst = append(dst, 0)
		}
		dst = o.codecs.acc.Append(dst, e.acc)
	}
	return dst
}

// winChainRestore collects what the files of chains hold, per key group,
// until every file is read.
type winChainRestore struct {
	lists map[int]map[string][]byte // key group -> encoded key (aliasing a section) -> encoded list
	wm    map[int]int64
}

// readChain applies chain file path to c (files of one chain come in
// order).
func (o *winOp[K, T, A, O]) readChain(chk *chkRun, path string, r state.KeyGroupRange, c *winChainRestore) error {
	return readChainFile(chk, path, r, c.apply)
}

// apply folds the tables of one chain section of key group kg into c.
func (c *winChainRestore) apply(kg int, tables []byte) error {
	return state.WalkChanges(tables, func(name string, body []byte) error {
		switch name {
		case watermarkTable:
			return state.WalkChangeBody(body, func() {}, func(del bool, _, v []byte) error {
				wm, n := binary.Varint(v)
				if del || n <= 0 || n != len(v) {
					return fmt.Errorf("%w: window watermark", checkpoint.ErrCorrupt)
				}
				c.wm[kg] = wm
				return nil
			})
		case windowsTable:
			m := c.lists[kg]
			if m == nil {
				m = map[string][]byte{}
				c.lists[kg] = m
			}
			return state.WalkChangeBody(body, func() { clear(m) }, func(del bool, k, v []byte) error {
				// Key and value alias the section's own buffer (read for
				// this file, never changed): no copy per entry.
				ks := unsafe.String(unsafe.SliceData(k), len(k))
				if del {
					delete(m, ks)
				} else {
					m[ks] = v
				}
				return nil
			})
		default:
			return fmt.Errorf("%w: unknown table %q in a window chain section", checkpoint.ErrCorrupt, name)
		}
	})
}

// finishChain opens the windows a chain restore collected and sets the
// watermark: the lowest of the key groups read.
func (o *winOp[K, T, A, O]) finishChain(c *winChainRestore) error {
	kgs := make([]int, 0, len(c.lists))
	for kg := range c.lists {
		kgs = append(kgs, kg)
	}
	slices.Sort(kgs)
	for _, kg := range kgs {
		for kb, v := range c.lists[kg] {
			k, n, err := o.codecs.key.Decode(unsafe.Slice(unsafe.StringData(kb), len(kb)))
			if err != nil || n != len(kb) {
				return fmt.Errorf("key group %d: window key: %w", kg, corruptOrErr(err))
			}
			if err := o.restoreList(k, v); err != nil {
				return fmt.Errorf("key group %d: %w", kg, err)
			}
		}
	}
	if len(c.wm) > 0 {
		wm := int64(math.MaxInt64)
		for _, w := range c.wm {
			wm = min(wm, w)
		}
		o.wm = wm
	}
	return nil
}

// restoreList opens the windows of key k that list encoding b holds.
func (o *winOp[K, T, A, O]) restoreList(k K, b []byte) error {
	cnt, n := binary.Uvarint(b)
	if n <= 0 || cnt > uint64(len(b)) {
		return fmt.Errorf("%w: window count", checkpoint.ErrCorrupt)
	}
	b = b[n:]
	for range cnt {
		start, n1 := binary.Varint(b)
		if n1 <= 0 {
			return fmt.Errorf("%w: window start", checkpoint.ErrCorrupt)
		}
		end, n2 := binary.Varint(b[n1:])
		if n2 <= 0 || len(b) < n1+n2+1 || b[n1+n2] > 1 {
			return fmt.Errorf("%w: window end", checkpoint.ErrCorrupt)
		}
		fired := b[n1+n2] == 1
		b = b[n1+n2+1:]
		acc, n3, err := o.codecs.acc.Decode(b)
		if err != nil {
			return fmt.Errorf("window accumulator: %w", err)
		}
		b = b[n3:]
		o.restoreWindow(k, window.Window{Start: start, End: end}, fired, acc)
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d bytes after the windows of a key", checkpoint.ErrCorrupt, len(b))
	}
	return nil
}

// restoreWindow opens window win of key k with accumulator acc and arms
// its firing, or its cleanup when it already fired.
func (o *winOp[K, T, A, O]) restoreWindow(k K, win window.Window, fired bool, acc A) {
	li := o.keyList(k)
	id := o.open(k, li, win)
	e := o.entry(id)
	e.acc = acc
	e.fired = fired
	s := o.slots.at(id)
	s.gen++
	if fired {
		o.timers.push(timerEntry{t: window.CleanupTime(win, o.lateness), slot: id, gen: s.gen, cleanup: true})
	} else {
		o.timers.push(timerEntry{t: win.MaxTimestamp(), slot: id, gen: s.gen})
	}
}

func corruptOrErr(err error) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: trailing bytes", checkpoint.ErrCorrupt)
}
