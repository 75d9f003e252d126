package queries

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/nexmark"
	"github.com/sluicehq/sluice/stream"
)

// WatermarkDelay is the bounded out-of-orderness of event time, as in the
// reference's table definition (WATERMARK FOR dateTime AS dateTime -
// INTERVAL '4' SECOND).
const WatermarkDelay = 4 * time.Second

// Watermarks is the event-time strategy of every query: timestamps from the
// event's dateTime, watermarks WatermarkDelay behind.
func Watermarks() stream.WatermarkStrategy[nexmark.Event] {
	return stream.BoundedOutOfOrderness(func(e nexmark.Event) int64 { return e.DateTime() }, WatermarkDelay)
}

// GeneratorSource is a parallel stream source of the events 0..Events-1 of
// a nexmark generator. Split i of n generates the events i, i+n, i+2n, ...
// (nexmark.NewStridedGenerator), so splits advance through event time
// together and the job sees the same events at every parallelism.
type GeneratorSource struct {
	Config nexmark.Config
	Events int64
	// NumSplits is the number of splits; 0 means the job's parallelism.
	NumSplits int
}

// Splits implements stream.Source.
func (s *GeneratorSource) Splits(_ context.Context, parallelism int) ([]stream.Split[nexmark.Event], error) {
	n := s.NumSplits
	if n <= 0 {
		n = max(parallelism, 1)
	}
	splits := make([]stream.Split[nexmark.Event], n)
	for i := range splits {
		g, err := nexmark.NewStridedGenerator(s.Config, s.Events, n, i)
		if err != nil {
			return nil, fmt.Errorf("nexmark source: %w", err)
		}
		splits[i] = &generatorSplit{id: fmt.Sprintf("nexmark-%d-of-%d", i, n), g: g}
	}
	return splits, nil
}

type generatorSplit struct {
	id string
	g  *nexmark.Generator
}

func (s *generatorSplit) ID() string { return s.id }

func (s *generatorSplit) Read(_ context.Context, dst []nexmark.Event) (int, error) {
	n := 0
	for n < len(dst) && s.g.Next(&dst[n]) {
		n++
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Position is the number of the next event, 8 bytes big-endian.
func (s *generatorSplit) Position() []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(s.g.Position()))
}

func (s *generatorSplit) Seek(pos []byte) error {
	if len(pos) != 8 {
		return fmt.Errorf("nexmark split %s: position of %d bytes, want 8", s.id, len(pos))
	}
	if err := s.g.SetPosition(int64(binary.BigEndian.Uint64(pos))); err != nil {
		return fmt.Errorf("nexmark split %s: %w", s.id, err)
	}
	return nil
}

// FileSource is a parallel stream source of the events in a file written by
// `sluice nexmark generate` (one JSON object per line). The file is cut
// into byte ranges, one per split; a line belongs to the split its first
// byte falls in.
type FileSource struct {
	Path string
	// NumSplits is the number of splits; 0 means the job's parallelism.
	NumSplits int

	events atomic.Int64
}

// Events returns the number of events read so far, over all splits.
func (s *FileSource) Events() int64 { return s.events.Load() }

// Splits implements stream.Source.
func (s *FileSource) Splits(_ context.Context, parallelism int) ([]stream.Split[nexmark.Event], error) {
	fi, err := os.Stat(s.Path)
	if err != nil {
		return nil, fmt.Errorf("nexmark file source: %w", err)
	}
	n := s.NumSplits
	if n <= 0 {
		n = max(parallelism, 1)
	}
	size := fi.Size()
	splits := make([]stream.Split[nexmark.Event], n)
	for i := range splits {
		splits[i] = &fileSplit{
			src:   s,
			id:    fmt.Sprintf("%s@%d-of-%d", s.Path, i, n),
			start: size * int64(i) / int64(n),
			end:   size * int64(i+1) / int64(n),
		}
	}
	return splits, nil
}

// fileSplit reads the lines that start in [start, end). pos is the offset
// of the next line to read.
type fileSplit struct {
	src        *FileSource
	id         string
	start, end int64
	pos        int64
	seeked     bool

	f    *os.File
	r    *bufio.Reader
	lp   *nexmark.LineParser
	line []byte
}

func (s *fileSplit) ID() string { return s.id }

func (s *fileSplit) open() error {
	f, err := os.Open(s.src.Path)
	if err != nil {
		return err
	}
	s.f = f
	s.lp = nexmark.NewLineParser()
	if !s.seeked {
		s.pos = s.start
		if s.start > 0 {
			// The line under start belongs to the previous split unless
			// the byte before start ends a line.
			if _, err := f.Seek(s.start-1, io.SeekStart); err != nil {
				return err
			}
			r := bufio.NewReaderSize(f, 64<<10)
			skipped := int64(0)
			for {
				chunk, err := r.ReadSlice('\n')
				skipped += int64(len(chunk))
				if err == nil || errors.Is(err, io.EOF) {
					break
				}
				if !errors.Is(err, bufio.ErrBufferFull) {
					return err
				}
			}
			s.pos = s.start - 1 + skipped
			s.r = r
			return nil
		}
	}
	if _, err := f.Seek(s.pos, io.SeekStart); err != nil {
		return err
	}
	s.r = bufio.NewReaderSize(f, 64<<10)
	return nil
}

func (s *fileSplit) Read(_ context.Context, dst []nexmark.Event) (int, error) {
	if s.r == nil {
		if err := s.open(); err != nil {
			return 0, fmt.Errorf("nexmark file split %s: %w", s.id, err)
		}
	}
	n := 0
	for n < len(dst) && s.pos < s.end {
		line, err := s.readLine()
		if len(line) > 0 {
			lineStart := s.pos
			s.pos += int64(len(line))
			body := trimNewline(line)
			if len(body) > 0 {
				if perr := s.lp.Parse(body, &dst[n]); perr != nil {
					return n, fmt.Errorf("nexmark file %s at byte %d: %w", s.src.Path, lineStart, perr)
				}
				n++
			}
		}
		if errors.Is(err, io.EOF) {
			s.pos = max(s.pos, s.end)
			break
		}
		if err != nil {
			return n, fmt.Errorf("nexmark file split %s: %w", s.id, err)
		}
	}
	s.src.events.Add(int64(n))
	if n == 0 && s.pos >= s.end {
		return 0, io.EOF
	}
	return n, nil
}

// readLine returns the next line including its '\n' (absent at the end of
// the file).
func (s *fileSplit) readLine() ([]byte, error) {
	line, err := s.r.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line, err
	}
	s.line = append(s.line[:0], line...)
	for errors.Is(err, bufio.ErrBufferFull) {
		line, err = s.r.ReadSlice('\n')
		s.line = append(s.line, line...)
	}
	return s.line, err
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// Position is the byte offset of the next line, 8 bytes big-endian.
func (s *fileSplit) Position() []byte {
	pos := s.pos
	if s.r == nil && !s.seeked {
		pos = s.start
	}
	return binary.BigEndian.AppendUint64(nil, uint64(pos))
}

func (s *fileSplit) Seek(pos []byte) error {
	if len(pos) != 8 {
		return fmt.Errorf("nexmark file split %s: position of %d bytes, want 8", s.id, len(pos))
	}
	p := int64(binary.BigEndian.Uint64(pos))
	if p < s.start || p > s.end {
		return fmt.Errorf("nexmark file split %s: position %d outside [%d, %d]", s.id, p, s.start, s.end)
	}
	// At the split's start the partial line under it must still be
	// skipped, as on a fresh open.
	s.pos, s.seeked = p, p != s.start
	return nil
}

// Close releases the file.
func (s *fileSplit) Close() error {
	if s.f == nil {
		return nil
	}
	return s.f.Close()
}
