package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var cdcSeq atomic.Int64

// cdcFixture is a source table with its slot and publication and the
// target tables a test writes, all dropped at the end.
type cdcFixture struct {
	t      *testing.T
	dsn    string
	db     *pgx.Conn
	n      string
	src    string
	slot   string
	pub    string
	tables []string
}

func newCDCFixture(t *testing.T) *cdcFixture {
	dsn := testPostgres(t)
	ctx := context.Background()
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var wal string
	if err := db.QueryRow(ctx, "SHOW wal_level").Scan(&wal); err != nil {
		t.Fatal(err)
	}
	if wal != "logical" {
		db.Close(ctx)
		t.Skipf("PostgreSQL's wal_level is %s, not logical: run scripts/start-services.sh", wal)
	}
	n := fmt.Sprintf("%d_%d", os.Getpid(), cdcSeq.Add(1))
	f := &cdcFixture{t: t, dsn: dsn, db: db, n: n, src: "cdc_src_" + n, slot: "cdc_pslot_" + n, pub: "cdc_ppub_" + n}
	f.exec("CREATE TABLE " + f.src + " (id bigint PRIMARY KEY, grp int NOT NULL, name text, qty int)")
	f.tables = append(f.tables, f.src)
	t.Cleanup(func() {
		ctx := context.Background()
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := db.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE $1", f.slot+"%")
			if err == nil || time.Now().After(deadline) {
				if err != nil {
					t.Errorf("dropping slot %s: %v", f.slot, err)
				}
				break
			}
			_, _ = db.Exec(ctx, "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name LIKE $1 AND active_pid IS NOT NULL", f.slot+"%")
			time.Sleep(100 * time.Millisecond)
		}
		_, _ = db.Exec(ctx, "DROP PUBLICATION IF EXISTS "+f.pub)
		for _, tb := range f.tables {
			_, _ = db.Exec(ctx, "DROP TABLE IF EXISTS "+tb)
		}
		db.Close(ctx)
	})
	return f
}

func (f *cdcFixture) exec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.db.Exec(context.Background(), sql, args...); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
}

func (f *cdcFixture) target(name string) string {
	tb := name + "_" + f.n
	f.tables = append(f.tables, tb)
	return tb
}

// rows returns a query's rows as sorted text lines ("" when the table
// does not exist yet).
func (f *cdcFixture) rows(q string) string {
	f.t.Helper()
	rs, err := f.db.Query(context.Background(), q)
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return ""
		}
		f.t.Fatal(err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		vals, err := rs.Values()
		if err != nil {
			f.t.Fatal(err)
		}
		out = append(out, fmt.Sprint(vals...))
	}
	if err := rs.Err(); err != nil {
		f.t.Fatal(err)
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// waitEqual waits until both queries give the same rows.
func (f *cdcFixture) waitEqual(want, got string, job *Job) {
	f.t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		w, g := f.rows(want), f.rows(got)
		if w == g {
			return
		}
		select {
		case <-job.Done():
			f.t.Fatalf("the job ended: %v", job.Wait())
		default:
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("target never matched:\nwant %.600s\n got %.600s", w, g)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// start parses, compiles and starts spec; the job is cancelled when the
// test ends.
func (f *cdcFixture) start(spec string) *Job {
	f.t.Helper()
	s, err := Parse("cdc.yaml", []byte(spec))
	if err != nil {
		f.t.Fatal(err)
	}
	return f.startSpec(s)
}

// startSpec compiles and starts s; the job is cancelled when the test
// ends.
func (f *cdcFixture) startSpec(s *Spec) *Job {
	f.t.Helper()
	p, err := Compile(s)
	if err != nil {
		f.t.Fatal(err)
	}
	j, err := p.Start(context.Background(), &Host{DataDir: f.t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() {
		j.Cancel()
		<-j.Done()
	})
	return j
}

// TestCDCReplicatesTable: postgres_cdc → changelog → postgres gives an
// identical table through a snapshot, single changes, several changes in
// one transaction and a transaction of 50,000 rows.
func TestCDCReplicatesTable(t *testing.T) {
	f := newCDCFixture(t)
	f.exec("INSERT INTO " + f.src + " SELECT i, i % 7, 'n' || i, i FROM generate_series(1, 500) i")
	dst := f.target("cdc_dst")
	j := f.start(fmt.Sprintf(`name: cdc-replicate-%s
source:
  postgres_cdc: {dsn: "%s", tables: [public.%s], slot: %s, publication: %s, chunk_rows: 100}
  changelog: {}
  types: {id: int, grp: int, name: string, qty: int}
steps:
  - map: {id: id, grp: grp, name: name, qty: qty}
sink:
  postgres: {dsn: "%s", table: %s, key: [id]}
checkpoint: {interval: 200ms, dir: %s}
`, f.n, f.dsn, f.src, f.slot, f.pub, f.dsn, dst, t.TempDir()))
	want := "SELECT id, grp, name, qty FROM " + f.src
	got := "SELECT id, grp, name, qty FROM " + dst
	f.waitEqual(want, got, j)
	f.exec("INSERT INTO " + f.src + " VALUES (1000, 1, 'x', 5)")
	f.exec("UPDATE " + f.src + " SET name = 'y', qty = NULL WHERE id = 1000")
	f.exec("DELETE FROM " + f.src + " WHERE id = 3")
	f.exec("UPDATE " + f.src + " SET id = 2000 WHERE id = 4") // a key change
	f.exec("BEGIN; INSERT INTO " + f.src + " VALUES (1001, 2, 'z', 1); UPDATE " + f.src + " SET qty = qty * 2 WHERE id < 50; DELETE FROM " + f.src + " WHERE id BETWEEN 60 AND 70; COMMIT")
	f.waitEqual(want, got, j)
	f.exec("BEGIN; INSERT INTO " + f.src + " SELECT i, i % 7, 'big', i FROM generate_series(10000, 59999) i; UPDATE " + f.src + " SET name = 'big2' WHERE id % 1000 = 0; COMMIT")
	f.waitEqual(want, got, j)
}

// TestCDCAggregateRetracts: a GROUP BY over CDC rows updates when rows
// are updated, deleted or move between groups, and its postgres sink
// upserts and deletes the groups.
func TestCDCAggregateRetracts(t *testing.T) {
	f := newCDCFixture(t)
	f.exec("INSERT INTO " + f.src + " SELECT i, i % 5, 'n', i FROM generate_series(1, 300) i")
	dst := f.target("cdc_agg")
	j := f.start(fmt.Sprintf(`name: cdc-agg-%s
source:
  postgres_cdc: {dsn: "%s", tables: [public.%s], slot: %s, publication: %s}
  changelog: {key: [id]}
steps:
  - sql:
      query: SELECT grp, COUNT(*) AS n, SUM(qty) AS total FROM input GROUP BY grp
      columns: {grp: INT, qty: BIGINT}
sink:
  postgres: {dsn: "%s", table: %s, key: [grp]}
checkpoint: {interval: 200ms, dir: %s}
`, f.n, f.dsn, f.src, f.slot, f.pub, f.dsn, dst, t.TempDir()))
	want := "SELECT grp, count(*), sum(qty) FROM " + f.src + " GROUP BY grp"
	got := "SELECT grp, n, total FROM " + dst
	f.waitEqual(want, got, j)
	f.exec("UPDATE " + f.src + " SET qty = qty + 1000 WHERE id % 3 = 0")
	f.exec("UPDATE " + f.src + " SET grp = 9 WHERE id < 20") // rows move to a new group
	f.exec("DELETE FROM " + f.src + " WHERE grp = 4")        // a group disappears
	f.waitEqual(want, got, j)
}

// TestCDCCommitTimeAsEventTime: with event_time: {source_time: true} a
// change's event time is its transaction's commit time, as the connector
// reports it in source.ts_ms: the SQL step's rowtime equals it for every
// change, snapshot reads aside (they carry the snapshot's start).
func TestCDCCommitTimeAsEventTime(t *testing.T) {
	f := newCDCFixture(t)
	dst := f.target("cdc_times")
	j := f.start(fmt.Sprintf(`name: cdc-times-%s
source:
  postgres_cdc: {dsn: "%s", tables: [public.%s], slot: %s, publication: %s, snapshot: never}
  event_time: {source_time: true}
steps:
  - filter: op != "r"
  - map: {id: after.id, commit_ms: source.ts_ms}
  - sql:
      query: SELECT id, commit_ms, rowtime AS at FROM input
      columns: {id: BIGINT, commit_ms: BIGINT}
sink:
  postgres: {dsn: "%s", table: %s, key: [id]}
checkpoint: {interval: 200ms, dir: %s}
`, f.n, f.dsn, f.src, f.slot, f.pub, f.dsn, dst, t.TempDir()))
	// The slot exists once the source has started; changes before it
	// are not in the stream (snapshot: never).
	deadline := time.Now().Add(120 * time.Second)
	for f.rows("SELECT 1 FROM pg_replication_slots WHERE slot_name = '"+f.slot+"'") == "" {
		if time.Now().After(deadline) {
			t.Fatal("the slot was never created")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := 1; i <= 50; i++ {
		f.exec("INSERT INTO "+f.src+" VALUES ($1, 1, 'x', 1)", i)
	}
	f.waitEqual("SELECT id FROM "+f.src, "SELECT id FROM "+dst, j)
	if bad := f.rows("SELECT id, commit_ms, at FROM " + dst + " WHERE (extract(epoch FROM at) * 1000)::bigint <> commit_ms"); bad != "" {
		t.Fatalf("rowtime is not the commit time for:\n%s", bad)
	}
}

// TestCDCWindowRetracts: postgres_cdc → changelog → a tumbling window
// step → postgres, with the event time from a column. A deleted row, an
// updated value, a row whose time moved to the next window and a row
// that moved to another group all change the windows' results before
// they fire (the before images hold only the key, PostgreSQL's default
// REPLICA IDENTITY); a window whose only row left emits nothing.
func TestCDCWindowRetracts(t *testing.T) {
	f := newCDCFixture(t)
	f.exec("ALTER TABLE " + f.src + " ADD COLUMN ts bigint")
	f.exec("INSERT INTO " + f.src + " (id, grp, name, qty, ts) VALUES (1, 1, 'a', 10, 1000), (2, 1, 'b', 20, 2000), (3, 1, 'c', 30, 3000), (4, 2, 'd', 5, 4000), (5, 1, 'e', 7, 12000), (6, 2, 'f', 8, 15000)")
	dst := f.target("cdc_win")
	j := f.start(fmt.Sprintf(`name: cdc-window-%s
source:
  postgres_cdc: {dsn: "%s", tables: [public.%s], slot: %s, publication: %s}
  changelog: {key: [id]}
  types: {id: int, grp: int, qty: int, ts: int}
  event_time: {field: ts, max_out_of_orderness: 1m}
steps:
  - window:
      key: [grp]
      tumbling: 10s
      aggregate: {n: count(), total: sum(qty), lo: min(qty), hi: max(qty), mean: avg(qty)}
sink:
  postgres: {dsn: "%s", table: %s, key: [grp, window_start]}
checkpoint: {interval: 200ms, dir: %s}
`, f.n, f.dsn, f.src, f.slot, f.pub, f.dsn, dst, t.TempDir()))
	f.exec("DELETE FROM " + f.src + " WHERE id = 2")                    // leaves grp 1's first window
	f.exec("UPDATE " + f.src + " SET qty = 35 WHERE id = 3")            // a new value in it
	f.exec("UPDATE " + f.src + " SET ts = 11000 WHERE id = 1")          // to the next window
	f.exec("UPDATE " + f.src + " SET grp = 1 WHERE id = 4")             // to grp 1: grp 2's first window empties
	f.exec("INSERT INTO " + f.src + " VALUES (100, 3, 'z', 1, 100000)") // the watermark passes 20s: both windows fire
	want := "SELECT * FROM (VALUES (1::bigint, 0::bigint, 2::bigint, 40::bigint, 5::bigint, 35::bigint, 20::float8), " +
		"(1, 10000, 2, 17, 7, 10, 8.5), (2, 10000, 1, 8, 8, 8, 8)) v"
	got := "SELECT grp::bigint, window_start::bigint, n::bigint, total::bigint, lo::bigint, hi::bigint, mean::float8 FROM " + dst
	f.waitEqual(want, got, j)
}
