package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// Defaults of Config.
const (
	DefaultBatchRows       = 1000
	DefaultCheckpointTable = "sluice_sink_checkpoints"
)

// Config configures a Sink.
type Config struct {
	// DSN is the connection string, e.g. postgres://user@host:5432/db.
	DSN string
	// Table is the table written to, optionally schema-qualified
	// ("analytics.revenue").
	Table string
	// Key lists the fields forming the table's primary key; rows are
	// upserted by it. Empty means append.
	Key []string
	// BatchRows is how many rows are buffered before a transaction writes
	// them; DefaultBatchRows when 0.
	BatchRows int
	// CheckpointTable is the side table of committed checkpoint ids;
	// DefaultCheckpointTable when empty.
	CheckpointTable string
	// SinkID names this sink in the side table; the table name when empty.
	// Two sinks writing the same table from different jobs need distinct
	// ids.
	SinkID string
}

// Rejected is one row the sink could not write, and why.
type Rejected struct {
	Row   row.Row
	Field string // the field at fault, when known
	Err   error
}

// RejectError reports rows refused by the sink (a value that does not fit
// its column, matching ErrIncompatible; a NULL key, matching ErrNullKey) or
// by the database (a data
// exception or a constraint violation, SQLSTATE classes 22 and 23). It is
// returned by the call that flushed them (Write, OnBarrier or Close) after
// every other row of the flush was committed; the writer stays usable, so
// the caller can route the rejected rows to a dead-letter sink and go on.
type RejectError struct {
	Rejected []Rejected
}

func (e *RejectError) Error() string {
	r := e.Rejected[0]
	msg := r.Err.Error()
	if r.Field != "" {
		msg = "field " + r.Field + ": " + msg
	}
	if len(e.Rejected) > 1 {
		return fmt.Sprintf("%d rows rejected; the first: %s", len(e.Rejected), msg)
	}
	return "row rejected: " + msg
}

// Unwrap returns the causes, one per rejected row.
func (e *RejectError) Unwrap() []error {
	errs := make([]error, len(e.Rejected))
	for i, r := range e.Rejected {
		errs[i] = r.Err
	}
	return errs
}

// ErrIncompatible is matched by a value that does not fit its column's
// type and by an existing table that lacks a column.
var ErrIncompatible = errors.New("incompatible with the table")

// ErrNullKey is matched by a row rejected because a Key field is NULL: it
// cannot be upserted (NULLs never conflict, so a replay would insert the
// row again where the table's key columns allow NULL).
var ErrNullKey = errors.New("NULL in a key field")

// Sink writes rows to a PostgreSQL table; it implements
// stream.Sink[row.Row].
type Sink struct {
	cfg    Config
	schema *row.Schema
	table  string // sanitized
	keyIdx []int
}

var _ stream.Sink[row.Row] = (*Sink)(nil)

// NewSink validates cfg against the schema of the rows it will get.
func NewSink(cfg Config, schema *row.Schema) (*Sink, error) {
	if cfg.DSN == "" {
		return nil, errors.New("postgres sink: no dsn")
	}
	if cfg.Table == "" {
		return nil, errors.New("postgres sink: no table")
	}
	if schema == nil || schema.Len() == 0 {
		return nil, fmt.Errorf("postgres sink %s: the rows have no fields", cfg.Table)
	}
	if _, err := pgx.ParseConfig(cfg.DSN); err != nil {
		return nil, fmt.Errorf("postgres sink %s: dsn: %w", cfg.Table, err)
	}
	s := &Sink{cfg: cfg, schema: schema, table: ident(cfg.Table)}
	for _, k := range cfg.Key {
		i, ok := schema.Index(k)
		if !ok {
			return nil, fmt.Errorf("postgres sink %s: key field %q is not among the fields (%s)", cfg.Table, k, strings.Join(schema.Names(), ", "))
		}
		s.keyIdx = append(s.keyIdx, i)
	}
	if s.cfg.BatchRows <= 0 {
		s.cfg.BatchRows = DefaultBatchRows
	}
	if s.cfg.CheckpointTable == "" {
		s.cfg.CheckpointTable = DefaultCheckpointTable
	}
	if s.cfg.SinkID == "" {
		s.cfg.SinkID = cfg.Table
	}
	return s, nil
}

// ident sanitizes a possibly schema-qualified name.
func ident(name string) string { return pgx.Identifier(strings.Split(name, ".")).Sanitize() }

// Open implements stream.Sink: one connection per subtask. The table is
// created at the first flush, when the kinds of untyped fields are known.
func (s *Sink) Open(ctx context.Context, info stream.SubtaskInfo) (stream.SinkWriter[row.Row], error) {
	conn, err := pgx.Connect(ctx, s.cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres sink %s: connect: %w", s.cfg.Table, err)
	}
	return &writer{s: s, conn: conn, subtask: info.Index}, nil
}

// CommittedCheckpoint returns the last checkpoint id committed by the
// sink's subtask, and false when none was.
func (s *Sink) CommittedCheckpoint(ctx context.Context, subtask int) (uint64, bool, error) {
	conn, err := pgx.Connect(ctx, s.cfg.DSN)
	if err != nil {
		return 0, false, fmt.Errorf("postgres sink %s: connect: %w", s.cfg.Table, err)
	}
	defer conn.Close(context.Background())
	var id int64
	err = conn.QueryRow(ctx, "SELECT checkpoint_id FROM "+ident(s.cfg.CheckpointTable)+" WHERE sink = $1 AND subtask = $2", s.cfg.SinkID, subtask).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		if pgCode(err) == "42P01" { // undefined_table: nothing committed yet
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("postgres sink %s: read checkpoint: %w", s.cfg.Table, err)
	}
	return uint64(id), true, nil
}

// colType is a column's SQL type and the kind its values are converted to.
type colType struct {
	kind row.Kind
	sql  string
	// inferred: kind was taken from the data (an untyped field).
	inferred bool
}

var sqlTypes = map[row.Kind]string{
	row.KindBool:      "boolean",
	row.KindInt:       "bigint",
	row.KindFloat:     "double precision",
	row.KindString:    "text",
	row.KindTimestamp: "timestamptz",
	row.KindJSON:      "jsonb",
}

type writer struct {
	s       *Sink
	conn    *pgx.Conn
	subtask int
	buf     []row.Row
	cols    []colType // resolved at the first flush with rows

	sideReady bool

	insertHead, insertTail string
	stmts                  map[int]string // multi-row INSERT by row count
	args                   []any
	keyBuf                 []byte
	last                   map[string]int
}

// maxRowsPerStatement bounds a multi-row INSERT (PostgreSQL takes at most
// 65535 parameters in one statement).
const maxRowsPerStatement = 1000

// Write implements stream.SinkWriter: rows are buffered and written every
// BatchRows.
func (w *writer) Write(ctx context.Context, rows []row.Row) error {
	w.buf = append(w.buf, rows...)
	if len(w.buf) >= w.s.cfg.BatchRows {
		return w.flush(ctx, 0, false)
	}
	return nil
}

// OnBarrier implements stream.BarrierWriter: it writes the buffered rows
// and the checkpoint id in one transaction.
func (w *writer) OnBarrier(ctx context.Context, id uint64) error { return w.flush(ctx, id, true) }

// Close implements stream.SinkWriter: it writes what is buffered unless
// the job stopped early (ctx cancelled).
func (w *writer) Close(ctx context.Context) error {
	defer w.conn.Close(context.Background())
	if ctx.Err() != nil {
		return nil
	}
	return w.flush(ctx, 0, false)
}

// ensureSide creates the side table of checkpoint ids, once.
func (w *writer) ensureSide(ctx context.Context) error {
	if w.sideReady {
		return nil
	}
	side := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (sink text NOT NULL, subtask integer NOT NULL, checkpoint_id bigint NOT NULL, committed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (sink, subtask))", ident(w.s.cfg.CheckpointTable))
	if _, err := w.conn.Exec(ctx, side); err != nil && !isDuplicateTypeRace(err) {
		return fmt.Errorf("create table %s: %w", w.s.cfg.CheckpointTable, err)
	}
	w.sideReady = true
	return nil
}

// resolve fixes the column types from the schema and the buffered rows,
// creates the table when missing and prepares the insert statements.
func (w *writer) resolve(ctx context.Context) error {
	sc := w.s.schema
	w.cols = make([]colType, sc.Len())
	for i, f := range sc.Fields() {
		k := f.Kind
		inferred := k == row.KindNull
		if inferred {
			// An untyped field takes the kind of its first non-null
			// value, widened to float when the rows mix ints and floats.
			k = row.KindString
			for _, r := range w.buf {
				v := r.Get(i)
				if v.IsNull() {
					continue
				}
				if k == row.KindString {
					k = v.Kind()
				} else if k == row.KindInt && v.Kind() == row.KindFloat {
					k = row.KindFloat
				}
				if k != row.KindInt {
					break
				}
			}
		}
		w.cols[i] = colType{kind: k, sql: sqlTypes[k], inferred: inferred}
	}
	var ddl strings.Builder
	fmt.Fprintf(&ddl, "CREATE TABLE IF NOT EXISTS %s (", w.s.table)
	names := make([]string, sc.Len())
	for i, f := range sc.Fields() {
		names[i] = pgx.Identifier{f.Name}.Sanitize()
		if i > 0 {
			ddl.WriteString(", ")
		}
		fmt.Fprintf(&ddl, "%s %s", names[i], w.cols[i].sql)
		if slicesContains(w.s.keyIdx, i) {
			ddl.WriteString(" NOT NULL")
		}
	}
	var keys []string
	for _, k := range w.s.keyIdx {
		keys = append(keys, names[k])
	}
	if len(keys) > 0 {
		fmt.Fprintf(&ddl, ", PRIMARY KEY (%s)", strings.Join(keys, ", "))
	}
	ddl.WriteString(")")
	if _, err := w.conn.Exec(ctx, ddl.String()); err != nil && !isDuplicateTypeRace(err) {
		return fmt.Errorf("create table: %w", err)
	}
	if err := w.checkColumns(ctx, sc); err != nil {
		return err
	}
	w.insertHead = fmt.Sprintf("INSERT INTO %s (%s) VALUES ", w.s.table, strings.Join(names, ", "))
	w.insertTail = ""
	if len(keys) > 0 {
		var sets []string
		for i, n := range names {
			if !slicesContains(w.s.keyIdx, i) {
				sets = append(sets, fmt.Sprintf("%s = EXCLUDED.%s", n, n))
			}
		}
		if len(sets) == 0 {
			w.insertTail = fmt.Sprintf(" ON CONFLICT (%s) DO NOTHING", strings.Join(keys, ", "))
		} else {
			w.insertTail = fmt.Sprintf(" ON CONFLICT (%s) DO UPDATE SET %s", strings.Join(keys, ", "), strings.Join(sets, ", "))
		}
	}
	w.stmts = map[int]string{}
	return nil
}

// insertSQL returns the statement inserting n rows.
func (w *writer) insertSQL(n int) string {
	if q, ok := w.stmts[n]; ok {
		return q
	}
	var b strings.Builder
	b.WriteString(w.insertHead)
	p := 1
	for r := range n {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range w.cols {
			if c > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "$%d", p)
			p++
		}
		b.WriteByte(')')
	}
	b.WriteString(w.insertTail)
	q := b.String()
	w.stmts[n] = q
	return q
}

// isDuplicateTypeRace reports the error two sessions get when they run
// CREATE TABLE IF NOT EXISTS for one new table at the same time.
func isDuplicateTypeRace(err error) bool {
	c := pgCode(err)
	// 23505: unique violation on the catalog; 42P07: duplicate table;
	// 42710: duplicate object (the table's row type).
	return c == "23505" || c == "42P07" || c == "42710"
}

// pgCode returns the SQLSTATE of a server error, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// checkColumns verifies that an existing table has every field's column.
func (w *writer) checkColumns(ctx context.Context, sc *row.Schema) error {
	q := "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped"
	rows, err := w.conn.Query(ctx, q, w.s.table)
	if err != nil {
		return fmt.Errorf("list columns: %w", err)
	}
	have := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return fmt.Errorf("list columns: %w", err)
		}
		have[n] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list columns: %w", err)
	}
	for _, f := range sc.Fields() {
		if !have[f.Name] {
			return fmt.Errorf("%w: the existing table has no column %q", ErrIncompatible, f.Name)
		}
	}
	return nil
}

// widen turns the inferred bigint columns that buffered rows put
// fractional numbers in into double precision columns (ALTER TABLE when
// the table's column is a bigint), so that an untyped numeric field whose
// first values happened to be whole numbers does not make later
// fractional values fail.
func (w *writer) widen(ctx context.Context) error {
	for i, c := range w.cols {
		if !c.inferred || c.kind != row.KindInt {
			continue
		}
		frac := false
		for _, r := range w.buf {
			if v := r.Get(i); v.Kind() == row.KindFloat && v.AsFloat() != math.Trunc(v.AsFloat()) {
				frac = true
				break
			}
		}
		if !frac {
			continue
		}
		name := w.s.schema.Field(i).Name
		var typ string
		q := "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2 AND NOT attisdropped"
		if err := w.conn.QueryRow(ctx, q, w.s.table, name).Scan(&typ); err != nil {
			return fmt.Errorf("column %s type: %w", name, err)
		}
		switch typ {
		case "bigint", "integer", "smallint":
			alter := fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s TYPE double precision", w.s.table, pgx.Identifier{name}.Sanitize())
			if _, err := w.conn.Exec(ctx, alter); err != nil {
				return fmt.Errorf("widen column %s to double precision: %w", name, err)
			}
			// Cached statements were described with the old type.
			if err := w.conn.DeallocateAll(ctx); err != nil {
				return fmt.Errorf("widen column %s: %w", name, err)
			}
		case "double precision", "real", "numeric":
		default:
			if !strings.HasPrefix(typ, "numeric") {
				continue // the database judges: rows that do not fit are rejected
			}
		}
		w.cols[i] = colType{kind: row.KindFloat, sql: sqlTypes[row.KindFloat], inferred: true}
	}
	return nil
}

func slicesContains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// flush writes the buffer in one transaction, with the checkpoint id when
// withID. Rows that cannot be written are left out and reported in a
// *RejectError once the others are committed.
func (w *writer) flush(ctx context.Context, id uint64, withID bool) error {
	if len(w.buf) == 0 && !withID {
		return nil
	}
	if withID {
		if err := w.ensureSide(ctx); err != nil {
			return fmt.Errorf("postgres sink %s: %w", w.s.cfg.Table, err)
		}
	}
	if w.cols == nil && len(w.buf) > 0 {
		// Untyped fields take their kinds from these first rows.
		if err := w.resolve(ctx); err != nil {
			w.cols = nil
			return fmt.Errorf("postgres sink %s: %w", w.s.cfg.Table, err)
		}
	}
	if err := w.widen(ctx); err != nil {
		return fmt.Errorf("postgres sink %s: %w", w.s.cfg.Table, err)
	}
	// Convert every row first; the arguments of ok[j] are w.rowArgs(j).
	w.args = w.args[:0]
	var rejected []Rejected
	ok := make([]int, 0, len(w.buf))
	for ri, r := range w.buf {
		start := len(w.args)
		fits := true
		for _, k := range w.s.keyIdx {
			if r.Get(k).IsNull() {
				rejected = append(rejected, Rejected{Row: r, Field: w.s.schema.Field(k).Name, Err: ErrNullKey})
				fits = false
				break
			}
		}
		for i, c := range w.cols {
			if !fits {
				break
			}
			v, err := convert(r.Get(i), c.kind)
			if err != nil {
				rejected = append(rejected, Rejected{Row: r, Field: w.s.schema.Field(i).Name, Err: err})
				fits = false
				break
			}
			w.args = append(w.args, v)
		}
		if !fits {
			w.args = w.args[:start]
			continue
		}
		ok = append(ok, ri)
	}
	err := w.writeBatched(ctx, ok, id, withID)
	if err != nil && isDataError(err) {
		// Some row is refused by the database: find which, one row at a
		// time under savepoints, and commit the others.
		var refused []Rejected
		refused, err = w.writeRowByRow(ctx, ok, id, withID)
		rejected = append(rejected, refused...)
	}
	if err != nil {
		return fmt.Errorf("postgres sink %s: write %d rows: %w", w.s.cfg.Table, len(ok), err)
	}
	clear(w.buf)
	w.buf = w.buf[:0]
	if len(rejected) > 0 {
		return fmt.Errorf("postgres sink %s: %w", w.s.cfg.Table, &RejectError{Rejected: rejected})
	}
	return nil
}

func (w *writer) rowArgs(j int) []any {
	nc := len(w.cols)
	return w.args[j*nc : (j+1)*nc]
}

func (w *writer) checkpointSQL() string {
	return "INSERT INTO " + ident(w.s.cfg.CheckpointTable) + " (sink, subtask, checkpoint_id, committed_at) VALUES ($1, $2, $3, now()) ON CONFLICT (sink, subtask) DO UPDATE SET checkpoint_id = EXCLUDED.checkpoint_id, committed_at = EXCLUDED.committed_at"
}

// writeBatched writes the rows ok (indexes into buf) in multi-row
// statements, in one transaction.
func (w *writer) writeBatched(ctx context.Context, ok []int, id uint64, withID bool) error {
	// One statement may not touch a key twice (ON CONFLICT DO UPDATE
	// refuses): keep each key's last row, which is what upserting the rows
	// one by one would leave.
	keep := make([]int, 0, len(ok)) // positions in ok
	if len(w.s.keyIdx) > 0 {
		if w.last == nil {
			w.last = map[string]int{}
		}
		clear(w.last)
		for j, ri := range ok {
			w.keyBuf = w.buf[ri].AppendKey(w.keyBuf[:0], w.s.keyIdx)
			w.last[string(w.keyBuf)] = j
		}
		for j, ri := range ok {
			w.keyBuf = w.buf[ri].AppendKey(w.keyBuf[:0], w.s.keyIdx)
			if w.last[string(w.keyBuf)] == j {
				keep = append(keep, j)
			}
		}
	} else {
		for j := range ok {
			keep = append(keep, j)
		}
	}
	if len(w.s.keyIdx) == 0 && len(ok) >= copyThreshold {
		return w.writeCopy(ctx, ok, id, withID)
	}
	b := &pgx.Batch{}
	for len(keep) > 0 {
		n := min(len(keep), maxRowsPerStatement)
		args := make([]any, 0, n*len(w.cols))
		for _, j := range keep[:n] {
			args = append(args, w.rowArgs(j)...)
		}
		b.Queue(w.insertSQL(n), args...)
		keep = keep[n:]
	}
	if withID {
		b.Queue(w.checkpointSQL(), w.s.cfg.SinkID, w.subtask, int64(id))
	}
	return pgx.BeginFunc(ctx, w.conn, func(tx pgx.Tx) error {
		if b.Len() == 0 {
			return nil
		}
		br := tx.SendBatch(ctx, b)
		for range b.Len() {
			if _, err := br.Exec(); err != nil {
				br.Close()
				return err
			}
		}
		return br.Close()
	})
}

// copyThreshold is the number of rows from which an append uses COPY
// rather than INSERT statements.
const copyThreshold = 64

// writeCopy appends the rows ok with COPY (binary), in one transaction with
// the checkpoint id.
func (w *writer) writeCopy(ctx context.Context, ok []int, id uint64, withID bool) error {
	names := w.s.schema.Names()
	return pgx.BeginFunc(ctx, w.conn, func(tx pgx.Tx) error {
		j := 0
		src := pgx.CopyFromFunc(func() ([]any, error) {
			if j == len(ok) {
				return nil, nil
			}
			j++
			return w.rowArgs(j - 1), nil
		})
		if _, err := tx.CopyFrom(ctx, pgx.Identifier(strings.Split(w.s.cfg.Table, ".")), names, src); err != nil {
			return err
		}
		if withID {
			if _, err := tx.Exec(ctx, w.checkpointSQL(), w.s.cfg.SinkID, w.subtask, int64(id)); err != nil {
				return fmt.Errorf("store checkpoint %d: %w", id, err)
			}
		}
		return nil
	})
}

// writeRowByRow writes the rows ok one statement each under a savepoint,
// leaving out those the database refuses with a data or constraint error.
func (w *writer) writeRowByRow(ctx context.Context, ok []int, id uint64, withID bool) ([]Rejected, error) {
	var refused []Rejected
	err := pgx.BeginFunc(ctx, w.conn, func(tx pgx.Tx) error {
		refused = refused[:0]
		q := w.insertSQL(1)
		for j, ri := range ok {
			if _, err := tx.Exec(ctx, "SAVEPOINT sluice_row"); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, q, w.rowArgs(j)...); err != nil {
				if !isDataError(err) {
					return err
				}
				if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT sluice_row"); err != nil {
					return err
				}
				refused = append(refused, Rejected{Row: w.buf[ri], Err: err})
				continue
			}
			if _, err := tx.Exec(ctx, "RELEASE SAVEPOINT sluice_row"); err != nil {
				return err
			}
		}
		if withID {
			if _, err := tx.Exec(ctx, w.checkpointSQL(), w.s.cfg.SinkID, w.subtask, int64(id)); err != nil {
				return fmt.Errorf("store checkpoint %d: %w", id, err)
			}
		}
		return nil
	})
	return refused, err
}

// isDataError reports a server error caused by the data of rows: a data
// exception (class 22), an integrity constraint violation (class 23), or
// a cardinality violation (class 21: two rows of one statement with keys
// the database finds equal, such as 1 and 1.0 in a bigint key).
func isDataError(err error) bool {
	c := pgCode(err)
	return strings.HasPrefix(c, "21") || strings.HasPrefix(c, "22") || strings.HasPrefix(c, "23")
}

// convert turns v into the Go value pgx writes into a column of kind k.
func convert(v row.Value, k row.Kind) (any, error) {
	if v.IsNull() {
		return nil, nil
	}
	vk := v.Kind()
	switch k {
	case row.KindBool:
		if vk == row.KindBool {
			return v.AsBool(), nil
		}
	case row.KindInt:
		switch vk {
		case row.KindInt, row.KindTimestamp:
			return v.AsInt(), nil
		case row.KindFloat:
			f := v.AsFloat()
			if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
				return int64(f), nil
			}
		}
	case row.KindFloat:
		if vk == row.KindFloat || vk == row.KindInt {
			return v.AsFloat(), nil
		}
	case row.KindString:
		return v.String(), nil
	case row.KindTimestamp:
		if ms, err := v.Millis(); err == nil {
			return time.UnixMilli(ms).UTC(), nil
		}
	case row.KindJSON:
		return string(v.AppendJSON(nil)), nil
	}
	return nil, fmt.Errorf("%w: a %s value in a %s column", ErrIncompatible, vk, sqlTypes[k])
}

var _ stream.BarrierWriter = (*writer)(nil)
