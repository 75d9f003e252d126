package pgcdc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// Source is a PostgreSQL change-data-capture source: one split (a slot
// is one ordered stream).
type Source struct {
	cfg    Config
	tables []tableName
	stats  Stats
	// lag: the server's WAL end last seen and the confirmed flush LSN.
	walEnd    atomic.Uint64
	confirmed atomic.Uint64
}

// Stats are a source's counters, for metrics.
type Stats struct {
	Records      atomic.Int64 // records emitted (snapshot reads included)
	SnapshotRows atomic.Int64 // of which snapshot reads
	Bytes        atomic.Int64 // JSON bytes of the records' values
	Reconnects   atomic.Int64 // replication connections lost and retried
	Errors       atomic.Int64 // errors (each failed connection attempt)
}

// NewSource checks cfg and returns a source; nothing connects until the
// job reads.
func NewSource(cfg Config) (*Source, error) {
	tables, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	return &Source{cfg: cfg, tables: tables}, nil
}

// Stats returns the source's counters.
func (s *Source) Stats() *Stats { return &s.stats }

// SlotLagBytes is how far the slot's confirmed flush LSN is behind the
// server's WAL end as last reported to the source (0 before streaming).
func (s *Source) SlotLagBytes() int64 {
	end, c := s.walEnd.Load(), s.confirmed.Load()
	if end == 0 || c == 0 || end < c {
		return 0
	}
	return int64(end - c)
}

// Splits returns the source's one split.
func (s *Source) Splits(ctx context.Context, _ int) ([]stream.Split[connector.Message], error) {
	names := make([]string, len(s.tables))
	for i, t := range s.tables {
		names[i] = t.String()
	}
	return []stream.Split[connector.Message]{&split{src: s, cfg: &s.cfg, tables: s.tables, names: names, wake: make(chan struct{}, 1)}}, nil
}

// split reads the snapshot and then the slot.
type split struct {
	src    *Source
	cfg    *Config
	tables []tableName
	names  []string
	// pos is the position after the last record Read returned; restored
	// is set by Seek.
	pos      *position
	restored bool
	started  bool
	db       string
	meta     []*tableMeta
	snap     *snapshotReader
	rd       *reader
	enc      encoder
	wake     chan struct{}
	closeMu  sync.Mutex
	closed   bool
}

// tableMeta is what the catalog says of a captured table.
type tableMeta struct {
	rel *relation
	// keyTypes are the key columns' SQL types (format_type), for casts.
	keyTypes []string
	// colTypes are every column's SQL type.
	colTypes []string
	// partitioned: the table is partitioned (its rows are in its
	// partitions).
	partitioned bool
}

// from is the table as a query's FROM reads it: an ordinary table ONLY
// itself, without the rows of inheritance children (pgoutput reports
// their changes under their own names, so they are not this table's), a
// partitioned one with its partitions (their changes come under its
// name).
func (m *tableMeta) from() string {
	if m.partitioned {
		return m.rel.table.quoted()
	}
	return "ONLY " + m.rel.table.quoted()
}

func (sp *split) ID() string { return "postgres_cdc/" + sp.cfg.Slot }

func (sp *split) Position() []byte {
	if sp.pos == nil {
		return nil
	}
	return sp.pos.encode()
}

func (sp *split) Seek(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	p, err := decodePosition(b)
	if err != nil {
		return err
	}
	if strings.Join(p.Tables, ",") != strings.Join(sp.names, ",") {
		return fmt.Errorf("postgres_cdc: the checkpoint captured tables %s, the spec now names %s: capturing other tables needs a new slot and a fresh start (a new checkpoint directory)",
			strings.Join(p.Tables, ", "), strings.Join(sp.names, ", "))
	}
	sp.pos, sp.restored = p, true
	return nil
}

// Wake makes a Read waiting for changes return now.
func (sp *split) Wake() {
	select {
	case sp.wake <- struct{}{}:
	default:
	}
}

// Buffered reports more records ready without waiting.
func (sp *split) Buffered() bool {
	if sp.rd != nil {
		return len(sp.rd.ch) > 0
	}
	return sp.snap != nil
}

// CommitPosition confirms a completed checkpoint's stream position to
// the slot: the server may then recycle the WAL before it.
func (sp *split) CommitPosition(ctx context.Context, b []byte) error {
	p, err := decodePosition(b)
	if err != nil {
		return err
	}
	if p.Phase != phaseStream {
		return nil // the slot stays at its consistent point until the snapshot is done
	}
	for {
		c := sp.src.confirmed.Load()
		if uint64(p.LSN) <= c || sp.src.confirmed.CompareAndSwap(c, uint64(p.LSN)) {
			break
		}
	}
	sp.closeMu.Lock()
	rd := sp.rd
	sp.closeMu.Unlock()
	if rd != nil {
		rd.confirmNow()
	}
	return nil
}

func (sp *split) Close() error {
	sp.closeMu.Lock()
	sp.closed = true
	rd := sp.rd
	sp.closeMu.Unlock()
	if rd != nil {
		rd.stop()
	}
	if sp.snap != nil {
		sp.snap.close()
		sp.snap = nil
	}
	return nil
}

func (sp *split) Read(ctx context.Context, dst []connector.Message) (int, error) {
	if !sp.started {
		if err := sp.start(ctx); err != nil {
			return 0, err
		}
		sp.started = true
	}
	if sp.pos.Phase == phaseSnapshot {
		return sp.readSnapshot(ctx, dst)
	}
	if sp.rd == nil {
		rd := newReader(sp, sp.pos)
		sp.closeMu.Lock()
		if sp.closed {
			sp.closeMu.Unlock()
			return 0, errors.New("postgres_cdc: split closed")
		}
		sp.rd = rd
		sp.closeMu.Unlock()
		rd.start()
	}
	return sp.rd.read(ctx, dst, sp)
}

// start checks the server and the tables, prepares the publication and
// the slot, and opens the snapshot when one is to be read.
func (sp *split) start(ctx context.Context) error {
	conn, err := connect(ctx, sp.cfg.DSN, false)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var wal string
	if err := queryRow(ctx, conn, "SELECT current_setting('wal_level'), current_database()", nil, &wal, &sp.db); err != nil {
		return fmt.Errorf("postgres_cdc: %w", err)
	}
	if wal != "logical" {
		return fmt.Errorf("postgres_cdc: the server's wal_level is %s; logical replication needs wal_level=logical (as a superuser: ALTER SYSTEM SET wal_level = logical, then restart PostgreSQL)", wal)
	}
	sp.meta = make([]*tableMeta, len(sp.tables))
	for i, t := range sp.tables {
		m, err := loadMeta(ctx, conn, t)
		if err != nil {
			return err
		}
		m.rel.idx = i
		sp.meta[i] = m
	}
	partitioned := false
	for _, m := range sp.meta {
		partitioned = partitioned || m.partitioned
	}
	if err := ensurePublication(ctx, conn, sp.cfg.Publication, sp.tables, partitioned, sp.cfg.Logger); err != nil {
		return err
	}
	var exists bool
	var plugin, confirmed string
	if err := queryRow(ctx, conn, "SELECT count(*) > 0, coalesce(max(plugin), ''), coalesce(max(confirmed_flush_lsn)::text, '') FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()",
		[]string{sp.cfg.Slot}, &exists, &plugin, &confirmed); err != nil {
		return fmt.Errorf("postgres_cdc: reading slot %s: %w", sp.cfg.Slot, err)
	}
	if exists && plugin != "pgoutput" {
		return fmt.Errorf("postgres_cdc: slot %s exists with plugin %s, not pgoutput: name another slot", sp.cfg.Slot, plugin)
	}
	if sp.restored {
		if !exists {
			return fmt.Errorf("postgres_cdc: slot %s does not exist, but the restored checkpoint reads from it: the changes since the checkpoint are gone; start afresh (a new checkpoint directory) to snapshot the tables again", sp.cfg.Slot)
		}
		if sp.pos.Phase == phaseSnapshot {
			return sp.resumeSnapshot(ctx)
		}
		// The server streams a slot from its confirmed flush LSN when
		// asked for an older one: a checkpoint older than the one the
		// slot confirmed would silently miss the changes in between.
		if confirmed != "" {
			c, err := pglogrepl.ParseLSN(confirmed)
			if err != nil {
				return fmt.Errorf("postgres_cdc: slot %s: %w", sp.cfg.Slot, err)
			}
			if c > sp.pos.LSN {
				return fmt.Errorf("postgres_cdc: slot %s has confirmed the changes up to LSN %s, past the restored checkpoint's %s (an older checkpoint than the last completed one?): the server cannot send the changes in between again; restore the latest checkpoint, or start afresh (a new checkpoint directory) to snapshot the tables again", sp.cfg.Slot, c, sp.pos.LSN)
			}
		}
		return nil
	}
	if sp.cfg.Snapshot == SnapshotNever {
		lsn := pglogrepl.LSN(0)
		if exists && confirmed != "" {
			if lsn, err = pglogrepl.ParseLSN(confirmed); err != nil {
				return fmt.Errorf("postgres_cdc: slot %s: %w", sp.cfg.Slot, err)
			}
		} else {
			res, err := createSlot(ctx, sp.cfg.DSN, sp.cfg.Slot, false, "NOEXPORT_SNAPSHOT", true)
			if err != nil {
				return err
			}
			lsn = res.lsn
			sp.cfg.Logger.Info("postgres_cdc: created replication slot", "slot", sp.cfg.Slot, "lsn", lsn.String())
		}
		sp.pos = &position{V: positionV, Phase: phaseStream, Tables: sp.names, LSN: lsn}
		return nil
	}
	// A fresh start with a snapshot: the slot must start where the
	// snapshot is, so an old slot (from a run whose checkpoints are gone)
	// is replaced.
	if exists {
		sp.cfg.Logger.Warn("postgres_cdc: dropping the existing replication slot to take a consistent snapshot (no checkpoint to resume from)", "slot", sp.cfg.Slot)
		if err := execSQL(ctx, conn, "SELECT pg_drop_replication_slot($1)", sp.cfg.Slot); err != nil {
			return fmt.Errorf("postgres_cdc: dropping slot %s (is another pipeline using it?): %w", sp.cfg.Slot, err)
		}
	}
	res, err := createSlot(ctx, sp.cfg.DSN, sp.cfg.Slot, false, "EXPORT_SNAPSHOT", false)
	if err != nil {
		return err
	}
	defer res.conn.Close(context.Background())
	sp.cfg.Logger.Info("postgres_cdc: created replication slot; reading the snapshot", "slot", sp.cfg.Slot, "lsn", res.lsn.String(), "tables", strings.Join(sp.names, ", "))
	segs := make([][]segment, len(sp.tables))
	for i := range segs {
		segs[i] = []segment{{LSN: res.lsn}}
	}
	sp.pos = &position{V: positionV, Phase: phaseSnapshot, Tables: sp.names, SlotLSN: res.lsn, Segs: segs}
	sp.snap, err = openSnapshot(ctx, sp, res.snapshot, res.lsn)
	return err
}

// resumeSnapshot continues an interrupted snapshot in a new one, which a
// temporary slot exports: the key ranges not read yet are read there.
func (sp *split) resumeSnapshot(ctx context.Context) error {
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	name := sp.cfg.Slot
	if len(name) > 50 {
		name = name[:50]
	}
	name += "_snap_" + hex.EncodeToString(suffix[:])
	res, err := createSlot(ctx, sp.cfg.DSN, name, true, "EXPORT_SNAPSHOT", false)
	if err != nil {
		return err
	}
	// The temporary slot goes with its connection, once the snapshot is
	// imported.
	defer res.conn.Close(context.Background())
	p := sp.pos.clone()
	segs := make([][]segment, len(p.Segs))
	copy(segs, p.Segs)
	for t := p.Table; t < len(segs); t++ {
		if t == p.Table && p.Last != nil {
			segs[t] = append(append([]segment(nil), segs[t]...), segment{From: p.Last, LSN: res.lsn})
		} else {
			segs[t] = []segment{{LSN: res.lsn}}
		}
	}
	p.Segs = segs
	sp.pos = p
	sp.cfg.Logger.Info("postgres_cdc: resuming the snapshot in a new one", "slot", sp.cfg.Slot, "table", p.Tables[p.Table], "lsn", res.lsn.String())
	sp.snap, err = openSnapshot(ctx, sp, res.snapshot, res.lsn)
	return err
}

// readSnapshot returns snapshot rows; when the last table is done, the
// position moves to the stream at the slot's consistent point.
func (sp *split) readSnapshot(ctx context.Context, dst []connector.Message) (int, error) {
	n := 0
	for n < len(dst) {
		if sp.snap == nil {
			return n, errors.New("postgres_cdc: the snapshot is not open")
		}
		row, err := sp.snap.next(ctx, sp.pos)
		if err != nil {
			return n, err
		}
		if row == nil { // a table is done
			p := sp.pos.clone()
			p.Table++
			p.Last = nil
			if p.Table == len(sp.tables) {
				sp.snap.close()
				sp.snap = nil
				sp.cfg.Logger.Info("postgres_cdc: snapshot done; streaming changes", "slot", sp.cfg.Slot, "lsn", p.SlotLSN.String())
				p = &position{V: positionV, Phase: phaseStream, Tables: p.Tables, Segs: p.Segs, LSN: p.SlotLSN}
				sp.pos = p
				return n, nil
			}
			sp.pos = p
			continue
		}
		m := sp.meta[sp.pos.Table]
		key, val := sp.enc.record(opRead, m.rel, nil, false, row, source{db: sp.db, lsn: sp.snap.lsn, tsMs: sp.snap.startMs, snapshot: true}, time.Now().UnixMilli())
		dst[n] = connector.Message{Key: key, Value: val, Timestamp: sp.snap.startMs, Origin: "postgres_cdc/" + sp.names[sp.pos.Table], Offset: -1}
		n++
		sp.src.stats.Records.Add(1)
		sp.src.stats.SnapshotRows.Add(1)
		sp.src.stats.Bytes.Add(int64(len(val)))
		p := sp.pos.clone()
		p.Last = keyText(m.rel, row)
		sp.pos = p
	}
	return n, nil
}

// connect opens a connection in UTC with ISO dates and hex bytea (the
// text formats values.go maps), for replication when repl is set: the
// walsender prints the changes' values with its session's settings.
func connect(ctx context.Context, dsn string, repl bool) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres_cdc: dsn: %w", err)
	}
	cfg.RuntimeParams["timezone"] = "UTC"
	cfg.RuntimeParams["datestyle"] = "ISO, YMD"
	cfg.RuntimeParams["intervalstyle"] = "iso_8601"
	cfg.RuntimeParams["extra_float_digits"] = "3"
	cfg.RuntimeParams["bytea_output"] = "hex" // whatever the server's, database's or role's default
	cfg.RuntimeParams["application_name"] = "sluice-postgres-cdc"
	if repl {
		cfg.RuntimeParams["replication"] = "database"
	}
	c, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres_cdc: connecting to %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	return c, nil
}

// queryRow runs a query with text parameters and scans its first row's
// text values into dst (*string, *bool or *int64).
func queryRow(ctx context.Context, c *pgconn.PgConn, sql string, params []string, dst ...any) error {
	ps := make([][]byte, len(params))
	for i, p := range params {
		ps[i] = []byte(p)
	}
	res := c.ExecParams(ctx, sql, ps, nil, nil, nil).Read()
	if res.Err != nil {
		return res.Err
	}
	if len(res.Rows) == 0 {
		return errors.New("no row")
	}
	for i, d := range dst {
		v := res.Rows[0][i]
		switch d := d.(type) {
		case *string:
			*d = string(v)
		case *bool:
			*d = string(v) == "t"
		}
	}
	return nil
}

func execSQL(ctx context.Context, c *pgconn.PgConn, sql string, params ...string) error {
	ps := make([][]byte, len(params))
	for i, p := range params {
		ps[i] = []byte(p)
	}
	return c.ExecParams(ctx, sql, ps, nil, nil, nil).Read().Err
}

// loadMeta reads a table's columns and primary key. Generated columns
// are left out: pgoutput does not send them, and a snapshot row must have
// the columns of the changes (a consumer taking an update's image as the
// row would turn a column the snapshot had into null).
func loadMeta(ctx context.Context, c *pgconn.PgConn, t tableName) (*tableMeta, error) {
	rel := t.quoted()
	res := c.ExecParams(ctx, `SELECT a.attname, a.atttypid::text, format_type(a.atttypid, a.atttypmod),
  coalesce((SELECT k.ord FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, ord) WHERE k.n = a.attnum), 0),
  coalesce(to_jsonb(a) ->> 'attgenerated', '') <> ''
FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, [][]byte{[]byte(rel)}, nil, nil, nil).Read()
	if res.Err != nil {
		return nil, fmt.Errorf("postgres_cdc: reading the columns of %s: %w", t, res.Err)
	}
	if len(res.Rows) == 0 {
		return nil, fmt.Errorf("postgres_cdc: table %s does not exist (or has no columns)", t)
	}
	m := &tableMeta{rel: &relation{table: t}}
	keyAt := map[int]int{}
	for _, r := range res.Rows {
		var oid uint32
		if _, err := fmt.Sscan(string(r[1]), &oid); err != nil {
			return nil, fmt.Errorf("postgres_cdc: %s: type oid %q", t, r[1])
		}
		var kp int
		fmt.Sscan(string(r[3]), &kp)
		if string(r[4]) == "t" {
			if kp > 0 {
				return nil, fmt.Errorf("postgres_cdc: table %s: primary-key column %s is generated, which logical replication does not send", t, r[0])
			}
			continue
		}
		if kp > 0 {
			keyAt[kp] = len(m.rel.cols)
		}
		m.rel.cols = append(m.rel.cols, column{name: string(r[0]), oid: oid})
		m.colTypes = append(m.colTypes, string(r[2]))
	}
	if len(keyAt) == 0 {
		return nil, fmt.Errorf("postgres_cdc: table %s has no primary key; the connector keys records, chunks the snapshot and identifies deleted rows by it: add one (ALTER TABLE %s ADD PRIMARY KEY (...))", t, rel)
	}
	for k := 1; k <= len(keyAt); k++ {
		i, ok := keyAt[k]
		if !ok {
			return nil, fmt.Errorf("postgres_cdc: table %s: its primary key is on an expression, which the connector cannot chunk by", t)
		}
		m.rel.keys = append(m.rel.keys, i)
		m.keyTypes = append(m.keyTypes, m.colTypes[i])
	}
	if err := checkReplicaIdentity(ctx, c, t); err != nil {
		return nil, err
	}
	if err := queryRow(ctx, c, "SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass($1)", []string{rel}, &m.partitioned); err != nil {
		return nil, fmt.Errorf("postgres_cdc: reading the kind of %s: %w", t, err)
	}
	return m, nil
}

// checkReplicaIdentity refuses a table whose REPLICA IDENTITY is an index
// that leaves out a primary-key column: pgoutput's old image of a delete
// (and of an update changing the index's columns) then holds the index's
// columns only, so the change could not say which row it is (its key
// would be null).
func checkReplicaIdentity(ctx context.Context, c *pgconn.PgConn, t tableName) error {
	var missing string
	err := queryRow(ctx, c, `SELECT coalesce(string_agg(a.attname, ', ' ORDER BY a.attnum), '')
FROM pg_class r JOIN pg_index p ON p.indrelid = r.oid AND p.indisprimary
  JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum = ANY (p.indkey::int2[])
WHERE r.oid = to_regclass($1) AND r.relreplident = 'i'
  AND NOT EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = r.oid AND x.indisreplident AND a.attnum = ANY (x.indkey::int2[]))`,
		[]string{t.quoted()}, &missing)
	if err != nil {
		return fmt.Errorf("postgres_cdc: reading the replica identity of %s: %w", t, err)
	}
	if missing != "" {
		return fmt.Errorf("postgres_cdc: table %s has REPLICA IDENTITY USING INDEX on an index without its primary-key column(s) %s: a delete would not say which row it removed; ALTER TABLE %s REPLICA IDENTITY DEFAULT (or FULL)", t, missing, t.quoted())
	}
	return nil
}

// ensurePublication creates the publication, or adds the tables it lacks.
// With a partitioned table among them (partitioned), the publication
// publishes via the partition root: pgoutput otherwise reports the
// changes under the partitions' own names, which are not captured tables.
func ensurePublication(ctx context.Context, c *pgconn.PgConn, pub string, tables []tableName, partitioned bool, log interface {
	Info(string, ...any)
}) error {
	var exists bool
	if err := queryRow(ctx, c, "SELECT count(*) > 0 FROM pg_publication WHERE pubname = $1", []string{pub}, &exists); err != nil {
		return fmt.Errorf("postgres_cdc: reading publication %s: %w", pub, err)
	}
	if !exists {
		var names []string
		for _, t := range tables {
			names = append(names, t.quoted())
		}
		with := ""
		if partitioned {
			with = " WITH (publish_via_partition_root = true)"
		}
		if err := execSQL(ctx, c, fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s%s", quoteIdent(pub), strings.Join(names, ", "), with)); err != nil {
			return fmt.Errorf("postgres_cdc: creating publication %s (the user needs CREATE on the database and to own the tables): %w", pub, err)
		}
		log.Info("postgres_cdc: created publication", "publication", pub)
		return nil
	}
	// A publication made by hand may leave changes out: every change of
	// the tables must be published.
	for _, t := range tables {
		var partial string
		if err := queryRow(ctx, c, `SELECT concat_ws(', ',
  CASE WHEN NOT (p.pubinsert AND p.pubupdate AND p.pubdelete) THEN 'it does not publish inserts, updates and deletes (publish = ''insert, update, delete'')' END,
  CASE WHEN EXISTS (SELECT 1 FROM pg_publication_rel r WHERE r.prpubid = p.oid AND r.prrelid = to_regclass($2)
    AND (coalesce(to_jsonb(r) ->> 'prqual', '') <> '' OR coalesce(to_jsonb(r) ->> 'prattrs', '') <> '')) THEN 'it has a row filter (WHERE) or a column list on the table' END)
FROM pg_publication p WHERE p.pubname = $1`, []string{pub, t.quoted()}, &partial); err != nil {
			return fmt.Errorf("postgres_cdc: reading publication %s: %w", pub, err)
		}
		if partial != "" {
			return fmt.Errorf("postgres_cdc: publication %s would leave changes of %s out: %s; change it or name another publication (the source creates it)", pub, t, partial)
		}
	}
	if partitioned {
		var viaRoot bool
		if err := queryRow(ctx, c, "SELECT pubviaroot FROM pg_publication WHERE pubname = $1", []string{pub}, &viaRoot); err != nil {
			return fmt.Errorf("postgres_cdc: reading publication %s: %w", pub, err)
		}
		if !viaRoot {
			if err := execSQL(ctx, c, fmt.Sprintf("ALTER PUBLICATION %s SET (publish_via_partition_root = true)", quoteIdent(pub))); err != nil {
				return fmt.Errorf("postgres_cdc: publication %s must publish a partitioned table's changes under its own name (publish_via_partition_root): %w", pub, err)
			}
			log.Info("postgres_cdc: publication set to publish via the partition root (a captured table is partitioned)", "publication", pub)
		}
	}
	for _, t := range tables {
		var in bool
		if err := queryRow(ctx, c, "SELECT count(*) > 0 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3", []string{pub, t.schema, t.name}, &in); err != nil {
			return fmt.Errorf("postgres_cdc: reading publication %s: %w", pub, err)
		}
		if !in {
			if err := execSQL(ctx, c, fmt.Sprintf("ALTER PUBLICATION %s ADD TABLE %s", quoteIdent(pub), t.quoted())); err != nil {
				return fmt.Errorf("postgres_cdc: adding %s to publication %s: %w", t, pub, err)
			}
			log.Info("postgres_cdc: added a table to the publication", "publication", pub, "table", t.String())
		}
	}
	return nil
}

type slotResult struct {
	lsn      pglogrepl.LSN
	snapshot string
	conn     *pgconn.PgConn // open when a snapshot was exported
}

// createSlot creates a pgoutput slot. With EXPORT_SNAPSHOT the returned
// connection must stay open until the snapshot is imported.
func createSlot(ctx context.Context, dsn, name string, temporary bool, action string, closeConn bool) (slotResult, error) {
	c, err := connect(ctx, dsn, true)
	if err != nil {
		return slotResult{}, err
	}
	res, err := pglogrepl.CreateReplicationSlot(ctx, c, name, "pgoutput", pglogrepl.CreateReplicationSlotOptions{Temporary: temporary, SnapshotAction: action, Mode: pglogrepl.LogicalReplication})
	if err != nil {
		c.Close(context.Background())
		return slotResult{}, fmt.Errorf("postgres_cdc: creating replication slot %s (the user needs the REPLICATION attribute; max_replication_slots may be reached): %w", name, err)
	}
	lsn, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		c.Close(context.Background())
		return slotResult{}, fmt.Errorf("postgres_cdc: slot %s: %w", name, err)
	}
	out := slotResult{lsn: lsn, snapshot: res.SnapshotName, conn: c}
	if closeConn {
		c.Close(context.Background())
		out.conn = nil
	}
	return out, nil
}
