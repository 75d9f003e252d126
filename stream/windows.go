package stream

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/sluicehq/sluice/checkpoint"

	rt "github.com/sluicehq/sluice/internal/runtime"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/window"
)

// WindowedStream is a keyed stream cut into windows by an assigner, ready
// for Aggregate, Reduce or ProcessWindow.
type WindowedStream[K comparable, T any] struct {
	ks       KeyedStream[K, T]
	assigner window.Assigner
	lateness int64
	late     *tagInfo
}

// Window cuts a keyed stream into windows (see package window).
func Window[K comparable, T any](ks KeyedStream[K, T], a window.Assigner) WindowedStream[K, T] {
	return WindowedStream[K, T]{ks: ks, assigner: a}
}

// AllowedLateness keeps each window's state for d after it fired: records
// that arrive within d update the window and re-emit its result. Records
// later than that are late data. The default is zero.
func (w WindowedStream[K, T]) AllowedLateness(d time.Duration) WindowedStream[K, T] {
	w.lateness = d.Milliseconds()
	return w
}

// SideOutputLate sends late records (whose every window is past its allowed
// lateness) to the side output tag instead of dropping them; read it with
// SideOutput on the aggregated stream. Dropped records are counted in the
// operator's Dropped metric.
func (w WindowedStream[K, T]) SideOutputLate(tag OutputTag[T]) WindowedStream[K, T] {
	w.late = tag.t
	return w
}

// Windowed is the result of a window for one key.
type Windowed[K comparable, V any] struct {
	Key    K
	Window window.Window
	Value  V
}

// Aggregator is an incremental aggregation: each window keeps one
// accumulator, not its records. Merge combines two accumulators and is
// required for session windows. Add and Merge may modify and return their
// first argument.
type Aggregator[T, A, R any] struct {
	Init   func() A
	Add    func(acc A, v T) A
	Merge  func(a, b A) A
	Result func(acc A) R
}

// Aggregate aggregates each window incrementally with agg and emits one
// Windowed result per key and window, timestamped with the window's last
// instant, when the window fires (and again for late updates).
func Aggregate[K comparable, T, A, R any](w WindowedStream[K, T], agg Aggregator[T, A, R], opts ...OpOption) Stream[Windowed[K, R]] {
	result := agg.Result
	return windowOp(w, "window-aggregate", opts, agg.Init, agg.Add, agg.Merge,
		func(k K, win window.Window, acc A, em *Emitter[Windowed[K, R]]) {
			em.EmitAt(Windowed[K, R]{Key: k, Window: win, Value: result(acc)}, win.MaxTimestamp())
		})
}

// Reduce combines each window's records pairwise with f.
func Reduce[K comparable, T any](w WindowedStream[K, T], f func(a, b T) T, opts ...OpOption) Stream[Windowed[K, T]] {
	type acc = reduceAcc[T]
	return windowOp(w, "window-reduce", opts,
		func() acc { return acc{} },
		func(a acc, v T) acc {
			if !a.Set {
				return acc{V: v, Set: true}
			}
			return acc{V: f(a.V, v), Set: true}
		},
		func(a, b acc) acc {
			if !a.Set {
				return b
			}
			if !b.Set {
				return a
			}
			return acc{V: f(a.V, b.V), Set: true}
		},
		func(k K, win window.Window, a acc, em *Emitter[Windowed[K, T]]) {
			em.EmitAt(Windowed[K, T]{Key: k, Window: win, Value: a.V}, win.MaxTimestamp())
		})
}

// reduceAcc is Reduce's accumulator; its fields are exported so that the
// state codecs can encode it (checkpoints, state backends).
type reduceAcc[T any] struct {
	V   T
	Set bool
}

// ProcessWindow buffers each window's records and calls f with all of them
// when the window fires. Prefer Aggregate when the result can be computed
// incrementally: it keeps constant state per window.
func ProcessWindow[K comparable, T, R any](w WindowedStream[K, T], f func(key K, win window.Window, elems []T, out *Emitter[R]), opts ...OpOption) Stream[R] {
	return windowOp(w, "window-process", opts,
		func() []T { return nil },
		func(a []T, v T) []T { return append(a, v) },
		func(a, b []T) []T { return append(a, b...) },
		func(k K, win window.Window, elems []T, em *Emitter[R]) {
			em.cur = win.MaxTimestamp()
			f(k, win, elems, em)
		})
}

func windowOp[K comparable, T, A, O any](w WindowedStream[K, T], kind string, opts []OpOption,
	initF func() A, addF func(A, T) A, mergeF func(A, A) A, fire func(K, window.Window, A, *Emitter[O])) Stream[O] {
	var latePort = -1
	var codecs *winCodecs[K, A]
	if w.ks.s.env.cfg.chk.on() {
		var err error
		if codecs, err = newWinCodecs[K, A](); err != nil {
			w.ks.s.env.setErr(fmt.Errorf("stream: %s with checkpointing: %w", kind, err))
		}
	}
	// With a state backend configured, windows keep their state in it
	// (window_kv.go; sessions: window_session_kv.go).
	var kvCodecs *winCodecs[K, A]
	if w.ks.s.env.cfg.stateFactory != nil {
		var err error
		if kvCodecs, err = newWinCodecs[K, A](); err != nil {
			w.ks.s.env.setErr(fmt.Errorf("stream: %s with a state backend: %w (give the accumulator exported fields or a BinaryMarshaler, or use the memory backend)", kind, err))
		}
	}
	s := keyedOne[K, T, O](w.ks, kind, opts, func(bc *buildCtx, n *node) collector[T] {
		if kvCodecs != nil && w.assigner.Gap() > 0 && mergeF != nil {
			if o := newSessKVOpFor[K, T, A, O](bc, n, w, initF, addF, mergeF, fire, kvCodecs); o != nil {
				if latePort >= 0 {
					o.late = newEmitter(bc, outputOf[T](bc.outs[latePort]))
				}
				return o
			}
		} else if kvCodecs != nil && w.assigner.Gap() == 0 {
			if o := newWinKVOpFor[K, T, A, O](bc, n, w, initF, addF, fire, kvCodecs); o != nil {
				if latePort >= 0 {
					o.late = newEmitter(bc, outputOf[T](bc.outs[latePort]))
				}
				return o
			}
		}
		o := &winOp[K, T, A, O]{
			opBase: bc.base(), key: w.ks.key, assigner: w.assigner, gap: w.assigner.Gap(),
			proc: w.assigner.Domain() == window.ProcessingTime, lateness: w.lateness,
			init: initF, add: addF, merge: mergeF, fire: fire,
			em: newEmitter(bc, outputOf[O](bc.outs[0])), wm: rt.MinWatermark,
			keys: newKeyIndex[K](), hash: w.ks.hash, codecs: codecs,
		}
		if codecs != nil && bc.job.chk != nil {
			// Incremental snapshots (window_incremental.go).
			o.inc = newChainSnap()
			o.kgr = bc.job.chk.keyGroups(n, bc.sub)
		}
		if f, ok := w.assigner.(window.Fixed); ok && o.gap == 0 {
			o.fixed = true
			o.size, o.slide, o.offset = f.Span()
		}
		if chk := bc.job.chk; chk != nil && chk.restored != nil {
			if err := o.restore(chk, chk.stateFiles(n), chk.keyGroups(n, bc.sub)); err != nil {
				o.restoreErr = fmt.Errorf("restore: %w", err)
			}
			o.clearDirty() // the first snapshot after a restore is a base
		}
		if latePort >= 0 {
			o.late = newEmitter(bc, outputOf[T](bc.outs[latePort]))
		}
		if o.proc {
			bc.t.proc = append(bc.t.proc, o)
		}
		return o
	})
	if w.late != nil {
		latePort = addSidePort(s.n, w.late)
	}
	s.n.snapshots = true
	s.n.fuseKeyed = w.assigner.Domain() == window.EventTime
	if w.assigner.Gap() > 0 && mergeF == nil {
		s.env.setErr(&mergeError{op: s.n.name})
	}
	return s
}

type mergeError struct{ op string }

func (e *mergeError) Error() string {
	return "stream: session windows of operator " + e.op + " need an Aggregator with Merge"
}

// wslot is the bookkeeping of one open window: which key and list it
// belongs to and the generation that validates its timer entries.
type wslot[K comparable] struct {
	key  K
	win  window.Window
	gen  uint32
	list int32
	live bool
}

// slotSlab holds the window slots in chunks of slabChunk: opening a
// window never copies the slots already open (one growing slice of a
// million windows was a third of q5's CPU, mostly copying into and
// faulting in fresh memory at each growth). Slots are never removed, only
// reused through the operator's free list, so a chunk once allocated stays.
type slotSlab[K comparable] struct {
	chunks [][]wslot[K]
	n      int32
}

const slabShift = 12 // slabChunk = 4096 slots per chunk

// at returns slot id, which add returned earlier.
func (s *slotSlab[K]) at(id int32) *wslot[K] {
	return &s.chunks[id>>slabShift][id&(1<<slabShift-1)]
}

// add appends a zero slot and returns its id.
func (s *slotSlab[K]) add() int32 {
	if int(s.n>>slabShift) == len(s.chunks) {
		s.chunks = append(s.chunks, make([]wslot[K], 1<<slabShift))
	}
	id := s.n
	s.n++
	return id
}

// kwin is a window in its key's list, holding the accumulator, so that
// the per-record path touches only the key's list.
type kwin[A any] struct {
	start int64
	id    int32
	fired bool
	acc   A
}

// winOp is the window operator. One map lookup per record finds the key's
// short list of open windows, which holds their accumulators (a sliding
// window's record updates all its windows from that one list). Window
// bookkeeping lives in a slab of slots; slots and lists are reused through
// free lists, so steady state does not allocate. Firing and cleanup times
// are entries in one timer heap; entries whose slot was merged,
// rescheduled or freed carry an old generation and are skipped.
type winOp[K comparable, T, A, O any] struct {
	opBase
	key      func(T) K
	assigner window.Assigner
	gap      int64
	proc     bool
	lateness int64
	init     func() A
	add      func(A, T) A
	merge    func(A, A) A
	fire     func(K, window.Window, A, *Emitter[O])
	em       *Emitter[O]
	late     *Emitter[T]

	wm        int64
	slots     slotSlab[K]
	free      []int32
	keys      *keyIndex[K]
	lists     [][]kwin[A]
	freeLists []int32
	// Keys whose list is empty stay in keys, since a key usually opens
	// its next window soon. After as many releases as there are keys, a
	// sweep drops the keys that were already empty at the previous sweep
	// (stale) and marks the empty ones: amortised O(1) per window.
	releases int
	stale    []bool
	timers   timerQueue
	// fixed is set for assigners of fixed-size windows, whose windows
	// addFixed computes inline from size, slide and offset.
	fixed               bool
	size, slide, offset int64
	wins                []window.Window
	kbuf                []K     // keys of the batch being added
	lbuf                []int32 // their lists
	hits                []int32

	hash       func(K) uint64
	codecs     *winCodecs[K, A]
	restoreErr error
	// Incremental snapshots (window_incremental.go), with checkpointing
	// only: inc is nil without. A list whose windows changed since the
	// last snapshot is dirty; listKey names each list's key; deadKeys
	// are keys dropped by sweepKeys while their list was dirty.
	inc        *chainSnap
	kgr        state.KeyGroupRange
	dirty      []bool
	dirtyLists []int32
	listKey    []K
	deadKeys   []K
	// snapWG counts this subtask's snapshot writers: its end waits for
	// them, so that its acknowledgement precedes its "finished".
	snapWG sync.WaitGroup
}

// keyList returns the index of k's list of windows, creating it.
func (o *winOp[K, T, A, O]) keyList(k K) int32 {
	if li, ok := o.keys.get(k); ok {
		return li
	}
	var li int32
	if n := len(o.freeLists); n > 0 {
		li = o.freeLists[n-1]
		o.freeLists = o.freeLists[:n-1]
	} else {
		o.lists = append(o.lists, nil)
		li = int32(len(o.lists) - 1)
	}
	o.keys.put(k, li)
	if o.inc != nil {
		if int(li) < len(o.listKey) {
			o.listKey[li] = k
		} else {
			o.listKey = append(o.listKey, k)
			o.dirty = append(o.dirty, false)
		}
	}
	return li
}

// open starts window w of key k in list li and returns its slot.
func (o *winOp[K, T, A, O]) open(k K, li int32, w window.Window) int32 {
	var id int32
	if n := len(o.free); n > 0 {
		id = o.free[n-1]
		o.free = o.free[:n-1]
	} else {
		id = o.slots.add()
	}
	s := o.slots.at(id)
	s.key, s.win, s.list, s.live = k, w, li, true
	if len(o.lists[li]) == 0 && int(li) < len(o.stale) {
		o.stale[li] = false
	}
	if cap(o.lists[li]) == 0 && o.fixed {
		// A record of a sliding window opens size/slide windows at once:
		// room for them up front instead of growing 1, 2, 4, 8.
		o.lists[li] = make([]kwin[A], 0, min(o.size/o.slide, 8))
	}
	o.lists[li] = append(o.lists[li], kwin[A]{start: w.Start, id: id, acc: o.init()})
	o.touch(li)
	return id
}

// entry returns the list entry of slot id. The pointer is valid until the
// list changes.
func (o *winOp[K, T, A, O]) entry(id int32) *kwin[A] {
	l := o.lists[o.slots.at(id).list]
	for i := range l {
		if l[i].id == id {
			return &l[i]
		}
	}
	panic("stream: window slot missing from its key's list")
}

func (o *winOp[K, T, A, O]) release(id int32) {
	s := o.slots.at(id)
	li := s.list
	l := o.lists[li]
	for i := range l {
		if l[i].id == id {
			l[i] = l[len(l)-1]
			l[len(l)-1] = kwin[A]{}
			l = l[:len(l)-1]
			break
		}
	}
	o.lists[li] = l
	o.touch(li)
	if o.releases++; o.releases > 4*o.keys.len() && o.releases > 4096 {
		o.sweepKeys()
	}
	var zk K
	s.key, s.live = zk, false
	s.gen++
	o.free = append(o.free, id)
}

// sweepKeys forgets the keys that have had no open window since the
// previous sweep and marks the ones without an open window now.
func (o *winOp[K, T, A, O]) sweepKeys() {
	o.releases = 0
	if n := len(o.lists); len(o.stale) < n {
		o.stale = append(o.stale, make([]bool, n-len(o.stale))...)
	}
	o.keys.removeIf(func(k K, li int32) bool {
		if len(o.lists[li]) > 0 {
			return false
		}
		if o.stale[li] {
			o.stale[li] = false
			o.freeLists = append(o.freeLists, li)
			if o.inc != nil && o.dirty[li] {
				o.deadKeys = append(o.deadKeys, k)
			}
			return true
		}
		o.stale[li] = true
		return false
	})
}

// schedule (re)arms slot id: fire at the window's end, or, for a window
// the watermark already passed (a late update within the allowed
// lateness), fire now and arm its cleanup.
func (o *winOp[K, T, A, O]) schedule(id int32) {
	s := o.slots.at(id)
	s.gen++
	o.touch(s.list)
	e := o.entry(id)
	mt := s.win.MaxTimestamp()
	if mt > o.wm {
		e.fired = false
		o.timers.push(timerEntry{t: mt, slot: id, gen: s.gen})
		return
	}
	e.fired = true
	o.fire(s.key, s.win, e.acc, o.em)
	o.timers.push(timerEntry{t: window.CleanupTime(s.win, o.lateness), slot: id, gen: s.gen, cleanup: true})
}

func (o *winOp[K, T, A, O]) push(vals []T, ts []int64) {
	defer o.recoverUser()
	if o.restoreErr != nil {
		o.fail(o.restoreErr)
	}
	o.curT = ts
	var now int64
	if o.proc {
		now = rt.NowMillis()
		o.wm = now - 1
	}
	switch {
	case o.gap > 0:
		for i, v := range vals {
			o.pos = i
			t := ts[i]
			if o.proc {
				t = now
			}
			o.addSession(v, t)
		}
	case o.fixed:
		// Keys and their lists are looked up for the whole batch first:
		// independent lookups in a tight loop overlap their cache misses.
		// The list indexes stay valid for the batch because nothing in
		// this path releases a window (release, and so sweepKeys and the
		// reuse of lists, runs only from advance and addSession).
		keys, lists := o.kbuf[:0], o.lbuf[:0]
		for i, v := range vals {
			o.pos = i
			keys = append(keys, o.key(v))
		}
		for _, k := range keys {
			li, ok := o.keys.get(k)
			if !ok {
				li = -1
			}
			lists = append(lists, li)
		}
		o.kbuf, o.lbuf = keys, lists
		for i, v := range vals {
			o.pos = i
			t := ts[i]
			if o.proc {
				t = now
			}
			o.addFixed(v, t, keys[i], lists[i])
		}
		clear(keys)
	default:
		for i, v := range vals {
			o.pos = i
			t := ts[i]
			if o.proc {
				t = now
			}
			o.addAssigned(v, t)
		}
	}
	o.pos = -1
	o.cnt.In.Add(int64(len(vals)))
	o.flush()
}

func (o *winOp[K, T, A, O]) lateRecord(v T, t int64) {
	if o.late != nil {
		o.late.EmitAt(v, t)
		return
	}
	o.cnt.Dropped.Add(1)
}

// addFixed adds v at time t to its fixed-size windows; li is k's list,
// or -1 if k had none when the batch started.
func (o *winOp[K, T, A, O]) addFixed(v T, t int64, k K, li int32) {
	// The windows containing t start at last, last-slide, ... down to just
	// after t-size; the oldest are the first to turn late. want counts
	// those that are not late.
	last := t - floorMod(t-o.offset, o.slide)
	want := 0
	for start := last; start > t-o.size; start -= o.slide {
		if window.IsLate(window.Window{Start: start, End: start + o.size}, o.lateness, o.wm) {
			break
		}
		want++
	}
	if want == 0 {
		o.lateRecord(v, t)
		return
	}
	if li < 0 {
		li = o.keyList(k)
	}
	o.touch(li)
	// One pass over the key's open windows updates those that contain t
	// (every open window of a fixed assigner starts on the grid, so its
	// start alone says whether it does) and are not late.
	found := 0
	lowest := last - int64(want-1)*o.slide
	l := o.lists[li]
	for j := range l {
		e := &l[j]
		if e.start > last || e.start < lowest {
			continue
		}
		e.acc = o.add(e.acc, v)
		if e.fired {
			o.fire(k, window.Window{Start: e.start, End: e.start + o.size}, e.acc, o.em)
		}
		found++
	}
	if found == want {
		return
	}
	// Some of the record's windows are not open yet: open them.
	for start := last; start >= lowest; start -= o.slide {
		if o.has(li, start) {
			continue
		}
		o.openWith(k, li, window.Window{Start: start, End: start + o.size}, v)
	}
}

// has reports whether list li holds the window starting at start.
func (o *winOp[K, T, A, O]) has(li int32, start int64) bool {
	for _, e := range o.lists[li] {
		if e.start == start {
			return true
		}
	}
	return false
}

// addAssigned adds v at time t to the windows a custom assigner gives.
func (o *winOp[K, T, A, O]) addAssigned(v T, t int64) {
	k := o.key(v)
	li := int32(-1)
	ok := false
	o.wins = o.assigner.Assign(t, o.wins[:0])
	for _, w := range o.wins {
		if window.IsLate(w, o.lateness, o.wm) {
			continue
		}
		ok = true
		if li < 0 {
			li = o.keyList(k)
		}
		o.addTo(k, li, w, v)
	}
	if !ok {
		o.lateRecord(v, t)
	}
}

// addTo adds v to window w of key k (list li), opening the window if it
// is not open yet.
func (o *winOp[K, T, A, O]) addTo(k K, li int32, w window.Window, v T) {
	o.touch(li)
	l := o.lists[li]
	for j := range l {
		if l[j].start == w.Start {
			e := &l[j]
			e.acc = o.add(e.acc, v)
			if e.fired {
				o.fire(k, w, e.acc, o.em)
			}
			return
		}
	}
	o.openWith(k, li, w, v)
}

// openWith opens window w of key k (list li) holding v and arms it.
func (o *winOp[K, T, A, O]) openWith(k K, li int32, w window.Window, v T) {
	id := o.open(k, li, w)
	l := o.lists[li]
	e := &l[len(l)-1]
	e.acc = o.add(e.acc, v)
	o.schedule(id)
}

// floorMod returns x mod m in [0, m).
func floorMod(x, m int64) int64 {
	r := x % m
	if r < 0 {
		r += m
	}
	return r
}

func (o *winOp[K, T, A, O]) addSession(v T, t int64) {
	k := o.key(v)
	nw := window.Window{Start: t, End: t + o.gap}
	hits := o.hits[:0]
	merged := nw
	li, found := o.keys.get(k)
	if found {
		for _, e := range o.lists[li] {
			if w := o.slots.at(e.id).win; w.Overlaps(nw) {
				hits = append(hits, e.id)
				merged = merged.Cover(w)
			}
		}
	}
	o.hits = hits
	if len(hits) == 0 {
		if window.IsLate(nw, o.lateness, o.wm) {
			o.lateRecord(v, t)
			return
		}
		if !found {
			li = o.keyList(k)
		}
		o.openWith(k, li, nw, v)
		return
	}
	o.touch(li)
	target := hits[0]
	for _, h := range hits[1:] {
		acc := o.entry(h).acc
		te := o.entry(target)
		te.acc = o.merge(te.acc, acc)
		o.release(h)
	}
	s := o.slots.at(target)
	e := o.entry(target)
	e.acc = o.add(e.acc, v)
	if s.win != merged {
		s.win = merged
		e.start = merged.Start
		if !e.fired && merged.MaxTimestamp() > o.wm {
			// The pending firing entry (at the old end) re-arms itself at
			// the new end when it comes up: no heap push per record.
			return
		}
		o.schedule(target)
		return
	}
	if e.fired {
		// A late record inside an already fired session: re-emit.
		o.fire(s.key, s.win, e.acc, o.em)
	}
}

// advance fires every window whose end the time t has reached and drops
// windows past their cleanup time.
func (o *winOp[K, T, A, O]) advance(t int64) {
	for {
		due, ok := o.timers.min()
		if !ok || due > t {
			return
		}
		chunks, b := o.timers.take()
		for _, entries := range chunks {
			for _, te := range entries {
				o.due(te, t)
			}
		}
		o.timers.done(b)
	}
}

// due handles timer entry te at time t: fire its window, or drop it.
func (o *winOp[K, T, A, O]) due(te timerEntry, t int64) {
	s := o.slots.at(te.slot)
	if !s.live || s.gen != te.gen {
		return
	}
	if te.cleanup {
		o.release(te.slot)
		return
	}
	if mt := s.win.MaxTimestamp(); mt != te.t {
		// A session that grew since this entry was armed.
		o.timers.push(timerEntry{t: mt, slot: te.slot, gen: te.gen})
		return
	}
	e := o.entry(te.slot)
	o.fire(s.key, s.win, e.acc, o.em)
	ct := window.CleanupTime(s.win, o.lateness)
	if ct <= t {
		o.release(te.slot)
		return
	}
	e.fired = true
	o.touch(s.list)
	s.gen++
	o.timers.push(timerEntry{t: ct, slot: te.slot, gen: s.gen, cleanup: true})
}

func (o *winOp[K, T, A, O]) flush() {
	o.em.flush()
	o.cnt.Out.Add(o.em.count())
	if o.late != nil {
		o.late.flush()
	}
}

func (o *winOp[K, T, A, O]) watermark(wm int64) {
	defer o.recoverUser()
	if !o.proc {
		// A restored operator starts at its checkpointed watermark, which
		// the restarted sources may not have reached yet.
		o.wm = max(o.wm, wm)
		o.advance(o.wm)
		o.flush()
	}
	o.em.out.watermark(wm)
	if o.late != nil {
		o.late.out.watermark(wm)
	}
}

func (o *winOp[K, T, A, O]) nextProcTimer() int64 {
	if t, ok := o.timers.min(); ok {
		return t + 1
	}
	return math.MaxInt64
}

func (o *winOp[K, T, A, O]) fireProcTimers(now int64) {
	defer o.recoverUser()
	o.wm = now - 1
	o.advance(now - 1)
	o.flush()
}

func (o *winOp[K, T, A, O]) idle() {
	o.em.out.idle()
	if o.late != nil {
		o.late.out.idle()
	}
}

func (o *winOp[K, T, A, O]) barrier(id uint64) {
	if chk := o.t.job.chk; chk != nil {
		o.snapshot(chk, id)
	}
	o.em.out.barrier(id)
	if o.late != nil {
		o.late.out.barrier(id)
	}
}

func (o *winOp[K, T, A, O]) end() {
	defer o.recoverUser()
	if chk := o.t.job.chk; chk != nil {
		defer func() {
			o.snapWG.Wait()
			chk.finish(checkpoint.Ack{Task: checkpoint.TaskID{Operator: opKey(o.node), Subtask: o.sub}})
		}()
	}
	if o.proc {
		// Processing time will not reach the open windows of a finished
		// input: fire them now.
		o.advance(rt.MaxWatermark)
		o.flush()
	}
	o.em.out.end()
	if o.late != nil {
		o.late.out.end()
	}
}
