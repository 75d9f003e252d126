package stream

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/state/codec"
	"github.com/sluicehq/sluice/window"

	rt "github.com/sluicehq/sluice/internal/runtime"
)

// Session windows in a byte-level state backend (Pebble).
//
// Sessions merge, so a record must find the open sessions of its key. The
// operator keeps all the sessions of a key as one small entry, and a
// second set of entries, sorted by end, that serves as the timer index:
//
//	session: key group | "session"   | key (codec)
//	         -> count (uvarint) | per session by start: start (varint) |
//	            end (varint) | accumulator (codec)
//	timer:   key group | "session-t" | max timestamp (8) | start (8) | key
//	         -> empty
//
// (times order-preserving, see appendTime). A record at t reads its key's
// entry (one point read, or none: see below), merges the sessions that
// overlap [t, t+gap) with the new one, and writes the entry back. Every
// session of the store has exactly one timer entry, at its current end.
//
// An earlier layout kept one entry per session (key | start) and found a
// key's sessions by a prefix scan: every session the key ever had left a
// tombstone under the prefix, which the scan walked over until a
// compaction dropped it, so a record cost a walk over its key's history
// (q11 on Pebble: 17 k events per CPU-second against 2.4 M in memory).
// A point read of the key's entry sees only the newest version.
//
// Hot keys: the operator keeps the decoded entries of the keys it touched
// last in a Go map (sessEntry), written back: an entry reaches the store
// when it is evicted or at a checkpoint barrier, not once per record. The
// entry remembers which timer entries the store holds for the key
// (timers); the timers of changed entries are brought in line with their
// sessions (deletes and sets in the write batch) before a watermark scans
// them, at a barrier and at eviction, so a key extended by several
// records between two watermarks writes its timer once. The map holds as
// many entries as a quarter of what the store's budget of hot entries
// (state.CacheBudget) has left at start pays for at their estimated size,
// within [sessCacheMin, sessCacheMax]; an eviction writes back a quarter
// of them, in the map's random order.
//
// Absent keys: a key without sessions costs a Pebble point read of an
// absent key unless the key filter rules it out: a Bloom filter
// (window_kvfilter.go's winFilter, charged to the same budget) of every
// key that has an entry in the store. It is built at start by a scan of
// the session entries (after a restore) and every new entry adds its key;
// deletions leave false positives. A filter that cannot grow in the
// budget is dropped, and reads go to the store as without it.
//
// As for the non-merging windows (window_kv.go), a session of key group
// kg has fired when its max timestamp is at or before firedUpTo[kg]; a
// watermark t fires the timer range (firedUpTo, t] and drops the sessions
// up to t - lateness (with no lateness, in the same scan). The memory per
// key group is the time of the next timer to fire and of the oldest
// stored session (found again by the scan, so that a watermark visits
// only the key groups with something due).
//
// A merged session's accumulator merges the merged sessions in the order
// of their starts, then adds the record (in memory the order of merging
// is that of the key's list): with ProcessWindow on sessions, the order
// of the elements of a merged session is not defined on either backend.
//
// A checkpoint writes the cached entries back, then takes the backend's
// files plus the .winkv file with, per key group, the watermark and the
// fired-up-to time.

const (
	sessKVTable  = "session"
	sessKVTimers = "session-t"
	// sessKVLayout is the layout of the session entries, written after
	// the (empty) window ends of each key group's .winkv section: 2, an
	// entry per key. Sections without it (an entry per session, which
	// this operator cannot read) are refused.
	sessKVLayout = 2
)

// sessCacheMin and sessCacheMax bound the entries of the cache of hot
// keys (variables so that tests make it evict); sessEntryCost is the
// estimated bytes of a cached entry charged to the store's budget.
var sessCacheMin, sessCacheMax = 1024, 1 << 16

const sessEntryCost = 192

// sessKVOp is the session window operator over a KV state backend.
type sessKVOp[K comparable, T, A, O any] struct {
	opBase
	key      func(T) K
	hash     func(K) uint64
	maxPar   int
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
	backend   state.Backend
	kv        state.KVStore
	groups    state.KeyGroupRange
	firedUpTo []int64 // per key group of groups
	// nextFire and nextClean are, per key group, the max timestamp of the
	// earliest timer after firedUpTo and of the earliest timer overall
	// (math.MaxInt64: none; math.MinInt64: unknown, look at the next
	// watermark).
	nextFire  []int64
	nextClean []int64
	kc        codec.Codec[K]
	ac        codec.Codec[A]

	// cache holds the decoded entries of hot keys (at most maxCache);
	// tpend the entries whose timers differ from their sessions.
	cache    map[K]*sessEntry[K, A]
	maxCache int
	reserved int64
	budget   *state.CacheBudget
	tpend    []*sessEntry[K, A]
	// keys is the filter of the keys with an entry in the store (nil:
	// none, every miss of the cache reads the store).
	filters *winFilters
	keys    *winFilter

	kbuf, tbuf, vbuf []byte
	hits             []sessRec[A]
	scratch          sessEntry[K, A]

	restoreErr error
	snapWG     sync.WaitGroup
}

// sessRec is a session of a key.
type sessRec[A any] struct {
	win window.Window
	acc A
}

// sessEntry is the decoded entry of a key: its sessions by start.
type sessEntry[K comparable, A any] struct {
	k    K
	kg   int
	sess []sessRec[A]
	// timers are the windows of the key's timer entries in the store.
	timers []window.Window
	dirty  bool // sess differs from the store's entry
	tdirty bool // timers differ from sess (the entry is in tpend)
}

// sessKeysMT is the filters' slot of the key filter.
const sessKeysMT = math.MinInt64

// newSessKVOp makes the operator over backend b, or returns nil when b is
// the memory backend (whose in-memory operator is faster).
func newSessKVOp[K comparable, T, A, O any](b state.Backend, kc codec.Codec[K], ac codec.Codec[A]) (*sessKVOp[K, T, A, O], error) {
	if _, ok := b.(*state.Memory); ok {
		return nil, nil
	}
	var kv state.KVStore
	for _, name := range []string{sessKVTable, sessKVTimers} {
		t, err := b.Open(winTableDesc{name: name})
		if err != nil {
			return nil, fmt.Errorf("session window state table: %w", err)
		}
		wt, ok := t.(*winTable)
		if !ok || wt.kv == nil {
			return nil, fmt.Errorf("session window state: backend %T stores no bytes; use the memory backend or state/pebble", b)
		}
		kv = wt.kv
	}
	o := newSessKVOpState[K, T, A, O](b.KeyGroups())
	o.backend, o.kv, o.kc, o.ac = b, kv, kc, ac
	o.maxCache = sessCacheMin // without a budget
	if bu, ok := kv.(state.KVCacheBudget); ok {
		if o.budget = bu.CacheBudget(); o.budget != nil && o.budget.Limit() > 0 {
			// A quarter of what the budget has left, at most sessCacheMax
			// entries, at least sessCacheMin (uncharged beyond the
			// reservation).
			n := min(int64(sessCacheMax), (o.budget.Limit()-o.budget.Used())/4/sessEntryCost)
			if n > 0 && o.budget.Reserve(n*sessEntryCost) {
				o.reserved = n * sessEntryCost
				o.maxCache = max(o.maxCache, int(n))
			}
		}
	}
	o.maxCache = max(1, min(o.maxCache, sessCacheMax))
	if err := o.buildKeyFilter(); err != nil {
		return nil, fmt.Errorf("session window state: %w", err)
	}
	return o, nil
}

func newSessKVOpState[K comparable, T, A, O any](r state.KeyGroupRange) *sessKVOp[K, T, A, O] {
	o := &sessKVOp[K, T, A, O]{groups: r, wm: rt.MinWatermark, firedUpTo: make([]int64, r.Len()),
		nextFire: make([]int64, r.Len()), nextClean: make([]int64, r.Len()), cache: make(map[K]*sessEntry[K, A])}
	for i := range o.firedUpTo {
		o.firedUpTo[i] = math.MinInt64
		o.nextFire[i] = math.MaxInt64
		o.nextClean[i] = math.MaxInt64
	}
	return o
}

// buildKeyFilter makes the filter of the keys with an entry in the store
// (there are some after a restore): one scan of the session entries.
func (o *sessKVOp[K, T, A, O]) buildKeyFilter() error {
	o.filters = newWinFilters(o.kv)
	if o.filters == nil {
		return nil
	}
	o.keys = o.filters.create(sessKeysMT)
	for kg := o.groups.Start; kg < o.groups.End && o.keys != nil; kg++ {
		p := state.KVPrefix(nil, kg, sessKVTable)
		err := o.kv.Scan(p, bytesEnd(p), func(key, _ []byte) bool {
			o.addKey(key)
			return o.keys != nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// addKey adds the store key of an entry to the key filter.
func (o *sessKVOp[K, T, A, O]) addKey(key []byte) {
	if o.keys == nil {
		return
	}
	o.filters.add(sessKeysMT, o.keys, o.filters.hash(key))
	if o.filters.m[sessKeysMT] == nil {
		o.keys = nil // it could not grow: dropped
	}
}

func (o *sessKVOp[K, T, A, O]) check(op string, err error) {
	if err != nil {
		panic(&state.KVError{Table: sessKVTable, Op: op, Err: err})
	}
}

// entryKey returns, in o.kbuf, the key of k's entry.
func (o *sessKVOp[K, T, A, O]) entryKey(kg int, k K) []byte {
	o.kbuf = o.kc.Append(state.KVPrefix(o.kbuf[:0], kg, sessKVTable), k)
	return o.kbuf
}

// timerKey returns, in o.tbuf, the timer entry of k's session w.
func (o *sessKVOp[K, T, A, O]) timerKey(kg int, k K, w window.Window) []byte {
	b := appendTime(state.KVPrefix(o.tbuf[:0], kg, sessKVTimers), w.MaxTimestamp())
	o.tbuf = o.kc.Append(appendTime(b, w.Start), k)
	return o.tbuf
}

// read decodes k's entry of the store into e (sess and timers; e.sess
// empty when the key has none).
func (o *sessKVOp[K, T, A, O]) read(kg int, k K, e *sessEntry[K, A]) {
	e.k, e.kg, e.sess, e.timers, e.dirty, e.tdirty = k, kg, e.sess[:0], e.timers[:0], false, false
	key := o.entryKey(kg, k)
	if o.keys != nil && !o.keys.mayContain(o.filters.hash(key)) {
		return
	}
	val, ok, err := o.kv.Get(key, o.vbuf[:0])
	o.check("get", err)
	if !ok {
		return
	}
	o.vbuf = val
	n, m := binary.Uvarint(val)
	if m <= 0 || n > uint64(len(val)) {
		o.check("decode", fmt.Errorf("%w: session count", checkpoint.ErrCorrupt))
	}
	val = val[m:]
	for range n {
		start, m := binary.Varint(val)
		if m <= 0 {
			o.check("decode", fmt.Errorf("%w: session start", checkpoint.ErrCorrupt))
		}
		val = val[m:]
		end, m := binary.Varint(val)
		if m <= 0 {
			o.check("decode", fmt.Errorf("%w: session end", checkpoint.ErrCorrupt))
		}
		val = val[m:]
		acc, m, err := o.ac.Decode(val)
		o.check("decode", err)
		val = val[m:]
		w := window.Window{Start: start, End: end}
		e.sess = append(e.sess, sessRec[A]{win: w, acc: acc})
		e.timers = append(e.timers, w)
	}
	if len(val) != 0 {
		o.check("decode", fmt.Errorf("%w: %d trailing bytes in a session entry", checkpoint.ErrCorrupt, len(val)))
	}
}

// entry returns k's entry from the cache, loading it on a miss.
func (o *sessKVOp[K, T, A, O]) entry(kg int, k K) *sessEntry[K, A] {
	if e := o.cache[k]; e != nil {
		return e
	}
	if len(o.cache) >= o.maxCache {
		o.evict()
	}
	e := &sessEntry[K, A]{}
	o.read(kg, k, e)
	o.cache[k] = e
	return e
}

// evict writes back and drops about a quarter of the cached entries. It
// syncs every pending timer first, so that tpend never holds an entry the
// cache dropped (it only holds cached entries).
func (o *sessKVOp[K, T, A, O]) evict() {
	o.syncPending()
	n := len(o.cache)/4 + 1
	for k, e := range o.cache {
		if n == 0 {
			break
		}
		o.writeEntry(e)
		delete(o.cache, k)
		n--
	}
}

// writeEntry brings the store in line with e: its timers, then its
// sessions.
func (o *sessKVOp[K, T, A, O]) writeEntry(e *sessEntry[K, A]) {
	if e.tdirty {
		o.syncTimers(e)
	}
	if !e.dirty {
		return
	}
	e.dirty = false
	key := o.entryKey(e.kg, e.k)
	if len(e.sess) == 0 {
		o.check("delete", o.kv.Delete(key))
		return
	}
	b := binary.AppendUvarint(o.vbuf[:0], uint64(len(e.sess)))
	for _, s := range e.sess {
		b = binary.AppendVarint(b, s.win.Start)
		b = binary.AppendVarint(b, s.win.End)
		b = o.ac.Append(b, s.acc)
	}
	o.vbuf = b
	o.check("put", o.kv.Set(key, b))
	o.addKey(key)
}

// syncTimers makes the store's timer entries of e's key those of its
// sessions.
func (o *sessKVOp[K, T, A, O]) syncTimers(e *sessEntry[K, A]) {
	e.tdirty = false
	for _, w := range e.timers {
		if !hasSession(e.sess, w) {
			o.check("delete", o.kv.Delete(o.timerKey(e.kg, e.k, w)))
		}
	}
	for _, s := range e.sess {
		if !hasWindow(e.timers, s.win) {
			o.check("put", o.kv.Set(o.timerKey(e.kg, e.k, s.win), nil))
		}
	}
	e.timers = e.timers[:0]
	for _, s := range e.sess {
		e.timers = append(e.timers, s.win)
	}
}

func hasSession[A any](ss []sessRec[A], w window.Window) bool {
	for i := range ss {
		if ss[i].win == w {
			return true
		}
	}
	return false
}

func hasWindow(ws []window.Window, w window.Window) bool {
	for _, x := range ws {
		if x == w {
			return true
		}
	}
	return false
}

// syncPending syncs the timers of every changed entry.
func (o *sessKVOp[K, T, A, O]) syncPending() {
	for j, e := range o.tpend {
		if e.tdirty {
			o.syncTimers(e)
		}
		o.tpend[j] = nil
	}
	o.tpend = o.tpend[:0]
}

// writeBack writes every cached entry to the store (before a snapshot);
// the entries stay cached, clean.
func (o *sessKVOp[K, T, A, O]) writeBack() {
	o.syncPending()
	for _, e := range o.cache {
		o.writeEntry(e)
	}
}

func (o *sessKVOp[K, T, A, O]) push(vals []T, ts []int64) {
	defer o.recoverUser()
	if o.restoreErr != nil {
		o.fail(o.restoreErr)
	}
	o.curT = ts
	var now int64
	if o.proc {
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
		o.addSession(v, t)
	}
	o.pos = -1
	o.cnt.In.Add(int64(len(vals)))
	flushBackend(o.backend)
	o.flush()
}

// addSession adds v at time t: it merges the new session [t, t+gap) with
// the sessions of its key that it overlaps.
func (o *sessKVOp[K, T, A, O]) addSession(v T, t int64) {
	k := o.key(v)
	kg := state.KeyGroup(o.hash(k), o.maxPar)
	i := kg - o.groups.Start
	nw := window.Window{Start: t, End: t + o.gap}
	e := o.entry(kg, k)
	// The sessions are disjoint and sorted by start, so those that nw
	// overlaps are a run [first, last).
	first, last := -1, -1
	for j := range e.sess {
		if e.sess[j].win.Overlaps(nw) {
			if first < 0 {
				first = j
			}
			last = j + 1
		}
	}
	if first < 0 {
		if window.IsLate(nw, o.lateness, o.wm) {
			if o.late != nil {
				o.late.EmitAt(v, t)
			} else {
				o.cnt.Dropped.Add(1)
			}
			return
		}
		j := 0
		for j < len(e.sess) && e.sess[j].win.Start < nw.Start {
			j++
		}
		e.sess = append(e.sess, sessRec[A]{})
		copy(e.sess[j+1:], e.sess[j:])
		e.sess[j] = sessRec[A]{win: nw, acc: o.add(o.init(), v)}
		o.changed(e, i, j, true)
		return
	}
	merged := nw
	acc := e.sess[first].acc
	for j := first; j < last; j++ {
		merged = merged.Cover(e.sess[j].win)
		if j > first {
			acc = o.merge(acc, e.sess[j].acc)
		}
	}
	acc = o.add(acc, v)
	moved := last-first > 1 || merged != e.sess[first].win
	e.sess[first] = sessRec[A]{win: merged, acc: acc}
	if last-first > 1 {
		n := copy(e.sess[first+1:], e.sess[last:])
		clear(e.sess[first+1+n:])
		e.sess = e.sess[:first+1+n]
	}
	o.changed(e, i, first, moved)
}

// changed marks e's session j as changed (moved: its window too), and
// fires it at once if its time has passed (a late update within the
// allowed lateness, or a merge into an already fired session).
func (o *sessKVOp[K, T, A, O]) changed(e *sessEntry[K, A], i, j int, moved bool) {
	e.dirty = true
	if moved && !e.tdirty {
		e.tdirty = true
		o.tpend = append(o.tpend, e)
	}
	w := e.sess[j].win
	mt := w.MaxTimestamp()
	o.nextClean[i] = min(o.nextClean[i], mt)
	if mt <= o.firedUpTo[i] {
		o.fire(e.k, w, e.sess[j].acc, o.em)
		return
	}
	o.nextFire[i] = min(o.nextFire[i], mt)
}

// advance fires the sessions whose max timestamp is at most t and drops
// those past their cleanup time.
func (o *sessKVOp[K, T, A, O]) advance(t int64) {
	o.syncPending()
	// A session is dropped once mt + lateness <= t.
	c := t - o.lateness
	if c > t {
		c = math.MinInt64 // underflow: nothing is that old
	}
	for kg := o.groups.Start; kg < o.groups.End; kg++ {
		i := kg - o.groups.Start
		fire := o.nextFire[i] <= t && o.firedUpTo[i] < t
		if c == t && (fire || o.nextClean[i] <= c) {
			// No lateness: fire and drop in one scan.
			next := o.timerRange(kg, o.firedUpTo[i], t, c)
			o.nextFire[i], o.nextClean[i] = next, next
		} else {
			if fire {
				o.nextFire[i] = o.timerRange(kg, o.firedUpTo[i], t, math.MinInt64)
			}
			if o.nextClean[i] <= c {
				o.nextClean[i] = o.timerRange(kg, math.MaxInt64, c, c)
			}
		}
		o.firedUpTo[i] = max(o.firedUpTo[i], t)
	}
}

// timerPrefix returns the prefix of key group kg's timer entries.
func timerPrefix(kg int) []byte { return state.KVPrefix(nil, kg, sessKVTimers) }

// timerRange visits the timers of key group kg up to to: it fires the
// sessions whose max timestamp is in (from, to] and drops those at or
// before c (c < to: none; c == to: the scan starts at the first timer).
// It returns the max timestamp of the next timer after to.
func (o *sessKVOp[K, T, A, O]) timerRange(kg int, from, to, c int64) int64 {
	p := timerPrefix(kg)
	lo := p
	if c < to && from != math.MinInt64 {
		lo = appendTime(append([]byte(nil), p...), from+1)
	}
	next := int64(math.MaxInt64)
	dropped := false
	var derr error
	err := o.kv.Scan(lo, bytesEnd(p), func(key, _ []byte) bool {
		rest := key[len(p):]
		if len(rest) < 16 {
			derr = fmt.Errorf("%w: session timer key of %d bytes", checkpoint.ErrCorrupt, len(key))
			return false
		}
		mt, start := readTime(rest), readTime(rest[8:])
		if mt > to {
			next = mt
			return false
		}
		k, _, err := o.kc.Decode(rest[16:])
		if err != nil {
			derr = err
			return false
		}
		e := o.cache[k]
		if e == nil {
			e = &o.scratch
			o.read(kg, k, e)
		}
		j := 0
		for j < len(e.sess) && e.sess[j].win.Start != start {
			j++
		}
		if j == len(e.sess) || e.sess[j].win.MaxTimestamp() != mt {
			derr = fmt.Errorf("%w: timer of a missing session (key group %d, start %d)", checkpoint.ErrCorrupt, kg, start)
			return false
		}
		if mt > from {
			o.fire(k, e.sess[j].win, e.sess[j].acc, o.em)
		}
		if mt <= c {
			// Drop the session; the timers go by a range deletion below.
			dropped = true
			e.sess = append(e.sess[:j], e.sess[j+1:]...)
			clear(e.sess[len(e.sess):cap(e.sess)][:1])
			e.timers = dropTimer(e.timers, start, mt)
			e.dirty = true
			if e == &o.scratch {
				o.writeEntry(e)
			} else if len(e.sess) == 0 {
				o.writeEntry(e)
				delete(o.cache, k)
			}
		}
		return true
	})
	if e := &o.scratch; len(e.sess) > 0 || len(e.timers) > 0 {
		clear(e.sess[:cap(e.sess)])
		e.sess, e.timers = e.sess[:0], e.timers[:0]
	}
	o.check("scan", err)
	o.check("decode", derr)
	if dropped {
		hi := bytesEnd(p)
		if next != math.MaxInt64 {
			hi = appendTime(append([]byte(nil), p...), next)
		}
		o.check("delete", o.kv.DeleteRange(p, hi))
	}
	return next
}

// dropTimer removes the window of start and max timestamp mt from ws.
func dropTimer(ws []window.Window, start, mt int64) []window.Window {
	for j, w := range ws {
		if w.Start == start && w.MaxTimestamp() == mt {
			return append(ws[:j], ws[j+1:]...)
		}
	}
	return ws
}

func (o *sessKVOp[K, T, A, O]) flush() {
	o.em.flush()
	o.cnt.Out.Add(o.em.count())
	if o.late != nil {
		o.late.flush()
	}
}

func (o *sessKVOp[K, T, A, O]) watermark(wm int64) {
	defer o.recoverUser()
	if o.restoreErr != nil {
		o.fail(o.restoreErr)
	}
	if !o.proc {
		o.wm = max(o.wm, wm)
		o.advance(o.wm)
		flushBackend(o.backend)
		o.flush()
	}
	o.em.out.watermark(wm)
	if o.late != nil {
		o.late.out.watermark(wm)
	}
}

func (o *sessKVOp[K, T, A, O]) nextProcTimer() int64 {
	next := int64(math.MaxInt64)
	for i := range o.nextFire {
		if t := o.nextFire[i]; t < math.MaxInt64 {
			next = min(next, t+1)
		}
		if t := o.nextClean[i]; t < math.MaxInt64 {
			if ct := t + o.lateness; ct >= t && ct < math.MaxInt64 {
				next = min(next, ct+1)
			}
		}
	}
	return next
}

func (o *sessKVOp[K, T, A, O]) fireProcTimers(now int64) {
	defer o.recoverUser()
	o.wm = max(o.wm, now-1)
	o.advance(o.wm)
	flushBackend(o.backend)
	o.flush()
}

func (o *sessKVOp[K, T, A, O]) idle() {
	o.em.out.idle()
	if o.late != nil {
		o.late.out.idle()
	}
}

func (o *sessKVOp[K, T, A, O]) barrier(id uint64) {
	if chk := o.t.job.chk; chk != nil {
		o.writeBack()
		groups := make(map[int][]byte, o.groups.Len())
		for kg := o.groups.Start; kg < o.groups.End; kg++ {
			b := binary.AppendVarint(nil, o.wm)
			b = binary.AppendVarint(b, o.firedUpTo[kg-o.groups.Start])
			b = binary.AppendUvarint(b, 0) // no window ends: the timer index has them
			groups[kg] = binary.AppendUvarint(b, sessKVLayout)
		}
		snapshotWinKV(&o.opBase, chk, id, o.backend, o.groups, groups, &o.snapWG)
	}
	o.em.out.barrier(id)
	if o.late != nil {
		o.late.out.barrier(id)
	}
}

func (o *sessKVOp[K, T, A, O]) end() {
	defer o.recoverUser()
	if chk := o.t.job.chk; chk != nil {
		defer func() {
			o.snapWG.Wait()
			chk.finish(checkpoint.Ack{Task: checkpoint.TaskID{Operator: opKey(o.node), Subtask: o.sub}})
		}()
	}
	if o.proc {
		o.advance(rt.MaxWatermark)
		flushBackend(o.backend)
		o.flush()
	}
	o.em.out.end()
	if o.late != nil {
		o.late.out.end()
	}
}

// restoreSection reads one key group's section of the .winkv file. The
// next timers are unknown until the first watermark looks them up.
func (o *sessKVOp[K, T, A, O]) restoreSection(kg int, b []byte) (int64, error) {
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
	cnt, n := binary.Uvarint(b)
	if n <= 0 || cnt != 0 {
		return 0, fmt.Errorf("%w: session window section with window ends (a checkpoint of tumbling or sliding windows?)", checkpoint.ErrCorrupt)
	}
	b = b[n:]
	layout, n := binary.Uvarint(b)
	if n <= 0 || layout != sessKVLayout || len(b) != n {
		return 0, fmt.Errorf("%w: session window section of another entry layout (before the entry per key: an entry per session; restore it with the release that wrote it)", checkpoint.ErrCorrupt)
	}
	i := kg - o.groups.Start
	o.firedUpTo[i] = fu
	o.nextFire[i], o.nextClean[i] = math.MinInt64, math.MinInt64
	return wm, nil
}

// newSessKVOpFor builds the subtask's session operator over the
// configured state backend, or returns nil when the backend is the memory
// one. Errors of the backend or of the restore fail the task at its first
// record.
func newSessKVOpFor[K comparable, T, A, O any](bc *buildCtx, n *node, w WindowedStream[K, T],
	initF func() A, addF func(A, T) A, mergeF func(A, A) A, fire func(K, window.Window, A, *Emitter[O]), c *winCodecs[K, A]) *sessKVOp[K, T, A, O] {
	mp := bc.maxPar()
	kgr := state.RangeFor(mp, n.par, bc.sub)
	b, err := openStateBackend(bc, n, kgr)
	var o *sessKVOp[K, T, A, O]
	if err == nil {
		o, err = newSessKVOp[K, T, A, O](b, c.key, c.acc)
		if o == nil && err == nil {
			return nil
		}
	}
	if o == nil {
		o = newSessKVOpState[K, T, A, O](kgr)
		o.restoreErr = err
	}
	o.opBase = bc.base()
	o.key, o.hash, o.maxPar = w.ks.key, w.ks.hash, mp
	o.gap, o.proc, o.lateness = w.assigner.Gap(), w.assigner.Domain() == window.ProcessingTime, w.lateness
	o.init, o.add, o.merge, o.fire = initF, addF, mergeF, fire
	o.em = newEmitter(bc, outputOf[O](bc.outs[0]))
	if chk := bc.job.chk; chk != nil && chk.restored != nil && o.restoreErr == nil {
		wm, found, err := restoreWinKV(chk, chk.stateFiles(n), o.groups, o.restoreSection)
		if err != nil {
			o.restoreErr = fmt.Errorf("restore: %w", err)
		} else if found {
			o.wm = wm
		}
	}
	if o.proc {
		bc.t.proc = append(bc.t.proc, o)
	}
	return o
}
