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
// Sessions merge, so a record must find the open sessions of its key: the
// operator keeps them as entries sorted by key and start, and a second
// set of entries, sorted by end, that serves as the timer index:
//
//	session: key group | "session"   | key (codec) | start (8 bytes)
//	         -> end (varint) | accumulator (codec)
//	timer:   key group | "session-t" | max timestamp (8) | start (8) | key
//	         -> empty
//
// (times order-preserving, see appendTime). A record at t looks up the
// sessions of its key that start before t+gap (one prefix scan, usually
// one or two entries), merges those that overlap [t, t+gap) with the new
// one, and rewrites the merged session and its timer entry. Every stored
// session has exactly one timer entry, at its current end.
//
// As for the non-merging windows (window_kv.go), a session of key group
// kg has fired when its max timestamp is at or before firedUpTo[kg]; a
// watermark t fires the timer range (firedUpTo, t] and drops the range up
// to t - lateness. The only memory per key group is the time of the next
// timer to fire and of the oldest stored session (found again by a seek
// after each scan, so that a watermark visits only the key groups with
// something due); nothing is kept per key or per session.
//
// A merged session's accumulator merges the merged sessions in the order
// of their starts, then adds the record (in memory the order of merging
// is that of the key's list): with ProcessWindow on sessions, the order
// of the elements of a merged session is not defined on either backend.
//
// A checkpoint is the backend's files plus the .winkv file with, per key
// group, the watermark and the fired-up-to time.

const (
	sessKVTable  = "session"
	sessKVTimers = "session-t"
)

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

	kbuf, tbuf, vbuf, pbuf []byte
	hits                   []sessHit[A]

	restoreErr error
	snapWG     sync.WaitGroup
}

// sessHit is a stored session of the record's key that the record's
// window overlaps.
type sessHit[A any] struct {
	win window.Window
	acc A
}

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
	return o, nil
}

func newSessKVOpState[K comparable, T, A, O any](r state.KeyGroupRange) *sessKVOp[K, T, A, O] {
	o := &sessKVOp[K, T, A, O]{groups: r, wm: rt.MinWatermark, firedUpTo: make([]int64, r.Len()),
		nextFire: make([]int64, r.Len()), nextClean: make([]int64, r.Len())}
	for i := range o.firedUpTo {
		o.firedUpTo[i] = math.MinInt64
		o.nextFire[i] = math.MaxInt64
		o.nextClean[i] = math.MaxInt64
	}
	return o
}

func (o *sessKVOp[K, T, A, O]) check(op string, err error) {
	if err != nil {
		panic(&state.KVError{Table: sessKVTable, Op: op, Err: err})
	}
}

// keyPrefix returns, in o.pbuf, the prefix of the sessions of key k.
func (o *sessKVOp[K, T, A, O]) keyPrefix(kg int, k K) []byte {
	o.pbuf = o.kc.Append(state.KVPrefix(o.pbuf[:0], kg, sessKVTable), k)
	return o.pbuf
}

// sessionKey returns, in o.kbuf, the key of k's session starting at start.
func (o *sessKVOp[K, T, A, O]) sessionKey(kg int, k K, start int64) []byte {
	o.kbuf = appendTime(o.kc.Append(state.KVPrefix(o.kbuf[:0], kg, sessKVTable), k), start)
	return o.kbuf
}

// timerKey returns, in o.tbuf, the timer entry of k's session w.
func (o *sessKVOp[K, T, A, O]) timerKey(kg int, k K, w window.Window) []byte {
	b := appendTime(state.KVPrefix(o.tbuf[:0], kg, sessKVTimers), w.MaxTimestamp())
	o.tbuf = o.kc.Append(appendTime(b, w.Start), k)
	return o.tbuf
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
// the stored sessions of its key that it overlaps.
func (o *sessKVOp[K, T, A, O]) addSession(v T, t int64) {
	k := o.key(v)
	kg := state.KeyGroup(o.hash(k), o.maxPar)
	i := kg - o.groups.Start
	nw := window.Window{Start: t, End: t + o.gap}
	p := o.keyPrefix(kg, k)
	hi := appendTime(append(o.kbuf[:0], p...), nw.End)
	o.kbuf = hi
	hits := o.hits[:0]
	var derr error
	err := o.kv.Scan(p, hi, func(key, val []byte) bool {
		if len(key) != len(p)+8 {
			derr = fmt.Errorf("%w: session entry key of %d bytes", checkpoint.ErrCorrupt, len(key))
			return false
		}
		end, n := binary.Varint(val)
		if n <= 0 {
			derr = fmt.Errorf("%w: session end", checkpoint.ErrCorrupt)
			return false
		}
		w := window.Window{Start: readTime(key[len(p):]), End: end}
		if !w.Overlaps(nw) {
			return true
		}
		acc, _, err := o.ac.Decode(val[n:])
		if err != nil {
			derr = err
			return false
		}
		hits = append(hits, sessHit[A]{win: w, acc: acc})
		return true
	})
	o.check("scan", err)
	o.check("decode", derr)
	o.hits = hits
	if len(hits) == 0 {
		if window.IsLate(nw, o.lateness, o.wm) {
			if o.late != nil {
				o.late.EmitAt(v, t)
			} else {
				o.cnt.Dropped.Add(1)
			}
			return
		}
		o.store(k, kg, i, nw, o.add(o.init(), v))
		return
	}
	merged := nw
	acc := hits[0].acc
	for j, h := range hits {
		merged = merged.Cover(h.win)
		if j > 0 {
			acc = o.merge(acc, h.acc)
		}
	}
	acc = o.add(acc, v)
	for j, h := range hits {
		if j == 0 && h.win == merged {
			continue // rewritten in place by store
		}
		o.check("delete", o.kv.Delete(o.sessionKey(kg, k, h.win.Start)))
		o.check("delete", o.kv.Delete(o.timerKey(kg, k, h.win)))
	}
	clear(hits)
	o.store(k, kg, i, merged, acc)
}

// store writes session w of key k with its accumulator and timer entry,
// and fires it at once if its time has passed (a late update within the
// allowed lateness, or a merge into an already fired session).
func (o *sessKVOp[K, T, A, O]) store(k K, kg, i int, w window.Window, acc A) {
	key := o.sessionKey(kg, k, w.Start)
	o.vbuf = o.ac.Append(binary.AppendVarint(o.vbuf[:0], w.End), acc)
	o.check("put", o.kv.Set(key, o.vbuf))
	o.check("put", o.kv.Set(o.timerKey(kg, k, w), nil))
	mt := w.MaxTimestamp()
	o.nextClean[i] = min(o.nextClean[i], mt)
	if mt <= o.firedUpTo[i] {
		o.fire(k, w, acc, o.em)
		return
	}
	o.nextFire[i] = min(o.nextFire[i], mt)
}

// advance fires the sessions whose max timestamp is at most t and drops
// those past their cleanup time.
func (o *sessKVOp[K, T, A, O]) advance(t int64) {
	for kg := o.groups.Start; kg < o.groups.End; kg++ {
		i := kg - o.groups.Start
		if o.nextFire[i] <= t && o.firedUpTo[i] < t {
			o.nextFire[i] = o.fireRange(kg, o.firedUpTo[i], t)
		}
		o.firedUpTo[i] = max(o.firedUpTo[i], t)
	}
	// A session is dropped once mt + lateness <= t.
	c := t - o.lateness
	if c > t {
		return // underflow: nothing is that old
	}
	for kg := o.groups.Start; kg < o.groups.End; kg++ {
		if i := kg - o.groups.Start; o.nextClean[i] <= c {
			o.nextClean[i] = o.cleanRange(kg, c)
		}
	}
}

// timerPrefix returns the prefix of key group kg's timer entries.
func timerPrefix(kg int) []byte { return state.KVPrefix(nil, kg, sessKVTimers) }

// fireRange fires the sessions of key group kg whose max timestamp is in
// (from, to] and returns the max timestamp of the next timer after to.
func (o *sessKVOp[K, T, A, O]) fireRange(kg int, from, to int64) int64 {
	p := timerPrefix(kg)
	lo := p
	if from != math.MinInt64 {
		lo = appendTime(append([]byte(nil), p...), from+1)
	}
	next := int64(math.MaxInt64)
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
		val, ok, err := o.kv.Get(o.sessionKey(kg, k, start), o.vbuf[:0])
		if err != nil || !ok {
			derr = fmt.Errorf("%w: timer of a missing session (key group %d, start %d)", checkpoint.ErrCorrupt, kg, start)
			if err != nil {
				derr = err
			}
			return false
		}
		o.vbuf = val
		end, n := binary.Varint(val)
		if n <= 0 || end-1 != mt {
			derr = fmt.Errorf("%w: session end does not match its timer", checkpoint.ErrCorrupt)
			return false
		}
		acc, _, err := o.ac.Decode(val[n:])
		if err != nil {
			derr = err
			return false
		}
		o.fire(k, window.Window{Start: start, End: end}, acc, o.em)
		return true
	})
	o.check("scan", err)
	o.check("decode", derr)
	return next
}

// cleanRange deletes the sessions of key group kg whose max timestamp is
// at most c and returns the max timestamp of the oldest one left.
func (o *sessKVOp[K, T, A, O]) cleanRange(kg int, c int64) int64 {
	p := timerPrefix(kg)
	next := int64(math.MaxInt64)
	var dels [][]byte
	var derr error
	err := o.kv.Scan(p, bytesEnd(p), func(key, _ []byte) bool {
		rest := key[len(p):]
		if len(rest) < 16 {
			derr = fmt.Errorf("%w: session timer key of %d bytes", checkpoint.ErrCorrupt, len(key))
			return false
		}
		mt := readTime(rest)
		if mt > c {
			next = mt
			return false
		}
		k, _, err := o.kc.Decode(rest[16:])
		if err != nil {
			derr = err
			return false
		}
		dels = append(dels, append([]byte(nil), o.sessionKey(kg, k, readTime(rest[8:]))...))
		return true
	})
	o.check("scan", err)
	o.check("decode", derr)
	for _, d := range dels {
		o.check("delete", o.kv.Delete(d))
	}
	if len(dels) > 0 {
		hi := bytesEnd(p)
		if next != math.MaxInt64 {
			hi = appendTime(append([]byte(nil), p...), next)
		}
		o.check("delete", o.kv.DeleteRange(p, hi))
	}
	return next
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
		groups := make(map[int][]byte, o.groups.Len())
		for kg := o.groups.Start; kg < o.groups.End; kg++ {
			b := binary.AppendVarint(nil, o.wm)
			b = binary.AppendVarint(b, o.firedUpTo[kg-o.groups.Start])
			groups[kg] = binary.AppendUvarint(b, 0) // no window ends: the timer index has them
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
	if n <= 0 || cnt != 0 || len(b) != n {
		return 0, fmt.Errorf("%w: session window section with window ends or trailing bytes (a checkpoint of tumbling or sliding windows?)", checkpoint.ErrCorrupt)
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
