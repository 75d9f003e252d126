package mysqlcdc

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
)

// snapshotReader reads the tables in primary-key chunks inside one
// consistent-snapshot transaction.
type snapshotReader struct {
	conn    *client.Conn
	at      binlogPos
	gtid    string
	tsMs    int64
	cur     int  // the table being read, an index into position.Snapshot
	drained bool // the current table's last chunk was its end
	scratch []byte
}

func (r *snapshotReader) close() {
	if r.conn != nil {
		_, _ = r.conn.Execute("ROLLBACK")
		r.conn.Close()
		r.conn = nil
	}
}

// startSnapshot opens a consistent snapshot at the binlog's current
// position. Begun afresh, it is the stream's starting point; resuming a
// cut snapshot, it is where the remaining keys of each table are read,
// recorded as segments (see the package doc).
func (s *split) startSnapshot(ctx context.Context) error {
	c, err := s.connect(ctx)
	if err != nil {
		return err
	}
	at, gtid, err := s.server.beginSnapshot(c)
	if err != nil {
		c.Close()
		return err
	}
	if s.pos == nil {
		s.pos = &position{V: positionVersion, Resume: at, GTID: gtid}
		for _, t := range s.cfg.Tables {
			s.pos.Snapshot = append(s.pos.Snapshot, tableProgress{Table: t})
		}
	} else {
		have := map[string]bool{}
		for _, tp := range s.pos.Snapshot {
			have[tp.Table] = true
		}
		for _, t := range s.cfg.Tables {
			if !have[t] { // a table added to the spec while the snapshot ran
				s.pos.Snapshot = append(s.pos.Snapshot, tableProgress{Table: t})
			}
		}
		if s.pos.Segments == nil {
			s.pos.Segments = map[string][]segment{}
		}
		for i := range s.pos.Snapshot {
			tp := &s.pos.Snapshot[i]
			if tp.Done || s.tables[tp.Table] == nil {
				continue
			}
			segs := s.pos.Segments[tp.Table]
			if segs == nil {
				segs = []segment{{At: s.pos.Resume}}
			}
			if last := &segs[len(segs)-1]; equalKey(last.From, tp.Last) {
				last.At = at // nothing of it read yet: all of it is read at the new point
			} else {
				segs = append(segs, segment{From: tp.Last, At: at})
			}
			s.pos.Segments[tp.Table] = segs
		}
	}
	s.snap = &snapshotReader{conn: c, at: at, gtid: gtid, tsMs: time.Now().UnixMilli()}
	s.src.snapshot.Store(true)
	return nil
}

// next reads the next chunk into pending; done once every table is read.
func (r *snapshotReader) next(s *split, out *[]pending) (done bool, err error) {
	for {
		for r.cur < len(s.pos.Snapshot) && (s.pos.Snapshot[r.cur].Done || s.tables[s.pos.Snapshot[r.cur].Table] == nil) {
			r.cur++
		}
		if r.cur == len(s.pos.Snapshot) {
			return true, nil
		}
		tp := &s.pos.Snapshot[r.cur]
		t := s.tables[tp.Table]
		q, err := chunkQuery(t, tp.Last, s.cfg.ChunkRows)
		if err != nil {
			return false, fatal(fmt.Errorf("mysql_cdc: snapshot of %s: %w", t.id(), err))
		}
		res, err := r.conn.Execute(q)
		if err != nil {
			return false, fmt.Errorf("snapshot of %s: %w", t.id(), err)
		}
		rows := res.RowNumber()
		if rows == 0 {
			tp.Done = true
			r.cur++
			continue
		}
		src := sourceMeta{file: r.at.File, pos: r.at.Pos, gtid: r.gtid, serverID: s.server.serverID, tsMs: r.tsMs, snapshot: true}
		vals := make([]any, len(t.cols))
		for i := range rows {
			for j := range vals {
				vals[j] = res.Values[i][j].Value()
			}
			var img rowImage
			img, r.scratch, err = render(t, vals, r.scratch)
			if err != nil {
				return false, fatal(fmt.Errorf("mysql_cdc: snapshot: %w", err))
			}
			*out = append(*out, pending{msg: message(t, 'r', nil, img, src), key: img.key(t)})
		}
		r.drained = rows < s.cfg.ChunkRows
		return false, nil
	}
}

// delivered records that the rows up to key were returned; all: the
// whole chunk was.
func (r *snapshotReader) delivered(p *position, key []json.RawMessage, all bool) {
	tp := &p.Snapshot[r.cur]
	tp.Last = key
	if all && r.drained {
		tp.Done = true
	}
}

// chunkQuery selects the next rows of t after key last, in key order.
func chunkQuery(t *table, last []json.RawMessage, limit int) (string, error) {
	q := []byte("SELECT ")
	for i, c := range t.cols {
		if i > 0 {
			q = append(q, ", "...)
		}
		q = append(q, quoteIdent(c.name)...)
	}
	q = append(q, " FROM "...)
	q = append(q, quoteIdent(t.db)+"."+quoteIdent(t.name)...)
	keyList := func(q []byte) []byte {
		for i, c := range t.pk {
			if i > 0 {
				q = append(q, ", "...)
			}
			q = append(q, quoteIdent(t.cols[c].name)...)
		}
		return q
	}
	if last != nil {
		if len(last) != len(t.pk) {
			return "", fmt.Errorf("the saved key has %d columns, the primary key %d (the key changed: start the pipeline without its checkpoints)", len(last), len(t.pk))
		}
		q = append(q, " WHERE ("...)
		q = keyList(q)
		q = append(q, ") > ("...)
		for i, c := range t.pk {
			if i > 0 {
				q = append(q, ", "...)
			}
			var err error
			if q, err = sqlLiteral(q, &t.cols[c], last[i]); err != nil {
				return "", err
			}
		}
		q = append(q, ')')
	}
	q = append(q, " ORDER BY "...)
	q = keyList(q)
	q = fmt.Appendf(q, " LIMIT %d", limit)
	return string(q), nil
}
