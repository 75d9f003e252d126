package stream

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"sync"
	"unsafe"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/state/codec"
	"github.com/sluicehq/sluice/window"

	rt "github.com/sluicehq/sluice/internal/runtime"
)

// Windows in a byte-level state backend (Pebble).
//
// With a state backend configured (WithStateBackend) and a non-merging
// assigner (tumbling, sliding, custom), the window operator keeps every
// (key, window) accumulator as one entry of the backend instead of in Go
// maps, so its memory does not grow with the number of keys. An entry's
// key is
//
//	key group (2 bytes) | table name | window max timestamp (8 bytes,
//	order-preserving) | window start (8 bytes) | key (codec)
//
// and its value is the accumulator (codec). Ordering by the window's end
// inside each key group makes the timers implicit: the windows that fire
// at watermark t are a range scan (firedUpTo, t] per key group, and the
// windows past their cleanup time a range deletion. The operator keeps in
// memory only the set of distinct window ends it holds (one per window
// end, not per key) and, per key group, the time up to which it has fired
// windows: a window whose end is at or before that time has fired, and a
// late record within the allowed lateness re-emits it.
//
// A checkpoint is the backend's own (Pebble: hard-linked sstables, shared
// between checkpoints, so incremental) plus a small key-grouped file
// (suffix .winkv) with, per key group, the watermark, the fired-up-to
// time and the window ends. Session windows (merging) have an operator of
// their own over the same kind of backend (window_session_kv.go).

const winKVTable = "window"

// winTableDesc is the descriptor of a window operator's table: it only
// exists over a KVStore.
type winTableDesc struct{ name string }

func (d winTableDesc) Name() string { return d.name }

// NewMemoryTable returns a table without a store: the memory backend keeps
// the in-memory window operator, which never opens this table; a custom
// non-KV backend gets an error from the operator.
func (d winTableDesc) NewMemoryTable(r state.KeyGroupRange) state.Table {
	return &winTable{name: d.name, groups: r}
}

func (d winTableDesc) NewKVTable(kv state.KVStore, r state.KeyGroupRange) (state.Table, error) {
	return &winTable{name: d.name, groups: r, kv: kv}, nil
}

type winTable struct {
	name   string
	groups state.KeyGroupRange
	kv     state.KVStore
}

func (t *winTable) Name() string                   { return t.name }
func (t *winTable) KeyGroups() state.KeyGroupRange { return t.groups }

func (t *winTable) Len() int {
	if t.kv == nil {
		return 0
	}
	n := 0
	for kg := t.groups.Start; kg < t.groups.End; kg++ {
		p := state.KVPrefix(nil, kg, t.name)
		if err := t.kv.Scan(p, bytesEnd(p), func(_, _ []byte) bool { n++; return true }); err != nil {
			panic(&state.KVError{Table: t.name, Op: "len", Err: err})
		}
	}
	return n
}

func (t *winTable) ClearKeyGroup(kg int) {
	if t.kv == nil {
		return
	}
	p := state.KVPrefix(nil, kg, t.name)
	if err := t.kv.DeleteRange(p, bytesEnd(p)); err != nil {
		panic(&state.KVError{Table: t.name, Op: "clear", Err: err})
	}
}

// bytesEnd returns the smallest key greater than every key with prefix p.
func bytesEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// appendTime appends t so that byte order is numeric order.
func appendTime(b []byte, t int64) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(t)^(1<<63))
}

func readTime(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

// timeSet is a set of distinct times with its minimum; each time carries
// the set of key groups (offsets in the operator's range) that hold a
// window at that time, so that firing and cleanup visit only those.
type timeSet struct {
	h     int64Heap
	in    map[int64][]uint64
	words int
}

func newTimeSet(groups int) timeSet {
	return timeSet{in: make(map[int64][]uint64), words: (groups + 63) / 64}
}

type int64Heap []int64

func (h int64Heap) Len() int           { return len(h) }
func (h int64Heap) Less(i, j int) bool { return h[i] < h[j] }
func (h int64Heap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *int64Heap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *int64Heap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// add records a window at time t in key group offset i.
func (s *timeSet) add(t int64, i int) {
	b, ok := s.in[t]
	if !ok {
		b = make([]uint64, s.words)
		s.in[t] = b
		heap.Push(&s.h, t)
	}
	b[i/64] |= 1 << (i % 64)
}

// has reports whether key group offset i has a window at time t.
func (s *timeSet) has(t int64, i int) bool {
	b, ok := s.in[t]
	return ok && b[i/64]&(1<<(i%64)) != 0
}

func (s *timeSet) min() (int64, bool) {
	if len(s.h) == 0 {
		return 0, false
	}
	return s.h[0], true
}

// popUpTo removes the times <= t, adds their key groups to into, and
// reports whether there were any.
func (s *timeSet) popUpTo(t int64, into []uint64) bool {
	found := false
	for len(s.h) > 0 && s.h[0] <= t {
		x := heap.Pop(&s.h).(int64)
		for i, w := range s.in[x] {
			into[i] |= w
		}
		delete(s.in, x)
		found = true
	}
	return found
}

// winKVOp is the window operator of non-merging assigners over a KV
// state backend (see the comment at the top of this file).
type winKVOp[K comparable, T, A, O any] struct {
	opBase
	key      func(T) K
	hash     func(K) uint64
	maxPar   int
	assigner window.Assigner
	proc     bool
	lateness int64
	init     func() A
	add      func(A, T) A
	fire     func(K, window.Window, A, *Emitter[O])
	em       *Emitter[O]
	late     *Emitter[T]

	fixed               bool
	size, slide, offset int64
	wins                []window.Window

	wm        int64
	backend   state.Backend
	kv        state.KVStore
	groups    state.KeyGroupRange
	firedUpTo []int64 // per key group of groups
	pending   timeSet // max timestamps of windows not fired yet
	stored    timeSet // max timestamps of every stored window
	kc        codec.Codec[K]
	ac        codec.Codec[A]
	kbuf      []byte
	vbuf      []byte
	hi        []byte
	kgs       []uint64 // key groups to visit (bitset of offsets)
	// The accumulators of the record batch (update, writeBatch) and the
	// membership filters of the window ends (window_kvfilter.go; nil
	// without a budget).
	batch    []winKVEntry[A]
	batchIdx map[string]int
	filters  *winFilters

	restoreErr error
	snapWG     sync.WaitGroup
}

// newWinKVOp makes the operator over backend b, or returns nil when b is
// the memory backend (the in-memory operator is faster there).
func newWinKVOp[K comparable, T, A, O any](b state.Backend, kc codec.Codec[K], ac codec.Codec[A]) (*winKVOp[K, T, A, O], error) {
	if _, ok := b.(*state.Memory); ok {
		return nil, nil
	}
	t, err := b.Open(winTableDesc{name: winKVTable})
	if err != nil {
		return nil, fmt.Errorf("window state table: %w", err)
	}
	wt, ok := t.(*winTable)
	if !ok || wt.kv == nil {
		return nil, fmt.Errorf("window state: backend %T stores no bytes; use the memory backend or state/pebble", b)
	}
	r := b.KeyGroups()
	o := newWinKVOpState[K, T, A, O](r)
	o.backend, o.kv, o.kc, o.ac = b, wt.kv, kc, ac
	o.filters = newWinFilters(wt.kv)
	return o, nil
}

func newWinKVOpState[K comparable, T, A, O any](r state.KeyGroupRange) *winKVOp[K, T, A, O] {
	o := &winKVOp[K, T, A, O]{groups: r, firedUpTo: make([]int64, r.Len()), wm: rt.MinWatermark,
		pending: newTimeSet(r.Len()), stored: newTimeSet(r.Len()), kgs: make([]uint64, (r.Len()+63)/64),
		batchIdx: make(map[string]int)}
	for i := range o.firedUpTo {
		o.firedUpTo[i] = math.MinInt64
	}
	return o
}

func (o *winKVOp[K, T, A, O]) check(op string, err error) {
	if err != nil {
		panic(&state.KVError{Table: winKVTable, Op: op, Err: err})
	}
}

func (o *winKVOp[K, T, A, O]) push(vals []T, ts []int64) {
	defer o.recoverUser()
	if o.restoreErr != nil {
		o.fail(o.restoreErr)
	}
	o.curT = ts
	var now int64
	if o.proc {
		// Fire what processing time reached first, so that a window at or
		// before the watermark is a fired one.
		now = rt.NowMillis()
		o.wm = max(o.wm, now-1)
		o.advance(o.wm)
	}
	for i, v := range vals {
		o.pos = i
		t := ts[i]
		if o.proc {
			t = now
		}
		k := o.key(v)
		kg := state.KeyGroup(o.hash(k), o.maxPar)
		n := 0
		if o.fixed {
			last := t - floorMod(t-o.offset, o.slide)
			for start := last; start > t-o.size; start -= o.slide {
				w := window.Window{Start: start, End: start + o.size}
				if window.IsLate(w, o.lateness, o.wm) {
					break
				}
				o.update(k, kg, w, v)
				n++
			}
		} else {
			o.wins = o.assigner.Assign(t, o.wins[:0])
			for _, w := range o.wins {
				if window.IsLate(w, o.lateness, o.wm) {
					continue
				}
				o.update(k, kg, w, v)
				n++
			}
		}
		if n == 0 {
			if o.late != nil {
				o.late.EmitAt(v, t)
			} else {
				o.cnt.Dropped.Add(1)
			}
		}
	}
	o.pos = -1
	o.writeBatch()
	o.cnt.In.Add(int64(len(vals)))
	o.flush()
}

// update adds v to window w of key k (key group kg): a read-modify-write
// of the window's entry, whose read is skipped when the entry is known to
// be absent (no window at w's end yet, or the end's membership filter
// rules it out: window_kvfilter.go) or was read earlier in the record
// batch. The accumulators of a batch are written once each at its end
// (writeBatch), so that a key and window seen by several records of a
// batch costs one read and one write. A window at or before the
// fired-up-to time has fired already: the update re-emits it.
func (o *winKVOp[K, T, A, O]) update(k K, kg int, w window.Window, v T) {
	mt := w.MaxTimestamp()
	b := state.KVPrefix(o.kbuf[:0], kg, winKVTable)
	b = appendTime(b, mt)
	b = appendTime(b, w.Start)
	b = o.kc.Append(b, k)
	o.kbuf = b
	i := kg - o.groups.Start
	fired := mt <= o.firedUpTo[i]
	if j, ok := o.batchIdx[string(b)]; ok {
		acc := o.add(o.batch[j].acc, v)
		o.batch[j].acc = acc
		if fired {
			o.fire(k, w, acc, o.em)
		}
		return
	}
	// Known absent: no key group holds a window at mt, or mt's filter
	// rules the entry out.
	_, anyAt := o.stored.in[mt]
	absent := !anyAt
	var f *winFilter
	var h uint64
	if o.filters != nil {
		h = o.filters.hash(b)
		if f = o.filters.m[mt]; f != nil {
			absent = absent || !f.mayContain(h)
		} else if !anyAt {
			f = o.filters.create(mt)
		}
	}
	var acc A
	ok := false
	if !absent {
		var val []byte
		var err error
		val, ok, err = o.kv.Get(b, o.vbuf[:0])
		o.check("get", err)
		if ok {
			o.vbuf = val
			acc, _, err = o.ac.Decode(val)
			o.check("decode", err)
		}
	}
	if !ok {
		acc = o.init()
		o.stored.add(mt, i)
		if !fired {
			o.pending.add(mt, i)
		}
		if f != nil {
			o.filters.add(mt, f, h)
		}
	}
	acc = o.add(acc, v)
	o.batchIdx[string(b)] = len(o.batch)
	o.batch = append(o.batch, winKVEntry[A]{key: string(b), acc: acc})
	if fired {
		o.fire(k, w, acc, o.em)
	}
}

// winKVEntry is an accumulator of the record batch, written at its end.
type winKVEntry[A any] struct {
	key string
	acc A
}

// writeBatch writes the accumulators of the record batch to the store.
func (o *winKVOp[K, T, A, O]) writeBatch() {
	for j := range o.batch {
		e := &o.batch[j]
		o.vbuf = o.ac.Append(o.vbuf[:0], e.acc)
		// The store copies the key (a view of the string, not a copy).
		o.check("put", o.kv.Set(unsafe.Slice(unsafe.StringData(e.key), len(e.key)), o.vbuf))
		*e = winKVEntry[A]{}
	}
	o.batch = o.batch[:0]
	clear(o.batchIdx)
}

// upper returns the scan bound of the windows of prefix p ending at or
// before t.
func (o *winKVOp[K, T, A, O]) upper(p []byte, t int64) []byte {
	if t == math.MaxInt64 {
		return bytesEnd(p)
	}
	o.hi = appendTime(append(o.hi[:0], p...), t+1)
	return o.hi
}

// advance fires the windows whose max timestamp is at most t and deletes
// those past their cleanup time.
func (o *winKVOp[K, T, A, O]) advance(t int64) {
	clear(o.kgs)
	if o.pending.popUpTo(t, o.kgs) {
		var derr error
		for kg := o.groups.Start; kg < o.groups.End; kg++ {
			i := kg - o.groups.Start
			lo := o.firedUpTo[i]
			if lo >= t || o.kgs[i/64]&(1<<(i%64)) == 0 {
				continue
			}
			p := state.KVPrefix(nil, kg, winKVTable)
			start := appendTime(append([]byte(nil), p...), lo+1)
			err := o.kv.Scan(start, o.upper(p, t), func(key, val []byte) bool {
				rest := key[len(p):]
				if len(rest) < 16 {
					derr = fmt.Errorf("%w: window entry key of %d bytes", checkpoint.ErrCorrupt, len(key))
					return false
				}
				mt, ws := readTime(rest), readTime(rest[8:])
				k, _, err := o.kc.Decode(rest[16:])
				if err != nil {
					derr = err
					return false
				}
				acc, _, err := o.ac.Decode(val)
				if err != nil {
					derr = err
					return false
				}
				o.fire(k, window.Window{Start: ws, End: mt + 1}, acc, o.em)
				return true
			})
			o.check("scan", err)
			o.check("decode", derr)
		}
	}
	for i := range o.firedUpTo {
		o.firedUpTo[i] = max(o.firedUpTo[i], t)
	}
	// A window is dropped once mt + lateness <= t.
	c := t - o.lateness
	if c > t {
		return // underflow: nothing is that old
	}
	clear(o.kgs)
	if o.filters != nil {
		o.filters.dropUpTo(c)
	}
	if o.stored.popUpTo(c, o.kgs) {
		for kg := o.groups.Start; kg < o.groups.End; kg++ {
			if i := kg - o.groups.Start; o.kgs[i/64]&(1<<(i%64)) == 0 {
				continue
			}
			p := state.KVPrefix(nil, kg, winKVTable)
			o.check("delete", o.kv.DeleteRange(p, o.upper(p, c)))
		}
	}
}

func (o *winKVOp[K, T, A, O]) flush() {
	flushBackend(o.backend)
	o.em.flush()
	o.cnt.Out.Add(o.em.count())
	if o.late != nil {
		o.late.flush()
	}
}

func (o *winKVOp[K, T, A, O]) watermark(wm int64) {
	defer o.recoverUser()
	if o.restoreErr != nil {
		o.fail(o.restoreErr)
	}
	if !o.proc {
		o.wm = max(o.wm, wm)
		o.advance(o.wm)
		o.flush()
	}
	o.em.out.watermark(wm)
	if o.late != nil {
		o.late.out.watermark(wm)
	}
}

func (o *winKVOp[K, T, A, O]) nextProcTimer() int64 {
	next := int64(math.MaxInt64)
	if t, ok := o.pending.min(); ok {
		next = t + 1
	}
	if t, ok := o.stored.min(); ok {
		if ct := t + o.lateness; ct >= t && ct < math.MaxInt64 {
			next = min(next, ct+1)
		}
	}
	return next
}

func (o *winKVOp[K, T, A, O]) fireProcTimers(now int64) {
	defer o.recoverUser()
	o.wm = max(o.wm, now-1)
	o.advance(o.wm)
	o.flush()
}

func (o *winKVOp[K, T, A, O]) idle() {
	o.em.out.idle()
	if o.late != nil {
		o.late.out.idle()
	}
}

func (o *winKVOp[K, T, A, O]) barrier(id uint64) {
	if chk := o.t.job.chk; chk != nil {
		o.snapshot(chk, id)
	}
	o.em.out.barrier(id)
	if o.late != nil {
		o.late.out.barrier(id)
	}
}

func (o *winKVOp[K, T, A, O]) end() {
	defer o.recoverUser()
	if chk := o.t.job.chk; chk != nil {
		defer func() {
			o.snapWG.Wait()
			chk.finish(checkpoint.Ack{Task: checkpoint.TaskID{Operator: opKey(o.node), Subtask: o.sub}})
		}()
	}
	if o.proc {
		o.advance(rt.MaxWatermark)
		o.flush()
	}
	o.em.out.end()
	if o.late != nil {
		o.late.out.end()
	}
}

// snapshot writes the operator's file (watermark, fired-up-to time and
// window ends per key group) and the backend's files.
func (o *winKVOp[K, T, A, O]) snapshot(chk *chkRun, id uint64) {
	groups := make(map[int][]byte, o.groups.Len())
	for kg := o.groups.Start; kg < o.groups.End; kg++ {
		i := kg - o.groups.Start
		var ends []int64
		for _, mt := range o.stored.h {
			if o.stored.has(mt, i) {
				ends = append(ends, mt)
			}
		}
		b := binary.AppendVarint(nil, o.wm)
		b = binary.AppendVarint(b, o.firedUpTo[i])
		b = binary.AppendUvarint(b, uint64(len(ends)))
		for _, mt := range ends {
			b = binary.AppendVarint(b, mt)
		}
		groups[kg] = b
	}
	snapshotWinKV(&o.opBase, chk, id, o.backend, o.groups, groups, &o.snapWG)
}

// snapshotWinKV checkpoints a window operator over a KV backend: its
// sections per key group (groups) in a .winkv file and the backend's own
// files, written on another goroutine that acknowledges the checkpoint.
func snapshotWinKV(o *opBase, chk *chkRun, id uint64, backend state.Backend, r state.KeyGroupRange, groups map[int][]byte, wg *sync.WaitGroup) {
	task := checkpoint.TaskID{Operator: opKey(o.node), Subtask: o.sub}
	kgs := make([]int, 0, r.Len())
	for kg := r.Start; kg < r.End; kg++ {
		kgs = append(kgs, kg)
	}
	fs, ok := backend.(state.FileSnapshotter)
	if !ok {
		chk.decline(id, task, fmt.Errorf("window state: backend %T cannot checkpoint itself as files", backend))
		return
	}
	write, err := fs.SnapshotFiles()
	if err != nil {
		chk.decline(id, task, fmt.Errorf("window state: %w", err))
		return
	}
	maxPar := chk.maxPar
	chk.async.Add(1)
	wg.Add(1)
	go func() {
		defer chk.async.Done()
		defer wg.Done()
		writeOperatorSnapshot(chk, id, task, "winkv", maxPar, kgs, groups, write)
	}()
}

// restore reads the operator files of the key groups this subtask owns
// (the backend restored its own files).
func (o *winKVOp[K, T, A, O]) restore(chk *chkRun, files []string) error {
	wm, found, err := restoreWinKV(chk, files, o.groups, o.restoreSection)
	if found {
		o.wm = wm
	}
	return err
}

// restoreWinKV reads the .winkv sections of the key groups of r in files
// and passes each to section, which returns the watermark it recorded; it
// returns the smallest of them and whether there was any.
func restoreWinKV(chk *chkRun, files []string, r state.KeyGroupRange, section func(kg int, b []byte) (int64, error)) (int64, bool, error) {
	restoredWm := int64(math.MaxInt64)
	found := false
	for _, path := range files {
		switch {
		case strings.HasSuffix(path, ".window") || isChainFile(path):
			return 0, false, fmt.Errorf("%s: the checkpoint holds in-memory window state; restore it with the memory state backend", path)
		case !strings.HasSuffix(path, ".winkv"):
			continue
		}
		err := readKeyGroups(chk, path, r, func(kg int, b []byte) error {
			wm, err := section(kg, b)
			if err != nil {
				return err
			}
			found = true
			restoredWm = min(restoredWm, wm)
			return nil
		})
		if err != nil {
			return 0, false, err
		}
	}
	return restoredWm, found, nil
}

func (o *winKVOp[K, T, A, O]) restoreSection(kg int, b []byte) (int64, error) {
	wm, n := binary.Varint(b)
	if n <= 0 {
		return 0, fmt.Errorf("%w: watermark", checkpoint.ErrCorrupt)
	}
	b = b[n:]
	fu, n := binary.Varint(b)
	if n <= 0 {
		return 0, fmt.Errorf("%w: fired-up-to time", checkpoint.ErrCorrupt)
	}
	b = b[n:]
	o.firedUpTo[kg-o.groups.Start] = fu
	cnt, n := binary.Uvarint(b)
	if n <= 0 || cnt > uint64(len(b)) {
		return 0, fmt.Errorf("%w: window end count", checkpoint.ErrCorrupt)
	}
	b = b[n:]
	for range cnt {
		mt, n := binary.Varint(b)
		if n <= 0 {
			return 0, fmt.Errorf("%w: window end", checkpoint.ErrCorrupt)
		}
		b = b[n:]
		o.stored.add(mt, kg-o.groups.Start)
		if mt > fu {
			o.pending.add(mt, kg-o.groups.Start)
		}
	}
	if len(b) != 0 {
		return 0, fmt.Errorf("%w: %d trailing bytes", checkpoint.ErrCorrupt, len(b))
	}
	return wm, nil
}

// newWinKVOpFor builds the subtask's operator over the configured state
// backend, or returns nil when the backend is the memory one. Errors of
// the backend or of the restore fail the task at its first record.
func newWinKVOpFor[K comparable, T, A, O any](bc *buildCtx, n *node, w WindowedStream[K, T],
	initF func() A, addF func(A, T) A, fire func(K, window.Window, A, *Emitter[O]), c *winCodecs[K, A]) *winKVOp[K, T, A, O] {
	mp := bc.maxPar()
	kgr := state.RangeFor(mp, n.par, bc.sub)
	b, err := openStateBackend(bc, n, kgr)
	var o *winKVOp[K, T, A, O]
	if err == nil {
		o, err = newWinKVOp[K, T, A, O](b, c.key, c.acc)
		if o == nil && err == nil {
			return nil
		}
	}
	if o == nil {
		o = newWinKVOpState[K, T, A, O](kgr)
		o.restoreErr = err
	}
	o.opBase = bc.base()
	o.key, o.hash, o.maxPar = w.ks.key, w.ks.hash, mp
	o.assigner, o.proc, o.lateness = w.assigner, w.assigner.Domain() == window.ProcessingTime, w.lateness
	o.init, o.add, o.fire = initF, addF, fire
	o.em = newEmitter(bc, outputOf[O](bc.outs[0]))
	if f, ok := w.assigner.(window.Fixed); ok {
		o.fixed = true
		o.size, o.slide, o.offset = f.Span()
	}
	if chk := bc.job.chk; chk != nil && chk.restored != nil && o.restoreErr == nil {
		if err := o.restore(chk, chk.stateFiles(n)); err != nil {
			o.restoreErr = fmt.Errorf("restore: %w", err)
		}
	}
	if o.proc {
		bc.t.proc = append(bc.t.proc, o)
	}
	return o
}
