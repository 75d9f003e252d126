package stream

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/state/codec"
)

// Incremental snapshots of a KeyedProcess subtask on the memory backend
// (design: docs/checkpoints.md, "Incremental snapshots of in-memory
// state").
//
// The subtask's checkpointed state is a chain of key-grouped state files
// in the storage's shared area: a base (".kbase", every key) and
// increments (".kdelta", the keys written or deleted since the previous
// file), each checkpoint naming the whole chain in its manifest, so that
// retention keeps every file a retained checkpoint needs, as it does for
// Pebble's sstables. A section of a chain file is, per key group:
//
//	tables bytes   state.Memory change section (AppendChanges), plus the
//	               timers as entries of two pseudo-tables
//	reserved byte  0 (1, timer lists, is refused)
//
// At the barrier the task goroutine encodes only the changed keys and
// timers into memory; a writer goroutine writes and fsyncs the file and
// acknowledges the checkpoint when it is durable. The writers of one
// subtask run one after another, in checkpoint order. When the increments
// since the base outweigh the base, or the chain reaches maxChain files,
// the writer folds the chain and the new changes into a new base (the
// "compaction", off the task goroutine); when more than half of the keys
// changed, the task encodes a new base at once.
//
// A writer that fails, or a checkpoint aborted before its writer ran,
// loses the changes it carried: the chain is marked broken and the next
// snapshot is a full base.

// maxChain bounds the files of a chain (base included).
const maxChain = 32

// incSnap is the incremental snapshot state of one KeyedProcess subtask.
type incSnap struct {
	nonce string
	// Task goroutine.
	seq     int
	hasBase bool
	prev    chan struct{}
	// broken is set by a writer that lost changes: the next snapshot must
	// be full.
	broken atomic.Bool

	// Writers (one at a time, in order).
	chain     []chainFile
	chainOK   bool
	baseSize  int64
	deltaSize int64
	compacted int // compactions so far (tests)
}

type chainFile struct {
	name string // in the shared area
	path string // as manifests name it
	size int64
}

func newIncSnap() *incSnap {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &incSnap{nonce: hex.EncodeToString(b[:])}
}

// snapshotIncremental is snapshot for the memory backend with change
// tracking.
func (o *keyedProcessOp[K, T, R]) snapshotIncremental(chk *chkRun, id uint64, mem *state.Memory) {
	task := checkpoint.TaskID{Operator: opKey(o.node), Subtask: o.sub}
	inc := o.inc
	full := !inc.hasBase
	if inc.broken.Swap(false) {
		full = true
	}
	if !full {
		if ch := mem.Changed(); ch > 0 && 2*ch > mem.Len() {
			full = true // an increment would be as large as a base
		}
	}
	groups, err := o.encodeChanges(mem, full)
	if err != nil {
		inc.hasBase = false
		chk.decline(id, task, err)
		return
	}
	mem.ClearChanges()
	inc.hasBase = true
	kgs := make([]int, 0, len(groups))
	var size int64
	for kg, b := range groups {
		kgs = append(kgs, kg)
		size += int64(len(b))
	}
	slices.Sort(kgs)
	seq := inc.seq
	inc.seq++
	prev := inc.prev
	done := make(chan struct{})
	inc.prev = done
	maxPar := chk.maxPar
	chk.async.Add(1)
	o.snapWG.Add(1)
	go func() {
		defer chk.async.Done()
		defer o.snapWG.Done()
		defer close(done)
		if prev != nil {
			<-prev
		}
		p := chk.pendingFor(id)
		if p == nil {
			// Aborted meanwhile: the changes are not recorded anywhere.
			inc.chainOK = false
			inc.broken.Store(true)
			return
		}
		prefix := fmt.Sprintf("op%s-%d-%s-%06d", task.Operator, task.Subtask, inc.nonce, seq)
		files, err := inc.write(chk, p, prefix, maxPar, full, kgs, groups, size)
		if err != nil {
			inc.chainOK = false
			inc.broken.Store(true)
			chk.decline(id, task, fmt.Errorf("incremental snapshot: %w", err))
			return
		}
		chk.ack(id, checkpoint.Ack{Task: task, Files: files})
	}()
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
// s: every timer (full) or those changed since the last call.
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
	enc := func(tk timerKey[K]) []byte { return binary.AppendVarint(kc.Append(nil, tk.key), tk.t) }
	if full {
		for tk := range s.set {
			l := get(state.KeyGroup(o.hash(tk.key), int(o.maxPar)))
			l.puts = append(l.puts, enc(tk))
			l.vals = append(l.vals, nil)
		}
	} else {
		for tk, kg := range s.changed {
			l := get(int(kg))
			if _, ok := s.set[tk]; ok {
				l.puts = append(l.puts, enc(tk))
				l.vals = append(l.vals, nil)
			} else {
				l.dels = append(l.dels, enc(tk))
			}
		}
	}
	s.changed = nil
	out := make(map[int][]byte, len(by))
	for kg, l := range by {
		out[kg] = state.AppendChangeBody(nil, full, l.puts, l.vals, l.dels)
	}
	return out
}

// encodeChanges encodes the sections of a chain file: every key and
// timer (full) or the changed ones.
func (o *keyedProcessOp[K, T, R]) encodeChanges(mem *state.Memory, full bool) (map[int][]byte, error) {
	kc, err := codec.For[K]()
	if err != nil {
		return nil, fmt.Errorf("keyed process key: %w", err)
	}
	r := o.backend.KeyGroups()
	ev, pr := o.timerChanges(kc, &o.ctx.event, full), o.timerChanges(kc, &o.ctx.proc, full)
	groups := map[int][]byte{}
	var tables []byte
	for kg := r.Start; kg < r.End; kg++ {
		if tables, err = mem.AppendChanges(tables[:0], kg, full); err != nil {
			return nil, err
		}
		if b := ev[kg]; len(b) > 0 {
			tables = codec.AppendString(tables, eventTimersTable)
			tables = codec.AppendBytes(tables, b)
		}
		if b := pr[kg]; len(b) > 0 {
			tables = codec.AppendString(tables, procTimersTable)
			tables = codec.AppendBytes(tables, b)
		}
		if len(tables) == 0 {
			continue
		}
		b := codec.AppendBytes(make([]byte, 0, len(tables)+8), tables)
		groups[kg] = append(b, 0)
	}
	return groups, nil
}

// write stores one snapshot of the chain and returns the files the
// checkpoint names: the chain, oldest first.
func (inc *incSnap) write(chk *chkRun, p checkpoint.Pending, prefix string, maxPar int, full bool, kgs []int, groups map[int][]byte, size int64) ([]string, error) {
	sc, ok := p.(checkpoint.SharedCreator)
	if !ok {
		return nil, fmt.Errorf("checkpoint storage %T cannot write shared files", p)
	}
	if full {
		f, err := writeChainFile(sc, prefix+".kbase", maxPar, kgs, func(kg int) ([]byte, error) { return groups[kg], nil })
		if err != nil {
			return nil, err
		}
		inc.chain, inc.chainOK = []chainFile{f}, true
		inc.baseSize, inc.deltaSize = f.size, 0
		return []string{f.path}, nil
	}
	if !inc.chainOK {
		return nil, errors.New("an earlier increment of the chain was not written; the next checkpoint writes a full snapshot")
	}
	for _, f := range inc.chain {
		if _, ok := p.Shared(f.name); !ok {
			return nil, fmt.Errorf("file %s of the increment chain is gone from the shared area", f.name)
		}
	}
	if len(inc.chain)+1 >= maxChain || inc.deltaSize+size > inc.baseSize {
		f, err := inc.compact(chk, sc, prefix+".kbase", maxPar, kgs, groups)
		if err != nil {
			return nil, err
		}
		inc.chain = []chainFile{f}
		inc.baseSize, inc.deltaSize = f.size, 0
		inc.compacted++
		return []string{f.path}, nil
	}
	f, err := writeChainFile(sc, prefix+".kdelta", maxPar, kgs, func(kg int) ([]byte, error) { return groups[kg], nil })
	if err != nil {
		return nil, err
	}
	inc.chain = append(inc.chain, f)
	inc.deltaSize += f.size
	out := make([]string, len(inc.chain))
	for i, c := range inc.chain {
		out[i] = c.path
	}
	return out, nil
}

// compact folds the chain and the new sections into a new base, one key
// group at a time.
func (inc *incSnap) compact(chk *chkRun, sc checkpoint.SharedCreator, name string, maxPar int, kgs []int, groups map[int][]byte) (chainFile, error) {
	var readers []*checkpoint.StateReader
	for _, c := range inc.chain {
		f, err := chk.store.Open(c.path)
		if err != nil {
			return chainFile{}, err
		}
		defer f.Close()
		sr, err := checkpoint.NewStateReader(f, f.Size())
		if err != nil {
			return chainFile{}, fmt.Errorf("%s: %w", c.path, err)
		}
		readers = append(readers, sr)
	}
	all := map[int]bool{}
	for _, kg := range kgs {
		all[kg] = true
	}
	for _, sr := range readers {
		for _, kg := range sr.KeyGroups() {
			all[kg] = true
		}
	}
	merged := make([]int, 0, len(all))
	for kg := range all {
		merged = append(merged, kg)
	}
	slices.Sort(merged)
	return writeChainFile(sc, name, maxPar, merged, func(kg int) ([]byte, error) {
		var secs [][]byte
		for i, sr := range readers {
			sec, ok := sr.KeyGroup(kg)
			if !ok {
				continue
			}
			b, err := io.ReadAll(sec)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", inc.chain[i].path, err)
			}
			secs = append(secs, b)
		}
		if b, ok := groups[kg]; ok {
			secs = append(secs, b)
		}
		return mergeChainSections(secs)
	})
}

// mergeChainSections folds the sections of one key group, oldest first,
// into one base section (nil when nothing is left).
func mergeChainSections(secs [][]byte) ([]byte, error) {
	tables := make([][]byte, 0, len(secs))
	var timers []byte
	for _, s := range secs {
		t, rest, err := splitChainSection(s)
		if err != nil {
			return nil, err
		}
		tables = append(tables, t)
		if rest[0] == 1 {
			timers = rest
		}
	}
	t, err := state.MergeChanges(nil, tables...)
	if err != nil {
		return nil, err
	}
	hasTimers := len(timers) > 0 && !emptyTimers(timers[1:])
	if len(t) == 0 && !hasTimers {
		return nil, nil
	}
	out := codec.AppendBytes(make([]byte, 0, len(t)+len(timers)+8), t)
	if !hasTimers {
		return append(out, 0), nil
	}
	return append(out, timers...), nil
}

// emptyTimers reports whether timer lists are two zero counts.
func emptyTimers(b []byte) bool { return len(b) == 2 && b[0] == 0 && b[1] == 0 }

// splitChainSection splits a chain section into its tables part and the
// rest (the timers flag and lists).
func splitChainSection(s []byte) ([]byte, []byte, error) {
	t, n, err := codec.DecodeBytes(s)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: chain section tables: %v", checkpoint.ErrCorrupt, err)
	}
	rest := s[n:]
	if len(rest) < 1 || rest[0] > 1 {
		return nil, nil, fmt.Errorf("%w: chain section timers flag", checkpoint.ErrCorrupt)
	}
	return t, rest, nil
}

// writeChainFile writes a key-grouped file into the shared area; a key
// group whose section is empty is left out.
func writeChainFile(sc checkpoint.SharedCreator, name string, maxPar int, kgs []int, section func(kg int) ([]byte, error)) (chainFile, error) {
	w, err := sc.CreateShared(name)
	if err != nil {
		return chainFile{}, err
	}
	cw := &countWriter{w: w}
	sw := checkpoint.NewStateWriter(cw, maxPar)
	fail := func(err error) (chainFile, error) {
		w.Close()
		return chainFile{}, err
	}
	for _, kg := range kgs {
		b, err := section(kg)
		if err != nil {
			return fail(err)
		}
		if len(b) == 0 {
			continue
		}
		sec, err := sw.KeyGroup(kg)
		if err == nil {
			_, err = sec.Write(b)
		}
		if err != nil {
			return fail(err)
		}
	}
	if err := sw.Close(); err != nil {
		return fail(err)
	}
	if err := w.Close(); err != nil {
		return chainFile{}, err
	}
	return chainFile{name: name, path: w.Path(), size: cw.n}, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// isChainFile reports whether path is a file of an increment chain.
func isChainFile(path string) bool {
	n := len(path)
	return n > 6 && (path[n-6:] == ".kbase" || (n > 7 && path[n-7:] == ".kdelta"))
}

// restoreChain applies chain file path (files of one chain come in
// order): the tables' changes at once, the timers of each key group kept
// in timers until every file is read, when the last ones count.
func (o *keyedProcessOp[K, T, R]) restoreChain(chk *chkRun, path string, timers map[timerSetKey]map[string]struct{}) error {
	mem, ok := o.backend.(*state.Memory)
	if !ok {
		return fmt.Errorf("%s: the checkpoint holds in-memory keyed state; restore it with the memory state backend", path)
	}
	r := o.backend.KeyGroups()
	f, err := chk.restored.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sr, err := checkpoint.NewStateReader(f, f.Size())
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, kg := range sr.KeyGroups() {
		if !r.Contains(kg) {
			continue
		}
		sec, _ := sr.KeyGroup(kg)
		b, err := io.ReadAll(sec)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		t, rest, err := splitChainSection(b)
		if err != nil {
			return fmt.Errorf("%s key group %d: %w", path, kg, err)
		}
		if rest[0] == 1 {
			return fmt.Errorf("%s key group %d: %w: timer lists in a chain section", path, kg, checkpoint.ErrCorrupt)
		}
		var tables []byte
		err = state.WalkChanges(t, func(name string, body []byte) error {
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
		if err == nil {
			err = mem.ApplyChanges(kg, tables)
		}
		if err != nil {
			return fmt.Errorf("%s key group %d: %w", path, kg, err)
		}
	}
	return nil
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
