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
	sb := inc.takeSections()
	if err := o.encodeChanges(sb, mem, full); err != nil {
		inc.encodeFailed()
		chk.decline(id, task, err)
		return
	}
	mem.ClearChanges()
	inc.submit(chk, id, task, full, sb, &o.snapWG)
}

// Timers are recorded like table entries, in pseudo-tables of the
// change section (names that no state table can have): the key is the
// encoded timer key and the varint time, the value empty. Increments
// carry the timers registered and removed since the previous snapshot.
const (
	eventTimersTable = "\x00timers/event"
	procTimersTable  = "\x00timers/processing"
)

// timerLists are the timers of one key group to record: puts (live) and
// deletions.
type timerLists[K comparable] struct{ puts, dels []timerKey[K] }

// timerChanges sorts the timers of s into lists by key group (index
// kg - r.Start of lists, reused from the previous snapshot): every timer
// (full) or those changed since the last call.
func (o *keyedProcessOp[K, T, R]) timerChanges(lists []timerLists[K], r state.KeyGroupRange, s *timerService[K], full bool) []timerLists[K] {
	if len(lists) != r.Len() {
		lists = make([]timerLists[K], r.Len())
	}
	for i := range lists {
		lists[i].puts, lists[i].dels = lists[i].puts[:0], lists[i].dels[:0]
	}
	if full {
		for tk := range s.set {
			l := &lists[state.KeyGroup(o.hash(tk.key), int(o.maxPar))-r.Start]
			l.puts = append(l.puts, tk)
		}
	} else {
		for tk, kg := range s.changed {
			l := &lists[int(kg)-r.Start]
			if _, ok := s.set[tk]; ok {
				l.puts = append(l.puts, tk)
			} else {
				l.dels = append(l.dels, tk)
			}
		}
	}
	s.changedHint = len(s.changed)
	s.changed = nil
	return lists
}

// appendTimerTable appends the pseudo-table name and change body of the
// timers l (what state.AppendChangeBody makes of their encoded keys and
// empty values), encoding them into body, a scratch buffer returned for
// reuse.
func appendTimerTable[K comparable](dst, body []byte, name string, kc codec.Codec[K], l *timerLists[K], reset bool) (out, scratch []byte) {
	var flags byte
	if reset {
		flags = 1
	}
	body = append(body[:0], flags)
	body = binary.AppendUvarint(body, uint64(len(l.puts)+len(l.dels)))
	entry := func(body []byte, op byte, tk timerKey[K]) []byte {
		body = append(body, op)
		// The key is length-prefixed in place: one byte reserved, moved
		// in the rare case of a key of 128 bytes or more.
		at := len(body)
		body = append(body, 0)
		body = binary.AppendVarint(kc.Append(body, tk.key), tk.t)
		n := len(body) - at - 1
		if need := codec.UvarintLen(uint64(n)); need > 1 {
			body = append(body, make([]byte, need-1)...)
			copy(body[at+need:], body[at+1:at+1+n])
		}
		binary.PutUvarint(body[at:], uint64(n))
		return body
	}
	for _, tk := range l.puts {
		body = append(entry(body, 0, tk), 0) // put, empty value
	}
	for _, tk := range l.dels {
		body = entry(body, 1, tk) // deletion
	}
	dst = codec.AppendString(dst, name)
	return codec.AppendBytes(dst, body), body
}

// encodeChanges encodes the sections of a chain file into sb: every key
// and timer (full) or the changed ones.
func (o *keyedProcessOp[K, T, R]) encodeChanges(sb *sectionBuf, mem *state.Memory, full bool) error {
	kc, err := codec.For[K]()
	if err != nil {
		return fmt.Errorf("keyed process key: %w", err)
	}
	r := o.backend.KeyGroups()
	o.evLists = o.timerChanges(o.evLists, r, &o.ctx.event, full)
	o.prLists = o.timerChanges(o.prLists, r, &o.ctx.proc, full)
	var body []byte
	for kg := r.Start; kg < r.End; kg++ {
		tables := sb.open()
		if tables, err = mem.AppendChanges(tables, kg, full); err != nil {
			return err
		}
		if l := &o.evLists[kg-r.Start]; len(l.puts)+len(l.dels) > 0 {
			tables, body = appendTimerTable(tables, body, eventTimersTable, kc, l, full)
		}
		if l := &o.prLists[kg-r.Start]; len(l.puts)+len(l.dels) > 0 {
			tables, body = appendTimerTable(tables, body, procTimersTable, kc, l, full)
		}
		sb.close(kg, tables)
	}
	return nil
}

// restoreChain applies chain file path (files of one chain come in
// order): the tables' changes at once, the timers of each key group kept
// in timers until every file is read, when the last ones count.
func (o *keyedProcessOp[K, T, R]) restoreChain(chk *chkRun, path string, timers map[timerSetKey]map[string]struct{}) error {
	mem, ok := o.backend.(*state.Memory)
	if !ok {
		return fmt.Errorf("%s: the checkpoint holds in-memory keyed state; restore it with the memory state backend", path)
	}
	return readChainFile(chk, path, o.backend.KeyGroups(), func(kg int, t []byte) error {
		// A fresh buffer per key group: ApplyChanges keeps the tables of
		// state not opened yet.
		var tables []byte
		err := state.WalkChanges(t, func(name string, body []byte) error {
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
			return state.WalkChangeBody(body, func() { clear(m) }, func(del bool, key, _ []byte) error {
				if del {
					delete(m, string(key))
				} else {
					m[string(key)] = struct{}{}
				}
				return nil
			})
		})
		if err != nil {
			return err
		}
		return mem.ApplyChanges(kg, tables)
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
