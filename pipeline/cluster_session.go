package pipeline

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/window"
)

// sessionTask is a keyed session window over one repartition partition.
// Its results are those of the stream runtime's session operator
// (stream/windows.go, addSession and due) fed the same records and
// watermarks:
//
//   - A record at time t brings the window [t, t+gap) of its key. The
//     key's sessions that overlap it (strictly: sessions that only touch
//     stay apart) merge with it into one session covering them all, their
//     accumulators merged (windowPlan.merge) before the record is added.
//     If nothing overlaps, the record opens a session of its own, unless
//     that session would already be past its cleanup time (end-1 plus the
//     allowed lateness at or before the watermark): then the record is
//     late and dropped.
//   - A session fires when the watermark reaches its last instant (end-1)
//     and is kept, fired, until the watermark reaches end-1 plus the
//     allowed lateness; then it is deleted.
//   - A record that lands in a fired session without moving its bounds
//     fires it again at once. One that moves them fires the grown session
//     at once if the watermark is already past its new end, and otherwise
//     makes it pending again: it fires at its new end. A fresh session the
//     watermark already passed (late within the allowed lateness) fires at
//     once.
//
// Every decision depends only on the key's sessions and the watermark,
// so which of the merging sessions keeps the accumulator changes nothing
// but the order of the merge: here the earliest session takes the others
// in start order. (The stream operator merges in the order of its key's
// list, which follows its history; float sums of three or more sessions
// merged at once may therefore round differently in the last bit.)
//
// State: one table entry per key, 's' followed by the key's encoding,
// holding the key's sessions sorted by start (see encodeSessions). A key
// usually has one session open, plus the fired ones kept for the allowed
// lateness, so a merge rewrites one small entry and the changelog gets
// one record per changed key per commit. The timers (the earliest time at
// which each key has something to fire or delete) are in memory, rebuilt
// from the table after an abort and armed as a restore applies records.
type sessionTask struct {
	w        *windowPlan
	em       *emitPlan
	gap      int64
	lateness int64
	tableState[*sessionList]
	timers timerIndex
	// armed is the earliest time queued in timers for each key. A change
	// that only postpones a key's sessions (a session growing) queues
	// nothing: the earlier entry finds nothing due when it comes up and
	// queues the key's next time then, as the stream operator does.
	armed       map[string]int64
	wm          int64
	committedWM int64
}

// session is one session of a key: its bounds, whether it fired and its
// accumulator.
type session struct {
	start, end int64
	fired      bool
	acc        *winAcc
}

func (s *session) window() window.Window { return window.Window{Start: s.start, End: s.end} }

// sessionList is a key's sessions, sorted by start and not overlapping.
type sessionList struct {
	ss []session
}

func newSessionTask(w *windowPlan, em *emitPlan) *sessionTask {
	return &sessionTask{
		w: w, em: em,
		gap:        w.spec.Gap.Milliseconds(),
		lateness:   w.spec.AllowedLateness.Milliseconds(),
		tableState: tableState[*sessionList]{cluster.NewTable(encodeSessions, decodeSessions)},
		armed:      map[string]int64{},
		wm:         cluster.NoWatermark, committedWM: cluster.NoWatermark,
	}
}

// sessionStateKey is 's' then the key's encoding.
func sessionStateKey(key []byte) string {
	b := make([]byte, 0, 1+len(key))
	b = append(b, 's')
	return string(append(b, key...))
}

// encodeSessions encodes a key's sessions: the codec version, the count,
// then per session its start (varint), its length (uvarint), whether it
// fired (1 byte) and its accumulator (uvarint length, winAcc encoding).
func encodeSessions(l *sessionList) []byte {
	b := []byte{codecVersion}
	b = binary.AppendUvarint(b, uint64(len(l.ss)))
	for i := range l.ss {
		s := &l.ss[i]
		b = binary.AppendVarint(b, s.start)
		b = binary.AppendUvarint(b, uint64(s.end-s.start))
		if s.fired {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
		acc, _ := s.acc.MarshalBinary()
		b = binary.AppendUvarint(b, uint64(len(acc)))
		b = append(b, acc...)
	}
	return b
}

func decodeSessions(b []byte) (*sessionList, error) {
	d := decoder{b: b}
	if d.byte() != codecVersion {
		return nil, fmt.Errorf("%w: session list version", errCodec)
	}
	n := d.uvarint()
	if n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: session count", errCodec)
	}
	l := &sessionList{ss: make([]session, 0, n)}
	for range n {
		s := session{start: d.varint()}
		s.end = s.start + int64(d.uvarint())
		s.fired = d.byte() == 1
		al := d.uvarint()
		if d.err != nil || al > uint64(len(d.b)) {
			return nil, fmt.Errorf("%w: session", errCodec)
		}
		s.acc = &winAcc{}
		if err := s.acc.UnmarshalBinary(d.b[:al]); err != nil {
			return nil, err
		}
		d.b = d.b[al:]
		if k := len(l.ss); k > 0 && l.ss[k-1].end > s.start {
			return nil, fmt.Errorf("%w: overlapping or unsorted sessions", errCodec)
		}
		l.ss = append(l.ss, s)
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, fmt.Errorf("%w: session list", errCodec)
	}
	return l, nil
}

// overlapping returns the range [lo, hi) of the sessions overlapping w;
// when none does, lo == hi is where a session starting at w.Start goes.
func (l *sessionList) overlapping(w window.Window) (lo, hi int) {
	for lo < len(l.ss) && l.ss[lo].end <= w.Start {
		lo++
	}
	hi = lo
	for hi < len(l.ss) && l.ss[hi].start < w.End {
		hi++
	}
	return lo, hi
}

func (t *sessionTask) Process(out cluster.Output, r *kgo.Record) error {
	x, ts, ok, err := prepareRecord(t.w, t.em, r)
	if !ok {
		return err
	}
	nw := window.Window{Start: ts, End: ts + t.gap}
	k := sessionStateKey(r.Key)
	l, ok := t.tab.Get(k)
	var lo, hi int
	if ok {
		lo, hi = l.overlapping(nw)
	}
	if lo == hi {
		if window.IsLate(nw, t.lateness, t.wm) {
			return nil // late beyond the allowed lateness
		}
		if ok {
			t.tab.Touch(k)
		} else {
			l = &sessionList{}
			t.tab.Put(k, l)
		}
		s := session{start: nw.Start, end: nw.End, acc: t.w.newAcc()}
		t.w.add(s.acc, x)
		l.ss = append(l.ss, session{})
		copy(l.ss[lo+1:], l.ss[lo:])
		l.ss[lo] = s
		var err error
		if nw.MaxTimestamp() <= t.wm {
			// Late, but within the allowed lateness: it fires at once.
			l.ss[lo].fired = true
			err = t.fire(out, &l.ss[lo])
		}
		t.arm(k, l)
		return err
	}
	t.tab.Touch(k)
	s := &l.ss[lo]
	merged := nw
	for i := lo; i < hi; i++ {
		merged = merged.Cover(l.ss[i].window())
	}
	if hi-lo > 1 {
		for i := lo + 1; i < hi; i++ {
			t.w.merge(s.acc, l.ss[i].acc)
		}
		n := copy(l.ss[lo+1:], l.ss[hi:])
		clear(l.ss[lo+1+n:])
		l.ss = l.ss[:lo+1+n]
	}
	t.w.add(s.acc, x)
	if merged != s.window() {
		s.start, s.end = merged.Start, merged.End
		if merged.MaxTimestamp() > t.wm {
			// Pending (again): it fires at its new end.
			s.fired = false
			t.arm(k, l)
			return nil
		}
		// Every merged session had fired (a pending one ends after the
		// watermark): the grown session fires at once.
		s.fired = true
		t.arm(k, l)
		return t.fire(out, s)
	}
	if s.fired {
		// Late within the allowed lateness, inside a fired session.
		return t.fire(out, s)
	}
	return nil
}

// fire emits a session's result, timestamped with its last instant.
func (t *sessionTask) fire(out cluster.Output, s *session) error {
	vals := t.w.result(s.acc)
	n := len(t.w.keyIdx)
	vals[n] = row.Int(s.start)
	vals[n+1] = row.Int(s.end)
	return t.em.emit(out, row.Row{Vals: vals}, s.end-1, t.w.stage, -1)
}

// due is when s next needs the watermark: its firing, or once fired its
// deletion.
func (t *sessionTask) due(s *session) int64 {
	if s.fired {
		return window.CleanupTime(s.window(), t.lateness)
	}
	return s.window().MaxTimestamp()
}

// arm queues key k's earliest due time unless an earlier one is queued.
func (t *sessionTask) arm(k string, l *sessionList) {
	if len(l.ss) == 0 {
		return
	}
	next := int64(math.MaxInt64)
	for i := range l.ss {
		next = min(next, t.due(&l.ss[i]))
	}
	if a, ok := t.armed[k]; ok && a <= next {
		return
	}
	t.armed[k] = next
	t.timers.add(next, k)
}

func (t *sessionTask) Watermark(out cluster.Output, wm int64) error {
	if wm <= t.wm {
		return nil
	}
	t.wm = wm
	for _, k := range t.timers.due(wm) {
		delete(t.armed, k)
		l, ok := t.tab.Get(k)
		if !ok {
			continue
		}
		changed := false
		for i := range l.ss {
			if t.due(&l.ss[i]) <= wm {
				changed = true
				break
			}
		}
		if !changed {
			t.arm(k, l) // a session that grew or fired since this timer
			continue
		}
		t.tab.Touch(k)
		keep := l.ss[:0]
		for i := range l.ss {
			s := l.ss[i]
			if !s.fired && s.window().MaxTimestamp() <= wm {
				if err := t.fire(out, &s); err != nil {
					return err
				}
				s.fired = true
			}
			if s.fired && window.CleanupTime(s.window(), t.lateness) <= wm {
				continue
			}
			keep = append(keep, s)
		}
		clear(l.ss[len(keep):])
		l.ss = keep
		if len(l.ss) == 0 {
			t.tab.Delete(k)
			continue
		}
		t.arm(k, l)
	}
	return nil
}

func (t *sessionTask) Commit() {
	t.tab.Commit()
	t.committedWM = t.wm
}

// Abort returns to the last commit: the table's sessions, the watermark
// then (the instance replays the records since from there) and the timers
// rebuilt from the sessions.
func (t *sessionTask) Abort() {
	_ = t.tab.Abort()
	t.wm = t.committedWM
	t.timers = timerIndex{}
	clear(t.armed)
	t.tab.Range(func(k string, l *sessionList) bool {
		t.arm(k, l)
		return true
	})
}

func (t *sessionTask) Restore(key, value []byte) error {
	k := string(key)
	if len(k) < 1 || k[0] != 's' {
		return fmt.Errorf("unexpected session state key %q", key)
	}
	// The key's timer follows its latest value: a standby applies a
	// changelog for long without a watermark, and timers of keys since
	// deleted would pile up.
	if a, ok := t.armed[k]; ok {
		t.timers.remove(a, k)
		delete(t.armed, k)
	}
	if err := t.tab.Restore(k, value); err != nil {
		return fmt.Errorf("session state of key %q: %w", key[1:], err)
	}
	if l, ok := t.tab.Get(k); ok {
		t.arm(k, l)
	}
	return nil
}
