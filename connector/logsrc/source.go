package logsrc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/record"
	"github.com/sluicehq/sluice/stream"
)

// Start says where a split begins; see connector.Start.
type Start = connector.Start

// The start positions, as in package connector.
const (
	StartEarliest = connector.StartEarliest
	StartLatest   = connector.StartLatest
	StartOffset   = connector.StartOffset
)

// ParseStart parses "earliest", "latest" or "offset".
func ParseStart(s string) (Start, error) { return connector.ParseStart(s) }

// Isolation says which records a source delivers; see connector.Isolation.
type Isolation = connector.Isolation

// The isolation levels, as in package connector.
const (
	ReadCommitted   = connector.ReadCommitted
	ReadUncommitted = connector.ReadUncommitted
)

// DefaultMaxBytes is the size of one read from a partition when
// SourceConfig.MaxBytes is 0.
const DefaultMaxBytes = 1 << 20

// DefaultPollInterval is SourceConfig.PollInterval's default.
const DefaultPollInterval = 100 * time.Millisecond

// ErrDataLost is returned by a split whose next offset was deleted by
// retention before it was read: records the job should see are gone.
var ErrDataLost = errors.New("records deleted by retention before they were read")

// SourceConfig configures a Source.
type SourceConfig struct {
	// Topic is the topic to read; it must exist when the job starts.
	Topic string
	// Partitions restricts the source to these partitions; nil means all.
	Partitions []int32
	// Start is where splits begin without a restored position.
	Start Start
	// Offset is the first offset to read under StartOffset.
	Offset int64
	// Bounded makes the source read up to the end offsets present when the
	// job starts and then finish.
	Bounded bool
	// Isolation defaults to ReadCommitted.
	Isolation Isolation
	// MaxBytes bounds one read from the log; 0 means DefaultMaxBytes.
	MaxBytes int
	// PollInterval is the longest a Read waits for new data before it
	// returns (0, nil); 0 means DefaultPollInterval.
	PollInterval time.Duration
}

// Source reads a topic of an embedded log, one split per partition. It
// implements stream.Source[connector.Message].
type Source struct {
	log *logstore.Log
	cfg SourceConfig
}

var _ stream.Source[connector.Message] = (*Source)(nil)

// NewSource returns a source of cfg.Topic in l. The topic is looked up when
// the job starts.
func NewSource(l *logstore.Log, cfg SourceConfig) (*Source, error) {
	if l == nil {
		return nil, errors.New("log source: no log")
	}
	if err := logstore.ValidTopicName(cfg.Topic); err != nil {
		return nil, fmt.Errorf("log source: %w", err)
	}
	if cfg.Start < StartEarliest || cfg.Start > StartOffset {
		return nil, fmt.Errorf("log source %s: unknown start %d", cfg.Topic, cfg.Start)
	}
	if cfg.Start == StartOffset && cfg.Offset < 0 {
		return nil, fmt.Errorf("log source %s: negative start offset %d", cfg.Topic, cfg.Offset)
	}
	if cfg.Isolation != ReadCommitted && cfg.Isolation != ReadUncommitted {
		return nil, fmt.Errorf("log source %s: unknown isolation %d", cfg.Topic, cfg.Isolation)
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	return &Source{log: l, cfg: cfg}, nil
}

// Splits implements stream.Source: one split per partition, with start and
// (when bounded) end offsets fixed now.
func (s *Source) Splits(_ context.Context, _ int) ([]stream.Split[connector.Message], error) {
	t, err := s.log.Topic(s.cfg.Topic)
	if err != nil {
		return nil, fmt.Errorf("log source: %w", err)
	}
	parts := s.cfg.Partitions
	if parts == nil {
		for i := range t.NumPartitions() {
			parts = append(parts, i)
		}
	}
	committed := s.cfg.Isolation == ReadCommitted
	out := make([]stream.Split[connector.Message], 0, len(parts))
	for _, id := range parts {
		p, err := t.Partition(id)
		if err != nil {
			return nil, fmt.Errorf("log source: %w", err)
		}
		logStart, hw, lso := p.Offsets()
		limit := hw
		if committed {
			limit = lso
		}
		sp := &split{
			p:         p,
			id:        fmt.Sprintf("%s/%d", s.cfg.Topic, id),
			committed: committed,
			end:       -1,
			maxBytes:  s.cfg.MaxBytes,
			poll:      s.cfg.PollInterval,
			aborted:   map[int64]struct{}{},
		}
		switch s.cfg.Start {
		case StartEarliest:
			sp.next = logStart
		case StartLatest:
			sp.next = limit
		case StartOffset:
			sp.next = min(max(s.cfg.Offset, logStart), limit)
		}
		sp.setPos(sp.next)
		if s.cfg.Bounded {
			sp.end = limit
		}
		out = append(out, sp)
	}
	return out, nil
}

// split reads one partition. next is the next offset to fetch from the log;
// pos the offset after the last record Read returned (with every record
// between pos and next skipped or buffered).
type split struct {
	p         *logstore.Partition
	id        string
	committed bool
	next      int64
	pos       int64
	end       int64 // bounded: read offsets below end only; -1: unbounded
	maxBytes  int
	poll      time.Duration

	// shown mirrors pos for Lag, which metrics call from other goroutines.
	shown atomic.Int64

	seenHW  int64 // the high watermark the last fetch saw
	buf     []connector.Message
	bufOff  int
	aborted map[int64]struct{}

	// wakeMu guards cancelWait, the cancel of the wait in progress, and
	// woken, a Wake that came while none was.
	wakeMu     sync.Mutex
	cancelWait context.CancelFunc
	woken      bool
}

func (s *split) ID() string { return s.id }

// Position implements stream.Split: the next offset to deliver.
func (s *split) Position() []byte { return binary.BigEndian.AppendUint64(nil, uint64(s.pos)) }

// Seek implements stream.Split.
func (s *split) Seek(pos []byte) error {
	off, err := DecodePosition(pos)
	if err != nil {
		return fmt.Errorf("split %s: %w", s.id, err)
	}
	s.next = off
	s.setPos(off)
	s.buf, s.bufOff = s.buf[:0], 0
	return nil
}

func (s *split) setPos(off int64) {
	s.pos = off
	s.shown.Store(off)
}

// Lag implements stream.Lagger: how many offsets the split is behind the
// end it reads to (the bounded end, else the last stable offset under
// read_committed or the high watermark). Safe to call while Read runs.
func (s *split) Lag() int64 {
	_, hw, lso := s.p.Offsets()
	limit := hw
	if s.committed {
		limit = lso
	}
	if s.end >= 0 {
		limit = min(limit, s.end)
	}
	return max(0, limit-s.shown.Load())
}

// Wake implements stream.Waker: a Read waiting for data returns (0, nil)
// at once (or the next one, if none is waiting).
func (s *split) Wake() {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	if s.cancelWait != nil {
		s.cancelWait()
		return
	}
	s.woken = true
}

// Buffered implements stream.Buffered: records fetched and not yet
// delivered, or readable in the partition now.
func (s *split) Buffered() bool {
	if s.bufOff < len(s.buf) {
		return true
	}
	_, hw, lso := s.p.Offsets()
	limit := hw
	if s.committed {
		limit = lso
	}
	if s.end >= 0 {
		limit = min(limit, s.end)
	}
	return s.next < limit
}

// DecodePosition decodes a split position (8 bytes, big-endian, the next
// offset), failing with stream.ErrBadPosition.
func DecodePosition(pos []byte) (int64, error) {
	if len(pos) != 8 {
		return 0, fmt.Errorf("%w: %d bytes, want 8", stream.ErrBadPosition, len(pos))
	}
	v := int64(binary.BigEndian.Uint64(pos))
	if v < 0 {
		return 0, fmt.Errorf("%w: negative offset %d", stream.ErrBadPosition, v)
	}
	return v, nil
}

// Read implements stream.Split.
func (s *split) Read(ctx context.Context, dst []connector.Message) (int, error) {
	for {
		if s.bufOff < len(s.buf) {
			n := copy(dst, s.buf[s.bufOff:])
			clear(s.buf[s.bufOff : s.bufOff+n])
			s.bufOff += n
			if s.bufOff == len(s.buf) {
				s.setPos(s.next)
			} else {
				s.setPos(dst[n-1].Offset + 1)
			}
			return n, nil
		}
		if s.end >= 0 && s.next >= s.end {
			return 0, io.EOF
		}
		fetched, err := s.fetch()
		if err != nil {
			return 0, err
		}
		if fetched {
			if s.bufOff == len(s.buf) {
				s.setPos(s.next) // everything fetched was skipped
			}
			continue
		}
		got, err := s.wait(ctx)
		if err != nil || !got {
			return 0, err
		}
	}
}

// wait blocks until the partition may have something readable at next, or
// the poll interval passes (false, nil).
func (s *split) wait(ctx context.Context) (bool, error) {
	// Blocked behind an open transaction (next < seenHW): its end appends a
	// marker, which moves the high watermark past what fetch saw.
	at := max(s.next, s.seenHW)
	wctx, cancel := context.WithTimeout(ctx, s.poll)
	s.wakeMu.Lock()
	if s.woken {
		// A barrier is waiting: let the runtime emit it.
		s.woken = false
		s.wakeMu.Unlock()
		cancel()
		return false, nil
	}
	s.cancelWait = cancel
	s.wakeMu.Unlock()
	defer func() {
		s.wakeMu.Lock()
		s.cancelWait = nil
		s.wakeMu.Unlock()
		cancel()
	}()
	// Partition.Wait wakes on the append that moves the high watermark
	// past at: no polling.
	err := s.p.Wait(wctx, at)
	switch {
	case err == nil:
		return true, nil
	case ctx.Err() != nil:
		return false, ctx.Err()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return false, nil // the poll interval passed, or Wake
	}
	return false, fmt.Errorf("split %s: %w", s.id, err)
}

var errStop = errors.New("stop")

// fetch reads the next batches available below the readable limit into buf.
// It reports false when nothing is readable now.
func (s *split) fetch() (bool, error) {
	_, hw, lso := s.p.Offsets()
	s.seenHW = hw
	limit := hw
	if s.committed {
		limit = lso
	}
	if s.end >= 0 && limit > s.end {
		limit = s.end
	}
	if s.next >= limit {
		return false, nil
	}
	res, err := s.p.Read(s.next, s.maxBytes)
	if err != nil {
		if errors.Is(err, logstore.ErrOffsetOutOfRange) && s.next < res.LogStartOffset {
			return false, fmt.Errorf("split %s: offset %d, log starts at %d: %w", s.id, s.next, res.LogStartOffset, ErrDataLost)
		}
		return false, fmt.Errorf("split %s: %w", s.id, err)
	}
	var aborted []logstore.AbortedTxn
	if s.committed {
		aborted = s.p.AbortedTransactions(s.next, limit)
		slices.SortFunc(aborted, func(a, b logstore.AbortedTxn) int { return int(a.FirstOffset - b.FirstOffset) })
		clear(s.aborted)
	}
	from := s.next
	s.buf, s.bufOff = s.buf[:0], 0
	next := s.next
	err = record.Batches(res.Batches, func(h record.Header, raw []byte) error {
		if h.BaseOffset >= limit {
			return errStop
		}
		last := h.LastOffset()
		for len(aborted) > 0 && aborted[0].FirstOffset <= last {
			s.aborted[aborted[0].ProducerID] = struct{}{}
			aborted = aborted[1:]
		}
		skip := h.IsControl()
		if s.committed && h.IsTransactional() {
			if _, ok := s.aborted[h.ProducerID]; ok {
				skip = true
			}
			if h.IsControl() {
				delete(s.aborted, h.ProducerID)
			}
		}
		if !skip {
			err := record.Decode(raw, func(_ record.Header, r record.Record) error {
				if r.Offset < from || r.Offset >= limit {
					return nil
				}
				m := connector.Message{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Origin: s.id, Offset: r.Offset}
				if len(r.Headers) > 0 {
					m.Headers = make([]connector.Header, len(r.Headers))
					for i, rh := range r.Headers {
						m.Headers[i] = connector.Header{Key: rh.Key, Value: rh.Value}
					}
				}
				s.buf = append(s.buf, m)
				return nil
			})
			if err != nil {
				return err
			}
		}
		next = min(last+1, limit)
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return false, fmt.Errorf("split %s: offset %d: %w", s.id, s.next, err)
	}
	if next == s.next {
		return false, fmt.Errorf("split %s: offset %d: %w: read made no progress", s.id, s.next, logstore.ErrCorrupt)
	}
	s.next = next
	return true, nil
}

var (
	_ stream.Buffered = (*split)(nil)
	_ stream.Waker    = (*split)(nil)
	_ stream.Lagger   = (*split)(nil)
)
