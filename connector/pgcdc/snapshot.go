package pgcdc

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
)

// snapshotReader reads the tables in an imported snapshot, one chunk of
// ChunkRows rows (in primary-key order) per query.
type snapshotReader struct {
	sp      *split
	conn    *pgconn.PgConn
	lsn     pglogrepl.LSN
	startMs int64
	chunk   [][]value
	at      int
	// table whose chunk is buffered, and whether the last chunk was short
	// (the table is done after it).
	table int
	last  bool
	fresh bool
}

// openSnapshot starts a repeatable-read transaction in the exported
// snapshot name, consistent with lsn.
func openSnapshot(ctx context.Context, sp *split, name string, lsn pglogrepl.LSN) (*snapshotReader, error) {
	c, err := connect(ctx, sp.cfg.DSN, false)
	if err != nil {
		return nil, err
	}
	if err := execSQL(ctx, c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		c.Close(context.Background())
		return nil, fmt.Errorf("postgres_cdc: snapshot: %w", err)
	}
	if err := execSQL(ctx, c, "SET TRANSACTION SNAPSHOT '"+name+"'"); err != nil {
		c.Close(context.Background())
		return nil, fmt.Errorf("postgres_cdc: importing snapshot %s: %w", name, err)
	}
	return &snapshotReader{sp: sp, conn: c, lsn: lsn, startMs: time.Now().UnixMilli(), table: -1, fresh: true}, nil
}

func (r *snapshotReader) close() {
	if r.conn != nil {
		_ = execSQL(context.Background(), r.conn, "COMMIT")
		r.conn.Close(context.Background())
		r.conn = nil
	}
}

// next returns the next row of the table pos names, after pos.Last, or
// nil when that table has no more.
func (r *snapshotReader) next(ctx context.Context, pos *position) ([]value, error) {
	if r.table != pos.Table {
		r.table, r.chunk, r.at, r.last = pos.Table, nil, 0, false
	}
	if r.at < len(r.chunk) {
		row := r.chunk[r.at]
		r.at++
		return row, nil
	}
	if r.last {
		return nil, nil
	}
	if err := r.fetch(ctx, pos); err != nil {
		return nil, err
	}
	if len(r.chunk) == 0 {
		return nil, nil
	}
	r.at = 1
	return r.chunk[0], nil
}

// fetch reads the chunk after pos.Last.
func (r *snapshotReader) fetch(ctx context.Context, pos *position) error {
	m := r.sp.meta[pos.Table]
	rel := m.rel
	var cols, keys []string
	for _, c := range rel.cols {
		cols = append(cols, quoteIdent(c.name))
	}
	for _, k := range rel.keys {
		keys = append(keys, quoteIdent(rel.cols[k].name))
	}
	q := "SELECT " + strings.Join(cols, ", ") + " FROM " + m.from()
	var params [][]byte
	if pos.Last != nil {
		if len(pos.Last) != len(rel.keys) {
			return fmt.Errorf("postgres_cdc: the checkpoint's snapshot position of %s has %d key columns, the table %d: its primary key changed; start afresh", rel.table, len(pos.Last), len(rel.keys))
		}
		var ph []string
		for i, v := range pos.Last {
			if v == nil {
				return fmt.Errorf("postgres_cdc: the checkpoint's snapshot position of %s has a null key", rel.table)
			}
			params = append(params, []byte(*v))
			ph = append(ph, fmt.Sprintf("$%d::%s", i+1, m.keyTypes[i]))
		}
		q += " WHERE (" + strings.Join(keys, ", ") + ") > (" + strings.Join(ph, ", ") + ")"
	}
	q += " ORDER BY " + strings.Join(keys, ", ") + fmt.Sprintf(" LIMIT %d", r.sp.cfg.ChunkRows)
	rr := r.conn.ExecParams(ctx, q, params, nil, nil, nil)
	r.chunk = r.chunk[:0]
	for rr.NextRow() {
		vals := rr.Values()
		row := make([]value, len(vals))
		for i, v := range vals {
			if v == nil {
				row[i] = value{present: true, null: true}
			} else {
				row[i] = value{present: true, text: append([]byte(nil), v...)}
			}
		}
		r.chunk = append(r.chunk, row)
	}
	if _, err := rr.Close(); err != nil {
		return fmt.Errorf("postgres_cdc: snapshot of %s: %w", rel.table, err)
	}
	if len(r.chunk) > 0 && len(r.chunk[0]) != len(rel.cols) {
		return fmt.Errorf("postgres_cdc: snapshot of %s: %d columns, expected %d", rel.table, len(r.chunk[0]), len(rel.cols))
	}
	r.last = len(r.chunk) < r.sp.cfg.ChunkRows
	return nil
}
