package connect

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/sluicehq/sluice/stream"
)

// Postgres is the 'postgres' (and 'jdbc') sink. With a PRIMARY KEY each
// +I and +U row is an upsert (INSERT ... ON CONFLICT DO UPDATE), each -D
// a DELETE by key, and -U rows are skipped (the +U that follows replaces
// the row), so the table holds the query's current result; without a key
// rows are appended. Every Write is one transaction. The table is
// created when missing, with the columns' SQL types. Delivery is
// at-least-once: rows replayed after a failure upsert and delete by key
// again, which leaves the same table.
type Postgres struct {
	cfg     *pgx.ConnConfig
	table   string // quoted identifier
	cols    []Column
	pk      []int
	names   []string // quoted column names
	casts   []string // per column: the cast applied to its parameter
	upsert  string
	delete  string
	created chan struct{}
}

func openPostgres(t SinkTable, env Env) (stream.Sink[exec.Change], error) {
	if err := noMetadata(t.Columns); err != nil {
		return nil, err
	}
	dsn := t.Options["dsn"]
	if u := t.Options["url"]; u != "" {
		if dsn != "" {
			return nil, fmt.Errorf("options 'url' and 'dsn' both set: keep one")
		}
		dsn = strings.Replace(u, "jdbc:postgresql://", "postgres://", 1)
	}
	if dsn == "" {
		return nil, fmt.Errorf("option 'url' is required: postgres://host:5432/db (or jdbc:postgresql://host:5432/db)")
	}
	table := t.Options["table-name"]
	if table == "" {
		table = t.Name
	}
	pcfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("option 'url': %w", err)
	}
	if u := t.Options["username"]; u != "" {
		pcfg.User = u
	}
	if p := t.Options["password"]; p != "" {
		pcfg.Password = p
	}
	if eo, err := optBool(t.Options, "sink.exactly-once", false); err != nil {
		return nil, err
	} else if eo {
		return nil, fmt.Errorf("'sink.exactly-once' = 'true' is not supported by SQL postgres sinks yet: upserts by PRIMARY KEY make replays harmless")
	}
	p := &Postgres{cfg: pcfg, table: pgx.Identifier(strings.Split(table, ".")).Sanitize(), cols: t.Columns, pk: t.PrimaryKey, created: make(chan struct{}, 1)}
	p.created <- struct{}{}
	params := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		p.names = append(p.names, pgx.Identifier{c.Name}.Sanitize())
		cast, err := pgCast(c.Type)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
		p.casts = append(p.casts, cast)
		params[i] = fmt.Sprintf("$%d::%s", i+1, cast)
	}
	p.upsert = fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", p.table, strings.Join(p.names, ", "), strings.Join(params, ", "))
	if len(p.pk) > 0 {
		var keys, sets, where []string
		for n, i := range p.pk {
			keys = append(keys, p.names[i])
			where = append(where, fmt.Sprintf("%s = $%d::%s", p.names[i], n+1, p.casts[i]))
		}
		for i, n := range p.names {
			if !containsInt(p.pk, i) {
				sets = append(sets, fmt.Sprintf("%s = EXCLUDED.%s", n, n))
			}
		}
		if len(sets) == 0 {
			p.upsert += fmt.Sprintf(" ON CONFLICT (%s) DO NOTHING", strings.Join(keys, ", "))
		} else {
			p.upsert += fmt.Sprintf(" ON CONFLICT (%s) DO UPDATE SET %s", strings.Join(keys, ", "), strings.Join(sets, ", "))
		}
		p.delete = fmt.Sprintf("DELETE FROM %s WHERE %s", p.table, strings.Join(where, " AND "))
	}
	return p, nil
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// pgCast returns the PostgreSQL type of a SQL type: the column type of a
// created table and the cast of its parameters (sent as text).
func pgCast(t types.Type) (string, error) {
	switch t.Kind {
	case types.Boolean:
		return "boolean", nil
	case types.TinyInt, types.SmallInt:
		return "smallint", nil
	case types.Int:
		return "integer", nil
	case types.BigInt, types.IntervalDayTime, types.IntervalYearMonth:
		return "bigint", nil
	case types.Float:
		return "real", nil
	case types.Double:
		return "double precision", nil
	case types.Decimal:
		return fmt.Sprintf("numeric(%d, %d)", t.Precision, t.Scale), nil
	case types.Char, types.Varchar:
		return "text", nil
	case types.Date:
		return "date", nil
	case types.Time:
		return "time(3)", nil
	case types.Timestamp:
		return "timestamp(3)", nil
	case types.TimestampLTZ:
		return "timestamptz(3)", nil
	case types.Row, types.Array, types.Map:
		return "jsonb", nil
	}
	return "", fmt.Errorf("type %s cannot be written to PostgreSQL", t)
}

// pgText returns a value as the text PostgreSQL reads for its cast, or nil
// for NULL.
func pgText(t types.Type, v row.Value) any {
	if v.IsNull() {
		return nil
	}
	if t.IsTimestamp() && v.Kind() == row.KindTimestamp {
		b := appendTimestamp(nil, v.AsInt(), true, true)
		if t.Kind == types.Timestamp {
			b = b[:len(b)-1] // no zone: the UTC wall time
		}
		return string(b)
	}
	return string(appendText(nil, t, v, SQLTimestamp))
}

// Open implements stream.Sink.
func (p *Postgres) Open(ctx context.Context, info stream.SubtaskInfo) (stream.SinkWriter[exec.Change], error) {
	conn, err := pgx.ConnectConfig(ctx, p.cfg.Copy())
	if err != nil {
		return nil, fmt.Errorf("postgres sink %s: connect: %w", p.table, err)
	}
	// One subtask creates the table; the others wait for it.
	select {
	case <-p.created:
		err := p.create(ctx, conn)
		p.created <- struct{}{}
		if err != nil {
			conn.Close(context.Background())
			return nil, err
		}
	case <-ctx.Done():
		conn.Close(context.Background())
		return nil, ctx.Err()
	}
	return &pgWriter{p: p, conn: conn}, nil
}

func (p *Postgres) create(ctx context.Context, conn *pgx.Conn) error {
	var ddl strings.Builder
	fmt.Fprintf(&ddl, "CREATE TABLE IF NOT EXISTS %s (", p.table)
	for i, n := range p.names {
		if i > 0 {
			ddl.WriteString(", ")
		}
		fmt.Fprintf(&ddl, "%s %s", n, p.casts[i])
		if containsInt(p.pk, i) {
			ddl.WriteString(" NOT NULL")
		}
	}
	if len(p.pk) > 0 {
		keys := make([]string, len(p.pk))
		for n, i := range p.pk {
			keys[n] = p.names[i]
		}
		fmt.Fprintf(&ddl, ", PRIMARY KEY (%s)", strings.Join(keys, ", "))
	}
	ddl.WriteString(")")
	if _, err := conn.Exec(ctx, ddl.String()); err != nil {
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "23505" { // a concurrent CREATE's unique violation
			return fmt.Errorf("postgres sink %s: create table: %w", p.table, err)
		}
	}
	return nil
}

type pgWriter struct {
	p    *Postgres
	conn *pgx.Conn
}

func (w *pgWriter) Write(ctx context.Context, recs []exec.Change) error {
	p := w.p
	var b pgx.Batch
	for _, c := range recs {
		switch {
		case c.Op == exec.UpdateBefore && len(p.pk) > 0:
			continue
		case c.Op.IsRetract() && len(p.pk) > 0:
			args := make([]any, len(p.pk))
			for n, i := range p.pk {
				args[n] = pgText(p.cols[i].Type, c.Vals[i])
			}
			b.Queue(p.delete, args...)
		case c.Op.IsRetract():
			return fmt.Errorf("postgres sink %s: a %s row without a PRIMARY KEY to apply it by", p.table, c.Op)
		default:
			args := make([]any, len(p.cols))
			for i := range p.cols {
				args[i] = pgText(p.cols[i].Type, c.Vals[i])
			}
			b.Queue(p.upsert, args...)
		}
	}
	if b.Len() == 0 {
		return nil
	}
	tx, err := w.conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres sink %s: %w", p.table, err)
	}
	defer tx.Rollback(context.Background())
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("postgres sink %s: %w", p.table, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres sink %s: commit: %w", p.table, err)
	}
	return nil
}

func (w *pgWriter) Close(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return w.conn.Close(cctx)
}
