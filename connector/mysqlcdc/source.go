package mysqlcdc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// Source captures changes of MySQL or MariaDB tables. It has one split.
type Source struct {
	cfg   Config
	meter *connector.Meter
	// lag is how far the last binlog event read is behind the binlog's
	// head, in seconds (float64 bits); 0 when caught up.
	lag      atomic.Uint64
	snapshot atomic.Bool // the initial snapshot is running
}

// NewSource checks cfg and returns the source; it connects when the job
// starts.
func NewSource(cfg Config) (*Source, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Source{cfg: c, meter: connector.NewMeter()}, nil
}

// Meter returns the source's counters: Records (snapshot rows and
// changes emitted), Bytes (of the messages' keys and values), Errors
// (connection and query errors, each followed by a reconnection) and
// Reconnects (connections re-established after one). Its Lag stays -1:
// the binlog has no count of messages behind; LagSeconds is the lag.
func (s *Source) Meter() *connector.Meter { return s.meter }

// LagSeconds is how far the last binlog event read is behind the
// server's binlog head, in seconds; 0 when caught up or during the
// snapshot. Safe to call concurrently.
func (s *Source) LagSeconds() float64 { return math.Float64frombits(s.lag.Load()) }

// Snapshotting reports whether the initial snapshot is running.
func (s *Source) Snapshotting() bool { return s.snapshot.Load() }

// Splits returns the source's one split: the binary log is one ordered
// stream.
func (s *Source) Splits(ctx context.Context, _ int) ([]stream.Split[connector.Message], error) {
	return []stream.Split[connector.Message]{&split{src: s, cfg: s.cfg}}, nil
}

// pending is a message waiting to be returned by Read, with what
// returning it does to the position.
type pending struct {
	msg connector.Message
	// seen: the transaction's change count once it is delivered
	// (streaming); key: the table's last key (snapshot).
	seen int64
	key  []json.RawMessage
}

type split struct {
	src *Source
	cfg Config

	pos    *position // what Position returns
	seeked bool
	opened bool

	server  serverInfo
	tables  map[string]*table // by db.table
	pending []pending
	head    int

	snap *snapshotReader
	bin  *binlogReader

	// reconnection
	backoff time.Duration
	// connected says a connection was opened before: the next open is a
	// reconnection.
	connected bool
	retryAt   time.Time
}

func (s *split) ID() string { return "mysql" }

func (s *split) Position() []byte {
	if s.pos == nil {
		return nil
	}
	return s.pos.encode()
}

func (s *split) Seek(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	p, err := decodePosition(b)
	if err != nil {
		return err
	}
	s.pos, s.seeked = p, true
	return nil
}

// Close closes the split's connections.
func (s *split) Close() error {
	s.closeConns()
	return nil
}

func (s *split) closeConns() {
	if s.snap != nil {
		s.snap.close()
		s.snap = nil
	}
	if s.bin != nil {
		s.bin.close()
		s.bin = nil
	}
}

// Read returns the snapshot's rows, then the binlog's changes.
func (s *split) Read(ctx context.Context, dst []connector.Message) (int, error) {
	n := 0
	for n < len(dst) {
		if s.head < len(s.pending) {
			n += s.pop(dst[n:])
			continue
		}
		s.pending, s.head = s.pending[:0], 0
		if !s.retryAt.IsZero() && time.Now().Before(s.retryAt) {
			if n == 0 {
				wait(ctx, min(time.Until(s.retryAt), 100*time.Millisecond))
			}
			return n, nil
		}
		more, err := s.fill(ctx, n == 0)
		if err != nil {
			if ctx.Err() != nil {
				return n, nil
			}
			if fe := (*fatalError)(nil); errors.As(err, &fe) {
				return n, fe.err
			}
			s.failed(err)
			return n, nil
		}
		s.backoff, s.retryAt = 0, time.Time{}
		if !more {
			break
		}
	}
	return n, nil
}

// fatalError is an error that reconnecting cannot cure (a table without
// a primary key, a bad position): the job fails with it.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }

func fatal(err error) error { return &fatalError{err} }

// failed logs a connection or query error, closes the connections and
// schedules a reconnection with backoff. The position is untouched: the
// next attempt resumes where delivery stopped.
func (s *split) failed(err error) {
	s.src.meter.Errors.Add(1)
	s.closeConns()
	s.opened = false
	s.pending, s.head = s.pending[:0], 0
	if s.backoff == 0 {
		s.backoff = 100 * time.Millisecond
	} else {
		s.backoff = min(2*s.backoff, s.cfg.MaxBackoff)
	}
	s.retryAt = time.Now().Add(s.backoff)
	s.cfg.Logger.Warn("mysql_cdc: lost the server, reconnecting", "source", s.cfg.Name, "server", s.cfg.addr(), "in", s.backoff, "err", err)
}

func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// pop moves pending messages into dst and advances the position.
func (s *split) pop(dst []connector.Message) int {
	k := copy(dst, msgs(s.pending[s.head:], len(dst)))
	last := s.pending[s.head+k-1]
	for _, p := range s.pending[s.head : s.head+k] {
		s.src.meter.Records.Add(1)
		s.src.meter.Bytes.Add(int64(len(p.msg.Key) + len(p.msg.Value)))
	}
	s.head += k
	if s.snap != nil {
		s.snap.delivered(s.pos, last.key, s.head == len(s.pending))
	} else {
		s.pos.Skip = last.seen
	}
	return k
}

func msgs(p []pending, max int) []connector.Message {
	out := make([]connector.Message, 0, min(len(p), max))
	for _, x := range p[:min(len(p), max)] {
		out = append(out, x.msg)
	}
	return out
}

// fill reads the next chunk or binlog events into pending. block says
// whether it may wait for the binlog (nothing was read yet). It returns
// false when nothing more is available now.
func (s *split) fill(ctx context.Context, block bool) (bool, error) {
	if !s.opened {
		if err := s.open(ctx); err != nil {
			return false, err
		}
		s.opened = true
		if s.connected {
			s.src.meter.Reconnects.Add(1)
		}
		s.connected = true
	}
	if s.snap != nil {
		done, err := s.snap.next(s, &s.pending)
		if err != nil {
			return false, err
		}
		if done {
			// Every table read: the snapshot transaction ends, the binlog
			// begins at the snapshot's position.
			s.snap.close()
			s.snap = nil
			s.pos.Snapshot = nil
			s.src.snapshot.Store(false)
			return true, s.startBinlog(ctx)
		}
		return true, nil
	}
	return s.bin.next(ctx, s, block)
}

// open connects: reads the tables' schemas, then resumes (or begins) the
// snapshot or the binlog.
func (s *split) open(ctx context.Context) error {
	c, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if s.server, err = readServer(c); err != nil {
		return err
	}
	if err := checkFilters(c, s.cfg.Tables); err != nil {
		return err
	}
	s.tables = map[string]*table{}
	for _, name := range s.cfg.Tables {
		db, t, _ := strings.Cut(name, ".")
		tb, err := loadTable(c, db, t)
		if err != nil {
			return err
		}
		s.tables[name] = tb
	}
	switch {
	case s.pos == nil && s.cfg.Snapshot == SnapshotNever:
		head, gtid, err := s.server.head(c)
		if err != nil {
			return err
		}
		s.pos = &position{V: positionVersion, Resume: head, GTID: gtid}
	case s.pos == nil || s.pos.Snapshot != nil:
		return s.startSnapshot(ctx)
	}
	return s.startBinlog(ctx)
}

// sessionSetup makes a connection's text results those of the binlog's
// values and its quoted literals the ones chunkQuery writes, whatever the
// server's defaults: UTC, backslash escapes, and CHAR values without the
// trailing spaces PAD_CHAR_TO_FULL_LENGTH would add (the binlog has none:
// a snapshot row and a change of it would differ, keys included).
var sessionSetup = []string{"SET NAMES utf8mb4", "SET time_zone = '+00:00'",
	"SET SESSION sql_mode = REPLACE(REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', ''), 'PAD_CHAR_TO_FULL_LENGTH', '')"}

func (s *split) connect(ctx context.Context) (*client.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := client.ConnectWithContext(cctx, s.cfg.addr(), s.cfg.User, s.cfg.Password, "", 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connect %s as %s: %w", s.cfg.addr(), s.cfg.User, err)
	}
	for _, q := range sessionSetup {
		if _, err := c.Execute(q); err != nil {
			c.Close()
			return nil, fmt.Errorf("%s: %w", q, err)
		}
	}
	return c, nil
}
