package mysqlcdc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// binlogReader reads the binary log from the position's resume point.
type binlogReader struct {
	syncer   *replication.BinlogSyncer
	streamer *replication.BinlogStreamer
	// query answers collation comparisons and schema refreshes.
	query *client.Conn

	file string            // the file being read
	gset mysql.GTIDSet     // executed set after the last whole transaction; nil without GTIDs
	txn  string            // the current transaction's GTID
	tsMs int64             // the current transaction's commit time, when the server logs it
	seen int64             // row changes of the current transaction processed so far
	skip int64             // row changes of the current transaction delivered before (re)connecting
	maps map[uint64]*table // schemas by table id, as the table-map events say
	// stale: a DDL statement was seen; schemas are re-read at the next
	// table map.
	stale   bool
	scratch []byte
}

func (b *binlogReader) close() {
	if b.syncer != nil {
		b.syncer.Close()
		b.syncer = nil
	}
	if b.query != nil {
		b.query.Close()
		b.query = nil
	}
}

// startBinlog connects to the binary log at the position's resume point:
// by GTID set when there is one, else by file and position.
func (s *split) startBinlog(ctx context.Context) error {
	q, err := s.connect(ctx)
	if err != nil {
		return err
	}
	cfg := replication.BinlogSyncerConfig{
		ServerID:                s.cfg.ServerID,
		Flavor:                  s.server.flavor,
		Host:                    s.cfg.Host,
		Port:                    s.cfg.Port,
		User:                    s.cfg.User,
		Password:                s.cfg.Password,
		TimestampStringLocation: time.UTC,
		HeartbeatPeriod:         time.Second,
		ReadTimeout:             30 * time.Second,
		DisableRetrySync:        true, // reconnection is ours: it must resume at a transaction's start
		MaxReconnectAttempts:    1,
		Logger:                  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	b := &binlogReader{query: q, file: s.pos.Resume.File, skip: s.pos.Skip, maps: map[uint64]*table{}}
	b.syncer = replication.NewBinlogSyncer(cfg)
	if s.pos.GTID != "" {
		if b.gset, err = mysql.ParseGTIDSet(s.server.flavor, s.pos.GTID); err != nil {
			b.close()
			return fatal(fmt.Errorf("mysql_cdc: position's GTID set %q: %w", s.pos.GTID, err))
		}
		b.streamer, err = b.syncer.StartSyncGTID(b.gset.Clone())
	} else {
		b.streamer, err = b.syncer.StartSync(mysql.Position{Name: s.pos.Resume.File, Pos: s.pos.Resume.Pos})
	}
	if err != nil {
		b.close()
		return fmt.Errorf("start reading the binlog at %s:%d (GTID %q): %w", s.pos.Resume.File, s.pos.Resume.Pos, s.pos.GTID, err)
	}
	s.bin = b
	return nil
}

var closedCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// next processes binlog events until some produce messages. block: wait
// up to 100 ms for the first event; otherwise only take events already
// received.
func (b *binlogReader) next(ctx context.Context, s *split, block bool) (bool, error) {
	for {
		var ev *replication.BinlogEvent
		var err error
		if block {
			wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			ev, err = b.streamer.GetEvent(wctx)
			cancel()
		} else {
			ev, err = b.streamer.GetEvent(closedCtx)
		}
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				if block && ctx.Err() == nil {
					// Nothing arrived for a while: everything the server
					// sent is processed, the source is at the head.
					s.src.lag.Store(0)
				}
				return false, nil
			}
			if me := (*mysql.MyError)(nil); errors.As(err, &me) && me.Code == mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG {
				// The position is gone (purged binlog, unknown GTID):
				// reconnecting cannot help.
				return false, fatal(fmt.Errorf("mysql_cdc: the server cannot send the binlog from %s:%d (GTID %q): %w; the pipeline needs a new snapshot (start it without its checkpoints)", s.pos.Resume.File, s.pos.Resume.Pos, s.pos.GTID, err))
			}
			return false, fmt.Errorf("binlog: %w", err)
		}
		if err := b.handle(s, ev); err != nil {
			return false, err
		}
		if len(s.pending) > 0 {
			return true, nil
		}
	}
}

func (b *binlogReader) handle(s *split, ev *replication.BinlogEvent) error {
	h := ev.Header
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		b.file = string(e.NextLogName)
		clear(b.maps) // table ids start again after a server restart
	case *replication.MariadbGTIDEvent:
		// MariaDB writes a transaction's events at commit; its GTID
		// event carries the COMMIT statement's time (seconds).
		b.txn, b.tsMs = e.GTID.String(), int64(h.Timestamp)*1000
	case *replication.GTIDEvent:
		b.txn = ""
		if e.GNO > 0 && h.EventType != replication.ANONYMOUS_GTID_EVENT { // gtid_mode=OFF
			if next, err := e.GTIDNext(); err == nil {
				b.txn = next.String()
			}
		}
		b.tsMs = int64(h.Timestamp) * 1000
		if e.OriginalCommitTimestamp > 0 { // MySQL 8: microseconds
			b.tsMs = int64(e.OriginalCommitTimestamp / 1000)
		}
	case *replication.XIDEvent:
		b.commit(s, h)
	case *replication.QueryEvent:
		switch q := strings.TrimSpace(string(e.Query)); {
		case strings.EqualFold(q, "BEGIN"):
		case inTransactionStatement(q):
			// SAVEPOINT and ROLLBACK TO SAVEPOINT are logged inside the
			// transaction: it goes on (ending it here would mark its
			// GTID done and move the resume point into it, so that a
			// restore skipped the rest of it).
		case strings.EqualFold(q, "COMMIT"):
			b.commit(s, h)
		default:
			// DDL (its own transaction): the schema of any table may
			// have changed.
			if t := truncated(q, string(e.Schema)); t != "" && s.tables[t] != nil {
				s.cfg.Logger.Warn("mysql_cdc: TRUNCATE is not captured (no per-row deletes are emitted for it): downstream copies keep the rows", "source", s.cfg.Name, "table", t)
			}
			b.stale = true
			b.commit(s, h)
		}
	case *replication.TableMapEvent:
		return b.tableMap(s, e)
	case *replication.RowsEvent:
		return b.rows(s, ev, e)
	default:
		if h.EventType == replication.HEARTBEAT_EVENT || h.EventType == replication.HEARTBEAT_LOG_EVENT_V2 {
			s.src.lag.Store(0) // the server has nothing newer
		}
	}
	return nil
}

// truncated returns the db.table a TRUNCATE [TABLE] statement empties
// (db the statement's default database when it names none), "" for any
// other statement.
func truncated(q, db string) string {
	f := strings.Fields(q)
	if len(f) < 2 || !strings.EqualFold(f[0], "TRUNCATE") {
		return ""
	}
	name := f[1]
	if strings.EqualFold(name, "TABLE") {
		if len(f) < 3 {
			return ""
		}
		name = f[2]
	}
	// ident splits off the first identifier, quoted in backticks or not.
	ident := func(s string) (id, rest string) {
		if strings.HasPrefix(s, "`") {
			if i := strings.IndexByte(s[1:], '`'); i >= 0 {
				return s[1 : i+1], s[i+2:]
			}
		}
		if i := strings.IndexAny(s, ".;"); i >= 0 {
			return s[:i], s[i:]
		}
		return s, ""
	}
	first, rest := ident(name)
	if strings.HasPrefix(rest, ".") {
		second, _ := ident(rest[1:])
		return first + "." + second
	}
	return db + "." + first
}

// inTransactionStatement reports whether a logged statement is one a
// transaction carries without ending it: SAVEPOINT name, ROLLBACK TO
// [SAVEPOINT] name.
func inTransactionStatement(q string) bool {
	f := strings.Fields(q)
	switch {
	case len(f) >= 2 && strings.EqualFold(f[0], "SAVEPOINT"):
		return true
	case len(f) >= 3 && strings.EqualFold(f[0], "ROLLBACK") && strings.EqualFold(f[1], "TO"):
		return true
	}
	return false
}

// commit ends the current transaction at the event h: the resume point
// moves past it.
func (b *binlogReader) commit(s *split, h *replication.EventHeader) {
	if b.txn != "" && b.gset != nil {
		if err := b.gset.Update(b.txn); err == nil {
			s.pos.GTID = b.gset.String()
		}
	} else if b.txn != "" && b.gset == nil {
		if g, err := mysql.ParseGTIDSet(s.server.flavor, b.txn); err == nil {
			b.gset = g
			s.pos.GTID = g.String()
		}
	} else if b.txn == "" && b.gset != nil {
		// A transaction without a usable GTID: the set can no longer
		// follow the binlog; resume by file and position from now on.
		b.gset, s.pos.GTID = nil, ""
	}
	b.txn, b.seen, b.skip = "", 0, 0
	if h.LogPos > 0 {
		s.pos.Resume = binlogPos{File: b.file, Pos: h.LogPos}
	}
	s.pos.Skip = 0
	if s.pos.Segments != nil {
		// Once the binlog is past every segment's snapshot point, no
		// change needs filtering.
		for _, segs := range s.pos.Segments {
			for _, sg := range segs {
				if s.pos.Resume.compare(sg.At) < 0 {
					return
				}
			}
		}
		s.pos.Segments = nil
	}
}

// tableMap records the schema of a table the following row events use.
func (b *binlogReader) tableMap(s *split, e *replication.TableMapEvent) error {
	id := string(e.Schema) + "." + string(e.Table)
	t := s.tables[id]
	if t == nil {
		return nil
	}
	if b.stale {
		b.stale = false
		clear(b.maps) // a table id seen before the DDL may now have another schema
		for name, old := range s.tables {
			nt, err := loadTable(b.query, old.db, old.name)
			if err != nil {
				return fmt.Errorf("refresh the schema of %s: %w", name, err)
			}
			s.tables[name] = nt
		}
		t = s.tables[id]
	} else if m := b.maps[e.TableID]; m != nil && m.db == string(e.Schema) && m.name == string(e.Table) {
		return nil // this table map's schema, checked at its first use
	}
	if !matches(t, e) {
		// Logged before a schema change that is already live: take the
		// schema from the event itself (binlog_row_metadata=FULL).
		mt, err := tableFromMap(e)
		if err != nil {
			return fatal(fmt.Errorf("mysql_cdc: %w", err))
		}
		for _, c := range t.cols { // keep collations for key comparisons
			if i := mt.index(c.name); i >= 0 && mt.cols[i].kind == c.kind {
				mt.cols[i].charset, mt.cols[i].collation = c.charset, c.collation
			}
		}
		t = mt
	}
	b.maps[e.TableID] = t
	return nil
}

// matches reports whether the table map describes the schema t: the
// same columns and, when the map carries the columns' metadata
// (binlog_row_metadata=FULL), the same types (a change logged before an
// ALTER of a column's type, read with the new type, would be misread: an
// ENUM's label number taken to another label).
func matches(t *table, e *replication.TableMapEvent) bool {
	if int(e.ColumnCount) != len(t.cols) {
		return false
	}
	names := e.ColumnNameString()
	if len(names) == 0 {
		return true
	}
	for i, n := range names {
		if !strings.EqualFold(n, t.cols[i].name) {
			return false
		}
	}
	mt, err := tableFromMap(e)
	if err != nil {
		return true // the names match; the map cannot say more
	}
	for i, c := range mt.cols {
		tc := &t.cols[i]
		if c.kind != tc.kind || c.pad != tc.pad || !slices.Equal(c.labels, tc.labels) {
			return false
		}
	}
	return true
}

func rowsOp(t replication.EventType) byte {
	switch t {
	case replication.WRITE_ROWS_EVENTv0, replication.WRITE_ROWS_EVENTv1, replication.WRITE_ROWS_EVENTv2, replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1:
		return 'c'
	case replication.UPDATE_ROWS_EVENTv0, replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1, replication.PARTIAL_UPDATE_ROWS_EVENT:
		return 'u'
	case replication.DELETE_ROWS_EVENTv0, replication.DELETE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv2, replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1:
		return 'd'
	}
	return 0
}

// rows turns a rows event into messages. An update that changes the
// primary key becomes a delete of the old key and a create of the new
// one, so that consumers keyed by the message key stay right.
func (b *binlogReader) rows(s *split, ev *replication.BinlogEvent, e *replication.RowsEvent) error {
	t := b.maps[e.TableID]
	if t == nil {
		return nil // a table not captured
	}
	op := rowsOp(ev.Header.EventType)
	if op == 0 {
		return nil
	}
	if lag := time.Since(time.Unix(int64(ev.Header.Timestamp), 0)).Seconds(); lag > 0 {
		s.src.lag.Store(math.Float64bits(lag))
	} else {
		s.src.lag.Store(0)
	}
	ts := b.tsMs
	if ts == 0 {
		ts = int64(ev.Header.Timestamp) * 1000
	}
	at := binlogPos{File: b.file, Pos: ev.Header.LogPos}
	src := sourceMeta{file: b.file, pos: ev.Header.LogPos - ev.Header.EventSize, gtid: b.txn, serverID: ev.Header.ServerID, tsMs: ts}
	emit := func(op byte, before, after rowImage) error {
		b.seen++
		if b.seen <= b.skip {
			return nil // delivered before the reconnection
		}
		img := after
		if img == nil {
			img = before
		}
		keep, err := s.wanted(t, img.key(t), at)
		if err != nil || !keep {
			return err
		}
		s.pending = append(s.pending, pending{msg: message(t, op, before, after, src), seen: b.seen})
		return nil
	}
	step := 1
	if op == 'u' {
		step = 2
	}
	for i := 0; i+step <= len(e.Rows); i += step {
		var imgs [2]rowImage
		for j := range step {
			var err error
			imgs[j], b.scratch, err = render(t, e.Rows[i+j], b.scratch)
			if err != nil {
				return fatal(fmt.Errorf("mysql_cdc: binlog at %s:%d: %w", at.File, at.Pos, err))
			}
		}
		var err error
		switch op {
		case 'c':
			err = emit('c', nil, imgs[0])
		case 'd':
			err = emit('d', imgs[0], nil)
		case 'u':
			before, after := imgs[0], imgs[1]
			if equalKey(before.key(t), after.key(t)) {
				err = emit('u', before, after)
			} else if err = emit('d', before, nil); err == nil {
				err = emit('c', nil, after)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// wanted reports whether a change to key of table t at binlog position
// at is to be emitted: it is not when a snapshot taken at or after at
// read that key (see the package doc).
func (s *split) wanted(t *table, key []json.RawMessage, at binlogPos) (bool, error) {
	segs := s.pos.Segments[t.id()]
	if segs == nil {
		return true, nil
	}
	i := 0
	for j := len(segs) - 1; j > 0; j-- {
		c, err := compareKey(t, key, segs[j].From, s.compareStrings)
		if err != nil {
			return false, fatal(fmt.Errorf("mysql_cdc: %w", err))
		}
		if c > 0 {
			i = j
			break
		}
	}
	return at.compare(segs[i].At) > 0, nil
}

// compareStrings asks the server to compare two strings under a column's
// collation.
func (s *split) compareStrings(c *column, a, b string) (int, error) {
	if !safeName(c.charset) || !safeName(c.collation) {
		return strings.Compare(a, b), nil
	}
	conv := "CONVERT(? USING " + c.charset + ") COLLATE " + c.collation
	r, err := s.bin.query.Execute("SELECT STRCMP("+conv+", "+conv+")", a, b)
	if err != nil {
		return 0, fmt.Errorf("compare keys of column %s: %w", c.name, err)
	}
	n, _ := r.GetInt(0, 0)
	return int(n), nil
}
