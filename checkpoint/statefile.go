package checkpoint

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
)

// State file format (version 1), written by StateWriter:
//
//	header   "SLST" | version u16 | maxParallelism u32
//	sections the bytes of each key group, in ascending key group order
//	index    count u32, then per section: keyGroup u32 | offset u64 | length u64
//	trailer  indexOffset u64 | crc32c(index) u32 | "SLST"
//
// All integers are big-endian. The index lets a subtask restoring at a
// different parallelism read only the key groups it now owns.
const (
	stateMagic      = "SLST"
	stateHeaderLen  = 4 + 2 + 4
	stateTrailerLen = 8 + 4 + 4
	stateEntryLen   = 4 + 8 + 8
)

// StateWriter writes a key-grouped state file: one section of opaque bytes
// per key group, and an index. It is not safe for concurrent use.
type StateWriter struct {
	w       io.Writer
	off     uint64
	maxPar  int
	index   []sectionEntry
	open    bool
	err     error
	started bool
}

type sectionEntry struct {
	kg       int
	off, len uint64
}

// NewStateWriter returns a writer of a state file of a job with
// maxParallelism key groups.
func NewStateWriter(w io.Writer, maxParallelism int) *StateWriter {
	return &StateWriter{w: w, maxPar: maxParallelism}
}

func (s *StateWriter) write(b []byte) {
	if s.err != nil {
		return
	}
	n, err := s.w.Write(b)
	s.off += uint64(n)
	if err != nil {
		s.err = fmt.Errorf("state file: %w", err)
	}
}

func (s *StateWriter) header() {
	if s.started {
		return
	}
	s.started = true
	var h [stateHeaderLen]byte
	copy(h[:], stateMagic)
	binary.BigEndian.PutUint16(h[4:], FormatVersion)
	binary.BigEndian.PutUint32(h[6:], uint32(s.maxPar))
	s.write(h[:])
}

// KeyGroup starts the section of key group kg and returns the writer of
// its bytes, valid until the next call. Key groups must come in ascending
// order, each at most once; a key group without state needs no section.
func (s *StateWriter) KeyGroup(kg int) (io.Writer, error) {
	if kg < 0 || kg >= s.maxPar {
		return nil, fmt.Errorf("state file: key group %d outside [0,%d)", kg, s.maxPar)
	}
	if n := len(s.index); n > 0 && s.index[n-1].kg >= kg {
		return nil, fmt.Errorf("state file: key group %d after %d", kg, s.index[n-1].kg)
	}
	s.header()
	s.closeSection()
	s.index = append(s.index, sectionEntry{kg: kg, off: s.off})
	s.open = true
	return sectionWriter{s}, s.err
}

type sectionWriter struct{ s *StateWriter }

func (w sectionWriter) Write(b []byte) (int, error) {
	if w.s.err != nil {
		return 0, w.s.err
	}
	before := w.s.off
	w.s.write(b)
	return int(w.s.off - before), w.s.err
}

func (s *StateWriter) closeSection() {
	if s.open {
		e := &s.index[len(s.index)-1]
		e.len = s.off - e.off
		s.open = false
	}
}

// Close writes the index and trailer. It does not close the underlying
// writer.
func (s *StateWriter) Close() error {
	s.header()
	s.closeSection()
	idxOff := s.off
	idx := make([]byte, 4, 4+len(s.index)*stateEntryLen)
	binary.BigEndian.PutUint32(idx, uint32(len(s.index)))
	for _, e := range s.index {
		idx = binary.BigEndian.AppendUint32(idx, uint32(e.kg))
		idx = binary.BigEndian.AppendUint64(idx, e.off)
		idx = binary.BigEndian.AppendUint64(idx, e.len)
	}
	s.write(idx)
	var t [stateTrailerLen]byte
	binary.BigEndian.PutUint64(t[:], idxOff)
	binary.BigEndian.PutUint32(t[8:], crc32.Checksum(idx, castagnoli))
	copy(t[12:], stateMagic)
	s.write(t[:])
	return s.err
}

// StateReader reads a state file written by StateWriter.
type StateReader struct {
	r       io.ReaderAt
	version int
	maxPar  int
	index   []sectionEntry
}

// NewStateReader opens the state file of size bytes read through r. It
// returns an error wrapping ErrCorrupt when the header, index or trailer
// do not decode, and ErrVersion for a newer format.
func NewStateReader(r io.ReaderAt, size int64) (*StateReader, error) {
	if size < stateHeaderLen+4+stateTrailerLen {
		return nil, fmt.Errorf("%w: state file of %d bytes is too short", ErrCorrupt, size)
	}
	var h [stateHeaderLen]byte
	if _, err := r.ReadAt(h[:], 0); err != nil {
		return nil, fmt.Errorf("state file header: %w", err)
	}
	if string(h[:4]) != stateMagic {
		return nil, fmt.Errorf("%w: state file magic %q", ErrCorrupt, h[:4])
	}
	s := &StateReader{r: r, version: int(binary.BigEndian.Uint16(h[4:])), maxPar: int(binary.BigEndian.Uint32(h[6:]))}
	if s.version == 0 {
		return nil, fmt.Errorf("%w: state file version 0", ErrCorrupt)
	}
	if s.version > FormatVersion {
		return nil, fmt.Errorf("%w: state file version %d, this build reads up to %d", ErrVersion, s.version, FormatVersion)
	}
	if s.maxPar <= 0 || s.maxPar > 1<<20 {
		return nil, fmt.Errorf("%w: state file max parallelism %d", ErrCorrupt, s.maxPar)
	}
	var t [stateTrailerLen]byte
	if _, err := r.ReadAt(t[:], size-stateTrailerLen); err != nil {
		return nil, fmt.Errorf("state file trailer: %w", err)
	}
	if string(t[12:]) != stateMagic {
		return nil, fmt.Errorf("%w: state file trailer magic %q (truncated?)", ErrCorrupt, t[12:])
	}
	idxOff := binary.BigEndian.Uint64(t[:])
	idxEnd := uint64(size - stateTrailerLen)
	if idxOff < stateHeaderLen || idxOff+4 > idxEnd {
		return nil, fmt.Errorf("%w: state file index offset %d", ErrCorrupt, idxOff)
	}
	idx := make([]byte, idxEnd-idxOff)
	if _, err := r.ReadAt(idx, int64(idxOff)); err != nil {
		return nil, fmt.Errorf("state file index: %w", err)
	}
	if crc32.Checksum(idx, castagnoli) != binary.BigEndian.Uint32(t[8:]) {
		return nil, fmt.Errorf("%w: state file index checksum", ErrCorrupt)
	}
	n := binary.BigEndian.Uint32(idx)
	if uint64(len(idx)-4) != uint64(n)*stateEntryLen {
		return nil, fmt.Errorf("%w: state file index of %d bytes for %d sections", ErrCorrupt, len(idx), n)
	}
	prev := -1
	for i := range int(n) {
		b := idx[4+i*stateEntryLen:]
		e := sectionEntry{kg: int(binary.BigEndian.Uint32(b)), off: binary.BigEndian.Uint64(b[4:]), len: binary.BigEndian.Uint64(b[12:])}
		if e.kg <= prev || e.kg >= s.maxPar || e.off < stateHeaderLen || e.off > idxOff || e.len > idxOff-e.off {
			return nil, fmt.Errorf("%w: state file section %d (key group %d at %d+%d)", ErrCorrupt, i, e.kg, e.off, e.len)
		}
		prev = e.kg
		s.index = append(s.index, e)
	}
	return s, nil
}

// Version returns the format version the file was written with.
func (s *StateReader) Version() int { return s.version }

// MaxParallelism returns the number of key groups of the job that wrote
// the file.
func (s *StateReader) MaxParallelism() int { return s.maxPar }

// KeyGroups returns the key groups that have a section, ascending.
func (s *StateReader) KeyGroups() []int {
	out := make([]int, len(s.index))
	for i, e := range s.index {
		out[i] = e.kg
	}
	return out
}

// KeyGroup returns a reader of key group kg's section; false if the file
// has no state for kg.
func (s *StateReader) KeyGroup(kg int) (*io.SectionReader, bool) {
	i, ok := slices.BinarySearchFunc(s.index, kg, func(e sectionEntry, kg int) int { return e.kg - kg })
	if !ok {
		return nil, false
	}
	e := s.index[i]
	return io.NewSectionReader(s.r, int64(e.off), int64(e.len)), true
}
