package stream

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/state/codec"
)

// Chains of incremental snapshot files, shared by the operators that keep
// their state in memory: KeyedProcess on the memory backend
// (process_incremental.go) and the window operator (window_incremental.go).
// Design: docs/checkpoints.md, "Incremental snapshots of in-memory state".
//
// A subtask's checkpointed state is a chain of key-grouped state files in
// the storage's shared area: a base (".kbase", every entry) and increments
// (".kdelta", the entries written or deleted since the previous file),
// each checkpoint naming the whole chain in its manifest, so that
// retention keeps every file a retained checkpoint needs, as it does for
// Pebble's sstables. A section of a chain file is, per key group:
//
//	tables bytes   a state.Memory change section (name | change body per
//	               table; operators add pseudo-tables whose names start
//	               with "\x00": timers, windows, the watermark)
//	reserved byte  0 (1, timer lists, is refused)
//
// At the barrier the task goroutine encodes only the changed entries into
// memory (the operator's part) and calls submit; a writer goroutine writes
// and fsyncs the file and acknowledges the checkpoint when it is durable.
// The writers of one subtask run one after another, in checkpoint order.
// When the chain with the new changes would hold more than twice the
// live entries, or reach maxChain files (needFull counts them), the
// writer folds the chain and the new changes into a new base (the
// "compaction", off the task goroutine, without the operator's codecs:
// state.MergeChanges matches entries by their encoded keys).
//
// A writer that fails, or a checkpoint aborted before its writer ran,
// loses the changes it carried: the chain is marked broken and the next
// snapshot is a full base.
//
// Restore reads every file of the chain in order (readChainFile) and
// hands the operator each owned key group's tables, which it applies:
// a base resets the key group, puts overwrite, deletions remove.

// maxChain bounds the files of a chain (base included); a variable for
// the tests that make chains compact often.
var maxChain = 32

// chainSnap is the incremental snapshot state of one operator subtask.
type chainSnap struct {
	nonce string
	// Task goroutine.
	seq     int
	hasBase bool
	prev    chan struct{}
	// chainEntries is the number of entries in the chain's files (the
	// base's included), files the number of files, compactNext whether the
	// writer of this snapshot must compact the chain (needFull).
	chainEntries, files int
	compactNext         bool
	// lastArena is the size of the last snapshot's arena (takeArena).
	lastArena int
	// spare is an arena handed back by the writer that wrote it.
	spare atomic.Pointer[[]byte]
	// broken is set by a writer that lost changes: the next snapshot must
	// be full.
	broken atomic.Bool

	// Writers (one at a time, in order).
	chain     []chainFile
	chainOK   bool
	compacted int // compactions so far (tests)
}

type chainFile struct {
	name string // in the shared area
	path string // as manifests name it
	size int64
}

func newChainSnap() *chainSnap {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &chainSnap{nonce: hex.EncodeToString(b[:])}
}

// needFull reports, on the task goroutine at a barrier, whether the
// snapshot must be a base: there is none yet, or a writer lost an
// increment. It also plans the writer's compaction (c.compactNext, for
// submit): when the chain with this increment would hold more than
// twice the entries that are live (total), so that a restore would read
// more than twice the state, or would reach maxChain files. The bound
// is the live state, not the base: while the state grows (a job's
// first minutes, Nexmark's short runs) most changed entries are new
// ones, and an increment writes only those where a base (or a
// compaction once the increments' bytes outweighed the base's) would
// write every older entry again. A compaction, off the task goroutine,
// merges encoded sections; a base from the task would encode every live
// entry again at the barrier.
func (c *chainSnap) needFull(changed, total int) bool {
	full := !c.hasBase
	if c.broken.Swap(false) {
		full = true
	}
	c.compactNext = !full && (c.chainEntries+changed > 2*total || c.files+1 >= maxChain)
	if full || c.compactNext {
		// A base, written here or by the writer's compaction of the
		// chain: it holds the live entries.
		c.chainEntries, c.files = total, 1
	} else {
		c.chainEntries += changed
		c.files++
	}
	return full
}

// encodeFailed records that the operator could not encode a snapshot:
// its changes are lost, so the next one must be a base.
func (c *chainSnap) encodeFailed() { c.hasBase = false }

// Sections are encoded in place, one after another, into one buffer per
// snapshot, its arena (sectionArena): begin reserves a section's length
// prefix at the end of the arena, the operator appends the key group's
// tables after it, and end writes the length and the reserved byte. The
// writer hands the arena back once its file is written (submit), and the
// next snapshot encodes into it: a snapshot neither copies each key
// group's tables into a section of its own nor allocates (and zeroes)
// the bytes of the whole snapshot anew.

// sectionArena is the arena of one snapshot's sections.
type sectionArena struct {
	// buf is the arena; the operator appends a section's tables to it
	// between begin and end.
	buf []byte
	// made is the bytes of the sections made so far, done the number of
	// key groups begun so far.
	made, done int
}

// begin starts the section of the next key group, with left key groups
// still to come after it, and returns its offset for end. When the arena
// lacks room for what is left (projected from the sections so far, plus
// an eighth), a new one takes its place: the sections made stay where
// they are, not copied as a growing arena would, so that a snapshot of
// unknown size (the first, a base after increments) takes one or two
// allocations.
func (a *sectionArena) begin(left int) int {
	if a.done > 0 {
		need := a.made / a.done * (left + 1)
		need += need / 8
		if cap(a.buf)-len(a.buf) < need {
			a.buf = make([]byte, 0, need)
		}
	}
	a.done++
	var at int
	a.buf, at = codec.BeginPrefixed(a.buf)
	return at
}

// end completes the section begun at offset at and returns it (nil, and
// the arena as it was before begin, when no tables were appended). The
// section's capacity ends with it, so that later sections do not run
// into it.
func (a *sectionArena) end(at int) []byte {
	buf, n := codec.EndPrefixed(a.buf, at)
	if n == 0 {
		a.buf = buf[:at]
		return nil
	}
	a.buf = append(buf, 0)
	a.made += len(a.buf) - at
	return a.buf[at:len(a.buf):len(a.buf)]
}

// takeArena returns an empty arena for a snapshot's sections: the one a
// writer handed back, unless it is much larger than the last snapshot
// needed (a base after increments: let the collector have it), or a new
// one of about the last snapshot's size.
func (c *chainSnap) takeArena() *sectionArena {
	if p := c.spare.Swap(nil); p != nil && cap(*p) <= 4*c.lastArena+1<<20 {
		return &sectionArena{buf: (*p)[:0]}
	}
	return &sectionArena{buf: make([]byte, 0, c.lastArena+c.lastArena/4)}
}

// submit hands the encoded sections of checkpoint id (per key group, made
// in arena a; a base when full) to a writer
// goroutine, which writes them into the shared area after the writers of
// earlier checkpoints, acknowledges (or declines) for task, and hands the
// arena back for a later snapshot. wg counts the writer for the subtask's
// end.
func (c *chainSnap) submit(chk *chkRun, id uint64, task checkpoint.TaskID, full bool, groups map[int][]byte, a *sectionArena, wg *sync.WaitGroup) {
	c.hasBase = true
	c.lastArena = a.made
	arena := a.buf
	kgs := make([]int, 0, len(groups))
	for kg := range groups {
		kgs = append(kgs, kg)
	}
	slices.Sort(kgs)
	seq := c.seq
	c.seq++
	prev := c.prev
	done := make(chan struct{})
	c.prev = done
	maxPar := chk.maxPar
	compact := c.compactNext
	chk.async.Add(1)
	wg.Add(1)
	go func() {
		defer chk.async.Done()
		defer wg.Done()
		defer close(done)
		// Once written (or dropped), nothing reads the sections again.
		defer c.spare.Store(&arena)
		if prev != nil {
			<-prev
		}
		p := chk.pendingFor(id)
		if p == nil {
			// Aborted meanwhile: the changes are not recorded anywhere.
			c.chainOK = false
			c.broken.Store(true)
			return
		}
		prefix := fmt.Sprintf("op%s-%d-%s-%06d", task.Operator, task.Subtask, c.nonce, seq)
		files, err := c.write(chk, p, prefix, maxPar, full, compact, kgs, groups)
		if err != nil {
			c.chainOK = false
			c.broken.Store(true)
			chk.decline(id, task, fmt.Errorf("incremental snapshot: %w", err))
			return
		}
		chk.ack(id, checkpoint.Ack{Task: task, Files: files})
	}()
}

// write stores one snapshot of the chain and returns the files the
// checkpoint names: the chain, oldest first. With compact (or a chain of
// maxChain files) it folds the chain and the new changes into a base.
func (c *chainSnap) write(chk *chkRun, p checkpoint.Pending, prefix string, maxPar int, full, compact bool, kgs []int, groups map[int][]byte) ([]string, error) {
	sc, ok := p.(checkpoint.SharedCreator)
	if !ok {
		return nil, fmt.Errorf("checkpoint storage %T cannot write shared files", p)
	}
	if full {
		f, err := writeChainFile(sc, prefix+".kbase", maxPar, kgs, func(kg int) ([]byte, error) { return groups[kg], nil })
		if err != nil {
			return nil, err
		}
		c.chain, c.chainOK = []chainFile{f}, true
		return []string{f.path}, nil
	}
	if !c.chainOK {
		return nil, errors.New("an earlier increment of the chain was not written; the next checkpoint writes a full snapshot")
	}
	infos := make([]checkpoint.FileInfo, len(c.chain))
	for i, f := range c.chain {
		fi, ok := p.Shared(f.name)
		if !ok {
			return nil, fmt.Errorf("file %s of the increment chain is gone from the shared area", f.name)
		}
		infos[i] = fi
	}
	if compact || len(c.chain)+1 >= maxChain {
		f, err := c.compact(chk, sc, prefix+".kbase", maxPar, kgs, groups, infos)
		if err != nil {
			return nil, err
		}
		c.chain = []chainFile{f}
		c.compacted++
		return []string{f.path}, nil
	}
	f, err := writeChainFile(sc, prefix+".kdelta", maxPar, kgs, func(kg int) ([]byte, error) { return groups[kg], nil })
	if err != nil {
		return nil, err
	}
	c.chain = append(c.chain, f)
	out := make([]string, len(c.chain))
	for i, cf := range c.chain {
		out[i] = cf.path
	}
	return out, nil
}

// compact folds the chain and the new sections into a new base, one key
// group at a time. The chain's files are checked against their size and
// checksum (infos) first: damage the merge cannot see (a changed byte of
// a key or value) would otherwise go into the new base under a fresh
// checksum.
func (c *chainSnap) compact(chk *chkRun, sc checkpoint.SharedCreator, name string, maxPar int, kgs []int, groups map[int][]byte, infos []checkpoint.FileInfo) (chainFile, error) {
	var readers []*checkpoint.StateReader
	for i, cf := range c.chain {
		f, err := chk.store.Open(cf.path)
		if err != nil {
			return chainFile{}, err
		}
		defer f.Close()
		if err := verifyChainFile(f, infos[i]); err != nil {
			return chainFile{}, fmt.Errorf("%s: %w", cf.path, err)
		}
		sr, err := checkpoint.NewStateReader(f, f.Size())
		if err != nil {
			return chainFile{}, fmt.Errorf("%s: %w", cf.path, err)
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
	// writeChainFile writes each merged section before it asks for the
	// next one, so the buffers of one key group serve the next (no
	// allocation of the whole state per compaction).
	bufs := make([][]byte, len(readers))
	var out []byte
	var secs [][]byte
	return writeChainFile(sc, name, maxPar, merged, func(kg int) ([]byte, error) {
		secs = secs[:0]
		for i, sr := range readers {
			sec, ok := sr.KeyGroup(kg)
			if !ok {
				continue
			}
			b, err := readSectionInto(bufs[i][:0], sec)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.chain[i].path, err)
			}
			bufs[i] = b
			secs = append(secs, b)
		}
		if b, ok := groups[kg]; ok {
			secs = append(secs, b)
		}
		var err error
		out, err = mergeChainSections(out[:0], secs)
		return out, err
	})
}

// verifyChainFile checks f against the size and CRC-32C its checkpoint
// recorded.
func verifyChainFile(f checkpoint.File, fi checkpoint.FileInfo) error {
	if f.Size() != fi.Size {
		return fmt.Errorf("%w: %d bytes, the checkpoint says %d", checkpoint.ErrCorrupt, f.Size(), fi.Size)
	}
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, f.Size())); err != nil {
		return err
	}
	if sum := h.Sum32(); sum != fi.CRC32C {
		return fmt.Errorf("%w: checksum %08x, the checkpoint says %08x", checkpoint.ErrCorrupt, sum, fi.CRC32C)
	}
	return nil
}

// mergeChainSections folds the sections of one key group, oldest first,
// into one base section appended to dst[:0] (empty when nothing is left).
func mergeChainSections(dst []byte, secs [][]byte) ([]byte, error) {
	tables := make([][]byte, 0, len(secs))
	for _, s := range secs {
		t, err := splitChainSection(s)
		if err != nil {
			return nil, err
		}
		tables = append(tables, t)
	}
	// The merged tables are written in place behind a reserved length
	// prefix (moved when it is not 4 bytes long), not copied into a
	// section afterwards.
	const guess = 4
	size := guess + 1
	for _, t := range tables {
		size += len(t)
	}
	b, err := state.MergeChanges(append(slices.Grow(dst[:0], size), 0, 0, 0, 0), tables...)
	if err != nil || len(b) == guess {
		return dst[:0], err
	}
	n := len(b) - guess
	if need := codec.UvarintLen(uint64(n)); need != guess {
		if need > guess {
			b = append(b, make([]byte, need-guess)...)
		}
		copy(b[need:], b[guess:guess+n])
		b = b[:need+n]
	}
	binary.PutUvarint(b, uint64(n))
	return append(b, 0), nil
}

// readSection reads a key group's section of a state file into a buffer
// of its size.
func readSection(sec *io.SectionReader) ([]byte, error) {
	return readSectionInto(nil, sec)
}

// readSectionInto is readSection into buf's storage when it is large
// enough.
func readSectionInto(buf []byte, sec *io.SectionReader) ([]byte, error) {
	b := slices.Grow(buf[:0], int(sec.Size()))[:sec.Size()]
	if _, err := io.ReadFull(sec, b); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: section shorter than its index says", checkpoint.ErrCorrupt)
		}
		return nil, err
	}
	return b, nil
}

// splitChainSection returns the tables part of a chain section: its
// length-prefixed tables, then a byte reserved for future use that must
// be 0 (timers travel as entries of pseudo-tables).
func splitChainSection(s []byte) ([]byte, error) {
	// The tables alias s (no copy).
	l, n := binary.Uvarint(s)
	if n <= 0 || l > uint64(len(s)-n) {
		return nil, fmt.Errorf("%w: chain section tables: %v", checkpoint.ErrCorrupt, codec.ErrShort)
	}
	t := s[n : n+int(l)]
	if rest := s[n+int(l):]; len(rest) != 1 || rest[0] != 0 {
		return nil, fmt.Errorf("%w: chain section: want one reserved zero byte after the tables, found %d bytes", checkpoint.ErrCorrupt, len(rest))
	}
	return t, nil
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
	// A failed file is discarded, not closed: closing would store the
	// part written under the file's real name in the shared area.
	fail := func(err error) (chainFile, error) {
		w.Discard()
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

// readChainFile is the restore loop of every chain: it calls fn with the
// tables of each section of chain file path whose key group r holds, in
// key-group order. Files of one chain must be read oldest first.
func readChainFile(chk *chkRun, path string, r state.KeyGroupRange, fn func(kg int, tables []byte) error) error {
	return readKeyGroups(chk, path, r, func(kg int, b []byte) error {
		t, err := splitChainSection(b)
		if err != nil {
			return err
		}
		return fn(kg, t)
	})
}

// readKeyGroups reads the key-grouped state file path of the restored
// checkpoint and calls fn with each section whose key group r holds, in
// key-group order; fn's errors come back naming the file and key group.
// Every restore of key-grouped state (keyed process, windows, chains)
// reads through it.
func readKeyGroups(chk *chkRun, path string, r state.KeyGroupRange, fn func(kg int, section []byte) error) error {
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
		b, err := readSection(sec)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := fn(kg, b); err != nil {
			return fmt.Errorf("%s key group %d: %w", path, kg, err)
		}
	}
	return nil
}
