package stream

import (
	"encoding/binary"
	"fmt"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/state/codec"
)

// Incremental snapshots of a KeyedProcess subtask on the memory backend:
// the chain machinery is chain.go's; this file encodes the changed keys of
// the subtask's tables and its changed timers at the barrier, and applies
// a chain's sections on restore. Design: docs/checkpoints.md, "Incremental
// snapshots of in-memory state".

// snapshotIncremental is snapshot for the memory backend with change
// tracking.
func (o *keyedProcessOp[K, T, R]) snapshotIncremental(chk *chkRun, id uint64, mem *state.Memory) {
	task := checkpoint.TaskID{Operator: opKey(o.node), Subtask: o.sub}
	inc := o.inc
	full := inc.needFull(mem.Changed(), mem.Len())
	groups, arena, err := o.encodeChanges(mem, full)
	if err != nil {
		inc.encodeFailed()
		chk.decline(id, task, err)
		return
	}
	mem.ClearChanges()
	inc.submit(chk, id, task, full, groups, arena, &o.snapWG)
}

// Timers are recorded like table entries, in pseudo-tables of the
// change section (names that no state table can have): the key is the
// encoded timer key and the varint time, the value empty. Increments
// carry the timers registered and removed since the previous snapshot.
const (
	eventTimersTable = "\x00timers/event"
	procTimersTable  = "\x00timers/processing"
)

// timerChanges returns, per key group, the change body of the timers of
// s: every timer (full) or those changed since the last call, and starts
// a new generation (timerService).
func (o *keyedProcessOp[K, T, R]) timerChanges(kc codec.Codec[K], s *timerService[K], full bool) map[int][]byte {
	type lists struct{ puts, vals, dels [][]byte }
	by := map[int]*lists{}
	get := func(kg int) *lists {
		l := by[kg]
		if l == nil {
			l = &lists{}
			by[kg] = l
		}
		return l
	}
	enc := func(key K, t int64) []byte { return binary.AppendVarint(kc.Append(nil, key), t) }
	if full {
		for tk := range s.set {
			l := get(state.KeyGroup(o.hash(tk.key), int(o.maxPar)))
			l.puts = append(l.puts, enc(tk.key, tk.t))
			l.vals = append(l.vals, nil)
		}
	} else {
		// The timers registered in this generation and still live.
		for _, kt := range s.added {
			if kt.kg < 0 {
				continue
			}
			l := get(int(kt.kg))
			l.puts = append(l.puts, enc(kt.key, kt.t))
			l.vals = append(l.vals, nil)
		}
		// The timers of earlier snapshots removed since; one registered
		// again meanwhile is live and was recorded above.
		for _, kt := range s.removed {
			if _, ok := s.set[timerKey[K]{key: kt.key, t: kt.t}]; ok {
				continue
			}
			l := get(int(kt.kg))
			l.dels = append(l.dels, enc(kt.key, kt.t))
		}
	}
	// A new generation: every live timer is now older than it. The lists
	// keep their storage, without the keys they referenced.
	clear(s.added)
	clear(s.removed)
	s.added, s.removed = s.added[:0], s.removed[:0]
	if s.gen++; s.gen == 0 {
		// Wrapped (after 2^32 snapshots): every live timer becomes
		// older than generation 1.
		for tk := range s.set {
			s.set[tk] = 0
		}
		s.gen = 1
	}
	out := make(map[int][]byte, len(by))
	for kg, l := range by {
		out[kg] = state.AppendChangeBody(nil, full, l.puts, l.vals, l.dels)
	}
	return out
}

// encodeChanges encodes the sections of a chain file: every key and
// timer (full) or the changed ones, in place in one arena (chain.go).
func (o *keyedProcessOp[K, T, R]) encodeChanges(mem *state.Memory, full bool) (map[int][]byte, *sectionArena, error) {
	kc, err := codec.For[K]()
	if err != nil {
		return nil, nil, fmt.Errorf("keyed process key: %w", err)
	}
	r := o.backend.KeyGroups()
	ev, pr := o.timerChanges(kc, &o.ctx.event, full), o.timerChanges(kc, &o.ctx.proc, full)
	groups := map[int][]byte{}
	a := o.inc.takeArena()
	// Every key group carries the operator's watermark (as a window
	// operator's do), so that a subtask restoring any of them after a
	// rescale gets it.
	wm := state.AppendChangeBody(nil, full, [][]byte{nil}, [][]byte{binary.AppendVarint(nil, o.ctx.wm)}, nil)
	for kg := r.Start; kg < r.End; kg++ {
		at := a.begin(r.End - kg - 1)
		if a.buf, err = mem.AppendChanges(a.buf, kg, full); err != nil {
			return nil, nil, err
		}
		a.buf = codec.AppendString(a.buf, watermarkTable)
		a.buf = codec.AppendBytes(a.buf, wm)
		if b := ev[kg]; len(b) > 0 {
			a.buf = codec.AppendString(a.buf, eventTimersTable)
			a.buf = codec.AppendBytes(a.buf, b)
		}
		if b := pr[kg]; len(b) > 0 {
			a.buf = codec.AppendString(a.buf, procTimersTable)
			a.buf = codec.AppendBytes(a.buf, b)
		}
		if sec := a.end(at); sec != nil {
			groups[kg] = sec
		}
	}
	return groups, a, nil
}

// restoreChain applies chain file path (files of one chain come in
// order): the tables' changes at once, the timers of each key group kept
// in timers until every file is read, when the last ones count, and so
// is the watermark of each key group kept in wms.
func (o *keyedProcessOp[K, T, R]) restoreChain(chk *chkRun, path string, timers map[timerSetKey]map[string]struct{}, wms map[int]int64) error {
	mem, ok := o.backend.(*state.Memory)
	if !ok {
		return fmt.Errorf("%s: the checkpoint holds in-memory keyed state; restore it with the memory state backend", path)
	}
	return readChainFile(chk, path, o.backend.KeyGroups(), func(kg int, t []byte) error {
		// A fresh buffer per key group: ApplyChanges keeps the tables of
		// state not opened yet.
		var tables []byte
		err := state.WalkChanges(t, func(name string, body []byte) error {
			if name == watermarkTable {
				return state.WalkChangeBody(body, func() {}, func(del bool, _, v []byte) error {
					wm, n := binary.Varint(v)
					if del || n <= 0 || n != len(v) {
						return fmt.Errorf("%w: keyed process watermark", checkpoint.ErrCorrupt)
					}
					wms[kg] = wm
					return nil
				})
			}
			if name != eventTimersTable && name != procTimersTable {
				tables = codec.AppendString(tables, name)
				tables = codec.AppendBytes(tables, body)
				return nil
			}
			m := timers[timerSetKey{kg: kg, proc: name == procTimersTable}]
			if m == nil {
				m = map[string]struct{}{}
				timers[timerSetKey{kg: kg, proc: name == procTimersTable}] = m
			}
			return applyTimerChanges(m, body)
		})
		if err != nil {
			return err
		}
		return mem.ApplyChanges(kg, tables)
	})
}

// applyTimerChanges applies a change body of a timers table to m, the
// key group's encoded timers: a reset empties it, a deletion removes a
// timer, any other change adds one.
func applyTimerChanges(m map[string]struct{}, body []byte) error {
	return state.WalkChangeBody(body, func() { clear(m) }, func(del bool, key, _ []byte) error {
		if del {
			delete(m, string(key))
		} else {
			m[string(key)] = struct{}{}
		}
		return nil
	})
}

// timerSetKey names the timers of one key group and time domain while a
// chain is restored.
type timerSetKey struct {
	kg   int
	proc bool
}

// restoreChainTimers registers the timers a chain restore collected.
func (o *keyedProcessOp[K, T, R]) restoreChainTimers(kc codec.Codec[K], timers map[timerSetKey]map[string]struct{}) error {
	for sk, m := range timers {
		s := &o.ctx.event
		if sk.proc {
			s = &o.ctx.proc
		}
		for enc := range m {
			b := []byte(enc)
			k, a, err := kc.Decode(b)
			if err != nil {
				return fmt.Errorf("timer of key group %d: %w", sk.kg, err)
			}
			t, c := binary.Varint(b[a:])
			if c <= 0 || a+c != len(b) {
				return fmt.Errorf("%w: timer of key group %d", checkpoint.ErrCorrupt, sk.kg)
			}
			s.register(k, sk.kg, t)
		}
	}
	return nil
}
