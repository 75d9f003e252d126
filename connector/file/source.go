package file

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// HeaderKey is the message header under which a source configured with
// Header passes each file's first line (a CSV header) along with every
// record of that file.
const HeaderKey = "csv_header"

// SourceConfig configures a file source.
type SourceConfig struct {
	// Path is a file or a directory.
	Path string
	// Follow keeps reading appended data and new files instead of
	// finishing at the end. A followed file truncated in place is read
	// again from its start; one renamed away and replaced by a new file
	// under its name is read to its end, then the new file (tail -F).
	Follow bool
	// PollInterval is how often a following source looks for new data.
	// This overrides the default of 200ms.
	PollInterval time.Duration
	// Header treats the first line of each file as a header: it is not a
	// record but is attached to every record of the file under HeaderKey.
	Header bool
	// MaxLineBytes bounds a line, and the incomplete last line a
	// following source keeps while it waits for the rest; longer lines
	// fail the source. This overrides the default of 16 MiB.
	MaxLineBytes int
	// Records, when set, reads each file as records framed some other way
	// than by lines (Avro object container files). Header and
	// MaxLineBytes do not apply; Follow picks up new files of a
	// directory but not data appended to a file already read, so files
	// must be complete when they appear (written under a hidden name and
	// renamed into place, as Sink does).
	Records Framing
	// Logger receives warnings (a followed file truncated in place); nil
	// means slog.Default().
	Logger *slog.Logger
}

// Framing reads the records of files that are not lines.
type Framing interface {
	// Open starts reading the records of the file name from r.
	Open(name string, r io.Reader) (RecordReader, error)
}

// RecordReader returns the records of one file in order.
type RecordReader interface {
	// Next returns the next record's value and the headers to pass along
	// with it, or io.EOF after the last record. The value stays valid
	// after later calls. Any other error fails the source.
	Next() (value []byte, headers []connector.Header, err error)
}

// Source is a file source; see the package doc.
type Source struct {
	cfg SourceConfig
}

// NewSource checks cfg and returns a source. The path must exist.
func NewSource(cfg SourceConfig) (*Source, error) {
	if cfg.Path == "" {
		return nil, errors.New("file source: path is required")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 200 * time.Millisecond
	}
	if cfg.MaxLineBytes <= 0 {
		cfg.MaxLineBytes = 16 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Source{cfg: cfg}, nil
}

// listFiles returns the files of the source in name order.
func (s *Source) listFiles() (files []string, dir bool, err error) {
	st, err := os.Stat(s.cfg.Path)
	if err != nil {
		return nil, false, fmt.Errorf("file source: %w", err)
	}
	if !st.IsDir() {
		return []string{s.cfg.Path}, false, nil
	}
	ents, err := os.ReadDir(s.cfg.Path)
	if err != nil {
		return nil, true, fmt.Errorf("file source: %w", err)
	}
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") || !e.Type().IsRegular() {
			continue
		}
		files = append(files, filepath.Join(s.cfg.Path, n))
	}
	sort.Strings(files)
	return files, true, nil
}

// Splits implements stream.Source. A bounded source over k files has
// min(k, parallelism) splits, split i reading files i, i+n, ... in name
// order. A following source has one split, so that it reads the
// directory strictly in name order.
func (s *Source) Splits(_ context.Context, parallelism int) ([]stream.Split[connector.Message], error) {
	files, dir, err := s.listFiles()
	if err != nil {
		return nil, err
	}
	if s.cfg.Follow {
		return []stream.Split[connector.Message]{&split{src: s, id: s.cfg.Path, files: files, watchDir: dir}}, nil
	}
	n := min(max(parallelism, 1), len(files))
	if n == 0 {
		return []stream.Split[connector.Message]{&split{src: s, id: s.cfg.Path}}, nil
	}
	out := make([]stream.Split[connector.Message], n)
	for i := range n {
		sp := &split{src: s, id: fmt.Sprintf("%s#%d", s.cfg.Path, i)}
		for j := i; j < len(files); j += n {
			sp.files = append(sp.files, files[j])
		}
		out[i] = sp
	}
	return out, nil
}

// split reads its files one after the other.
type split struct {
	src      *Source
	id       string
	files    []string
	watchDir bool

	cur    int // index into files
	f      *os.File
	r      *bufio.Reader
	off    int64 // byte offset in the current file after the last record
	line   int64 // lines read in the current file
	header []connector.Header
	slab   []byte
	part   []byte // a following split's incomplete last line
	rr     RecordReader
	// fid is the identity (device and inode) of the file off counts in,
	// when known (hasID): a following split's position names it, so that
	// a restore finds the file again after a rename-style rotation.
	fid   fileID
	hasID bool
	// rotated: the open file was renamed away and another file now has
	// its name; it is read to its end, then the file under the name from
	// its first byte (tail -F).
	rotated bool
}

// fileID is a file's device and inode number.
type fileID struct{ dev, ino uint64 }

// idLen is the length of an encoded fileID in a position.
const idLen = 16

func (s *split) ID() string { return s.id }

// Position is the index of the current file, its name, the byte offset
// and the line count, and, for a split following one file whose identity
// is known, a zero byte (no file name holds one) and that identity (device
// and inode, 8 bytes each): the file may be renamed away (rotated) before
// the position is restored. With Records, the byte offset is zero and the
// line count is the number of records of the file read: resuming opens
// the file again and skips that many records.
func (s *split) Position() []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(s.cur))
	b = binary.BigEndian.AppendUint64(b, uint64(s.off))
	b = binary.BigEndian.AppendUint64(b, uint64(s.line))
	if s.cur < len(s.files) {
		b = append(b, s.files[s.cur]...)
		if s.hasID {
			b = append(b, 0)
			b = binary.BigEndian.AppendUint64(b, s.fid.dev)
			b = binary.BigEndian.AppendUint64(b, s.fid.ino)
		}
	}
	return b
}

// Seek restores a Position: reading continues in the same file (found by
// name) after the same byte.
func (s *split) Seek(pos []byte) error {
	if len(pos) < 20 {
		return fmt.Errorf("file split %s: %w: %d bytes", s.id, stream.ErrBadPosition, len(pos))
	}
	name := string(pos[20:])
	s.hasID = false
	if i := strings.IndexByte(name, 0); i >= 0 {
		id := []byte(name[i+1:])
		if len(id) != idLen {
			return fmt.Errorf("file split %s: %w: file identity of %d bytes", s.id, stream.ErrBadPosition, len(id))
		}
		name = name[:i]
		s.fid = fileID{dev: binary.BigEndian.Uint64(id), ino: binary.BigEndian.Uint64(id[8:])}
		s.hasID = true
	}
	s.cur = len(s.files)
	for i, f := range s.files {
		if f == name {
			s.cur = i
		}
	}
	if name != "" && s.cur == len(s.files) {
		return fmt.Errorf("file split %s: %w: file %s is gone", s.id, stream.ErrBadPosition, name)
	}
	s.off = int64(binary.BigEndian.Uint64(pos[4:]))
	s.line = int64(binary.BigEndian.Uint64(pos[12:]))
	return nil
}

func (s *split) open() error {
	f, err := s.openFile()
	if err != nil {
		return err
	}
	if s.off > 0 {
		if _, err := f.Seek(s.off, io.SeekStart); err != nil {
			f.Close()
			return fmt.Errorf("file source: %s: %w", s.files[s.cur], err)
		}
	}
	s.f = f
	if s.r == nil {
		s.r = bufio.NewReaderSize(f, 256<<10)
	} else {
		s.r.Reset(f)
	}
	s.header = nil
	if s.src.cfg.Header {
		if err := s.readHeader(); err != nil {
			f.Close()
			s.f = nil
			return err
		}
	}
	return nil
}

// openFile opens the current file. For a following split restoring a
// position whose file has since been renamed away (rename-style rotation:
// another file, or none yet, has the name), it opens the renamed file
// instead, found by its identity among the files of the same directory,
// and marks it rotated: it is read to its end, then the file under the
// name. When the renamed file is gone too (deleted or compressed), it
// warns and reads the file under the name from its start. A following
// split's last file that does not exist yet is waited for.
func (s *split) openFile() (*os.File, error) {
	name := s.files[s.cur]
	f, err := os.Open(name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("file source: %w", err)
	}
	if s.src.cfg.Follow && !s.watchDir && s.hasID && (f == nil || !s.isCurrent(f)) {
		if old := s.findRenamed(name); old != nil {
			if f != nil {
				f.Close()
			}
			f, s.rotated = old, true
		} else if f != nil {
			s.src.cfg.Logger.Warn("file source: the followed file was rotated (renamed) and the renamed file is gone: reading the new file from its start; the lines of the old one after the restored position are lost",
				"file", name, "offset", s.off)
			s.off, s.line = 0, 0
		}
	}
	if f == nil {
		if s.src.cfg.Follow && s.cur == len(s.files)-1 {
			return nil, errHeaderPending // renamed away, the new file not created yet
		}
		return nil, fmt.Errorf("file source: %w", err)
	}
	s.hasID = false
	if st, err := f.Stat(); err == nil && s.src.cfg.Follow && !s.watchDir {
		// Only a split following one file knows a rotation (see
		// renamedAway); in a directory a renamed file is a new name.
		s.fid, s.hasID = identify(st)
	}
	return f, nil
}

// isCurrent reports whether f is the file the position's identity names.
func (s *split) isCurrent(f *os.File) bool {
	st, err := f.Stat()
	if err != nil {
		return false
	}
	id, ok := identify(st)
	return !ok || id == s.fid
}

// findRenamed opens the file of the directory of name whose identity is
// the position's, or returns nil.
func (s *split) findRenamed(name string) *os.File {
	dir := filepath.Dir(name)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if id, ok := identify(fi); !ok || id != s.fid {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil
		}
		if !s.isCurrent(f) { // replaced between the listing and the open
			f.Close()
			return nil
		}
		s.src.cfg.Logger.Info("file source: the followed file was rotated (renamed) since the restored position: finishing the renamed file first",
			"file", name, "renamed", e.Name(), "offset", s.off)
		return f
	}
	return nil
}

// errHeaderPending is open's answer for a followed file that may still
// grow and holds no complete header line yet: it is opened again later.
var errHeaderPending = errors.New("file source: header line not complete yet")

// readHeader reads the header line of the current file: the first line,
// even when resuming in the middle of the file.
func (s *split) readHeader() error {
	name := s.files[s.cur]
	// From the open file, not by name: a rotated file has another name.
	line, err := bufio.NewReader(io.NewSectionReader(s.f, 0, math.MaxInt64)).ReadSlice('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("file source: %s: header: %w", name, err)
	}
	if err != nil && s.src.cfg.Follow && s.cur == len(s.files)-1 && !s.rotated {
		// The last file may still grow: its header line is not all
		// there yet (taking it now would cut the header short and read
		// its rest, or the whole line, as a record).
		return errHeaderPending
	}
	if len(line) == 0 {
		return nil // empty file; no records either
	}
	h := bytes.TrimRight(line, "\r\n")
	s.header = []connector.Header{{Key: HeaderKey, Value: append([]byte(nil), h...)}}
	if s.off == 0 {
		s.off = int64(len(line))
		s.line = 1
		if _, err := s.r.Discard(len(line)); err != nil {
			return fmt.Errorf("file source: %s: %w", name, err)
		}
	}
	return nil
}

func (s *split) copyLine(b []byte) []byte {
	if len(b) > 16<<10 {
		return append([]byte(nil), b...)
	}
	if cap(s.slab)-len(s.slab) < len(b) {
		s.slab = make([]byte, 0, 256<<10)
	}
	off := len(s.slab)
	s.slab = append(s.slab, b...)
	return s.slab[off:len(s.slab):len(s.slab)]
}

// Read implements stream.Split.
func (s *split) Read(ctx context.Context, dst []connector.Message) (int, error) {
	if s.src.cfg.Records != nil {
		return s.readRecords(ctx, dst)
	}
	n := 0
	for n < len(dst) {
		if s.f == nil {
			if s.cur >= len(s.files) {
				if !s.src.cfg.Follow {
					if n > 0 {
						return n, nil
					}
					return 0, io.EOF
				}
				if n > 0 {
					return n, nil
				}
				return 0, s.waitForFiles(ctx)
			}
			if err := s.open(); err != nil {
				if !errors.Is(err, errHeaderPending) {
					return n, err
				}
				if n > 0 {
					return n, nil
				}
				return 0, s.waitForFiles(ctx)
			}
		}
		line, err := s.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			big := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				if len(big) > s.src.cfg.MaxLineBytes {
					return n, s.errLineTooLong()
				}
				line, err = s.r.ReadSlice('\n')
				big = append(big, line...)
			}
			line = big
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return n, fmt.Errorf("file source: %s: %w", s.files[s.cur], err)
		}
		complete := err == nil
		if !complete && s.src.cfg.Follow && s.cur == len(s.files)-1 && !s.rotated {
			// The last file may still grow: keep the partial line for
			// later and wait for more data.
			s.part = append(s.part, line...)
			if len(s.part) > s.src.cfg.MaxLineBytes {
				// Bounded like a complete line: a file that never
				// writes a newline must not grow the buffer forever.
				return n, s.errLineTooLong()
			}
			if n > 0 {
				return n, nil
			}
			return 0, s.waitForData(ctx)
		}
		if len(s.part) > 0 {
			line = append(s.part, line...)
			s.part = s.part[:0]
			if len(line) > s.src.cfg.MaxLineBytes {
				return n, s.errLineTooLong()
			}
		}
		if len(line) > 0 {
			s.off += int64(len(line))
			s.line++
			body := bytes.TrimRight(line, "\r\n")
			if len(bytes.TrimSpace(body)) > 0 {
				dst[n] = connector.Message{Value: s.copyLine(body), Origin: s.files[s.cur], Offset: s.line, Headers: s.header}
				n++
			}
		}
		if !complete {
			s.f.Close()
			s.f = nil
			if s.rotated {
				// The renamed file is read to its end: on to the
				// file that now has its name.
				s.rotated = false
			} else {
				s.cur++
			}
			s.off, s.line, s.hasID = 0, 0, false
		}
	}
	return n, nil
}

// errLineTooLong is the error for a line of the current file, complete
// or still partial, longer than MaxLineBytes.
func (s *split) errLineTooLong() error {
	return fmt.Errorf("file source: %s line %d: longer than %d bytes", s.files[s.cur], s.line+1, s.src.cfg.MaxLineBytes)
}

// readRecords is Read with Records.
func (s *split) readRecords(ctx context.Context, dst []connector.Message) (int, error) {
	n := 0
	for n < len(dst) {
		if s.rr == nil {
			if s.cur >= len(s.files) {
				if n > 0 {
					return n, nil
				}
				if !s.src.cfg.Follow {
					return 0, io.EOF
				}
				return 0, s.waitForFiles(ctx)
			}
			if err := s.openRecords(); err != nil {
				return n, err
			}
		}
		v, hs, err := s.rr.Next()
		if errors.Is(err, io.EOF) {
			s.f.Close()
			s.f, s.rr = nil, nil
			s.cur++
			s.off, s.line = 0, 0
			continue
		}
		if err != nil {
			return n, fmt.Errorf("file source: %s record %d: %w", s.files[s.cur], s.line+1, err)
		}
		s.line++
		dst[n] = connector.Message{Value: v, Origin: s.files[s.cur], Offset: s.line, Headers: hs}
		n++
	}
	return n, nil
}

// openRecords opens the current file with Records and skips the records
// a restored position says were read.
func (s *split) openRecords() error {
	name := s.files[s.cur]
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("file source: %w", err)
	}
	rr, err := s.src.cfg.Records.Open(name, bufio.NewReaderSize(f, 256<<10))
	if err != nil {
		f.Close()
		return fmt.Errorf("file source: %s: %w", name, err)
	}
	for i := int64(0); i < s.line; i++ {
		if _, _, err := rr.Next(); err != nil {
			f.Close()
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("%w: it has %d records, the position is after record %d", stream.ErrBadPosition, i, s.line)
			}
			return fmt.Errorf("file source: %s: resuming: %w", name, err)
		}
	}
	s.f, s.rr = f, rr
	return nil
}

// waitForData sleeps for one poll interval (or until ctx ends); then the
// current file is read again from where it stopped, and newer files are
// looked for.
func (s *split) waitForData(ctx context.Context) error {
	s.sleep(ctx)
	if s.watchDir {
		if err := s.refresh(); err != nil {
			return err
		}
	}
	if s.cur < len(s.files)-1 && s.f != nil {
		// A newer file appeared: finish the current one.
		return nil
	}
	if s.f != nil {
		st, err := s.f.Stat()
		if err != nil {
			return fmt.Errorf("file source: %s: %w", s.files[s.cur], err)
		}
		if s.renamedAway(st) {
			// Read the renamed file to its end (lines written before
			// the rename), then the new one from its start.
			s.rotated = true
			s.src.cfg.Logger.Info("file source: followed file rotated (renamed): finishing it, then reading the new file", "file", s.files[s.cur], "offset", s.off)
			s.r.Reset(s.f)
			return nil
		}
		if read := s.off + int64(len(s.part)); st.Size() < read {
			return s.restartTruncated(st.Size(), read)
		}
		s.r.Reset(s.f)
	}
	return nil
}

// renamedAway reports whether the open file of a split following one
// file (not a directory: there a renamed file is a new name) was renamed
// away and another file now has its name (rename-style rotation,
// logrotate's create). A name that no longer exists is not a rotation
// yet: the old file may still grow until the new one appears.
func (s *split) renamedAway(open os.FileInfo) bool {
	if s.watchDir || s.rotated || s.cur != len(s.files)-1 {
		return false
	}
	st, err := os.Stat(s.files[s.cur])
	return err == nil && !os.SameFile(st, open)
}

// restartTruncated starts reading the current file again from its first
// byte: it is now shorter than what was read of it, so it was truncated
// in place (copytruncate log rotation), as tail -F assumes. The open
// file is the same inode, so this is the only rotation the size can
// show; a file truncated and written past the old offset between two
// polls is not detected. The partial line and the line count are
// dropped; a header read before is kept (the writer that goes on
// appending does not write it again).
func (s *split) restartTruncated(size, read int64) error {
	name := s.files[s.cur]
	s.src.cfg.Logger.Warn("file source: followed file truncated, reading it again from the start",
		"file", name, "size", size, "read", read)
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("file source: %s: after truncation: %w", name, err)
	}
	s.r.Reset(s.f)
	s.off, s.line = 0, 0
	s.part = s.part[:0]
	return nil
}

func (s *split) waitForFiles(ctx context.Context) error {
	s.sleep(ctx)
	if !s.watchDir {
		return nil
	}
	return s.refresh()
}

func (s *split) sleep(ctx context.Context) {
	t := time.NewTimer(min(s.src.cfg.PollInterval, 100*time.Millisecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// refresh adds files that sort after the last known one.
func (s *split) refresh() error {
	files, _, err := s.src.listFiles()
	if err != nil {
		return err
	}
	last := ""
	if len(s.files) > 0 {
		last = s.files[len(s.files)-1]
	}
	for _, f := range files {
		if f > last {
			s.files = append(s.files, f)
		}
	}
	return nil
}

// Close implements io.Closer.
func (s *split) Close() error {
	s.rr = nil
	if s.f != nil {
		err := s.f.Close()
		s.f = nil
		return err
	}
	return nil
}
