package pgcdc

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

const ordersDDL = `CREATE TABLE %s (id bigint PRIMARY KEY, name text, amount numeric(10,2), ok boolean, at timestamptz, doc jsonb)`

// TestSnapshotThenStream reads a snapshot in chunks, then inserts,
// updates and deletes (alone and several in one transaction), checking
// the row shape and replaying everything into an oracle that must equal
// the table.
func TestSnapshotThenStream(t *testing.T) {
	f := newFixture(t, ordersDDL)
	f.exec("INSERT INTO " + f.table + " SELECT i, 'n' || i, i * 1.5, i % 2 = 0, '2026-12-06 13:00:00.25+00', jsonb_build_object('i', i) FROM generate_series(1, 25) i")
	s := openSplit(t, f.config(), nil)
	o := newOracle()
	evs := s.readN(25)
	for i, e := range evs {
		if e.Op != "r" || e.Before != nil || e.Source.Connector != "postgres" || e.Source.Table != strings.TrimPrefix(f.table, "public.") || e.Source.Schema != "public" || e.Source.TxID != nil {
			t.Fatalf("snapshot record %d: %+v", i, e)
		}
		if err := o.apply(e, "id"); err != nil {
			t.Fatal(err)
		}
	}
	if got := string(evs[0].Key); got != `{"id":1}` {
		t.Errorf("key %s", got)
	}
	if got := string(evs[3].After["at"]); got != `"2026-12-06T13:00:00.25Z"` {
		t.Errorf("timestamptz as %s", got)
	}
	if got := string(evs[3].After["amount"]); got != `6.00` {
		t.Errorf("numeric as %s", got)
	}
	if got := string(evs[3].After["doc"]); got != `{"i": 4}` {
		t.Errorf("jsonb as %s", got)
	}
	// Slot and publication exist now.
	var n int
	if err := f.db.QueryRow(context.Background(), "SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1) + (SELECT count(*) FROM pg_publication_tables WHERE pubname = $2)", f.slot, f.pub).Scan(&n); err != nil || n != 2 {
		t.Fatalf("slot and publication: %d, %v", n, err)
	}
	before := time.Now().Add(-time.Second).UnixMilli()
	f.exec("INSERT INTO " + f.table + " VALUES (100, 'x', 1, true, now(), null)")
	f.exec("UPDATE " + f.table + " SET name = 'y' WHERE id = 100")
	f.exec("DELETE FROM " + f.table + " WHERE id = 1")
	f.exec("BEGIN; INSERT INTO " + f.table + " VALUES (101, 'z', 2, false, null, '[1,2]'); UPDATE " + f.table + " SET amount = amount + 1 WHERE id < 5; DELETE FROM " + f.table + " WHERE id = 101; COMMIT")
	evs = s.readN(3 + 1 + 3 + 1)
	ops := ""
	for _, e := range evs {
		ops += e.Op
		if err := o.apply(e, "id"); err != nil {
			t.Fatal(err)
		}
		if e.Source.TxID == nil || e.Source.LSN == 0 || e.Ts < before || e.Ts != e.Source.TsMs {
			t.Fatalf("stream record without transaction, LSN or commit time: %+v", e)
		}
	}
	if ops != "cudcuuud" {
		t.Fatalf("ops %s", ops)
	}
	if evs[1].Before == nil || string(evs[1].Before["id"]) != "100" || len(evs[1].Before) != 1 {
		t.Errorf("update's before is the key: %v", evs[1].Before)
	}
	if evs[2].After != nil || string(evs[2].Before["id"]) != "1" {
		t.Errorf("delete: before %v after %v", evs[2].Before, evs[2].After)
	}
	// One transaction: one txid.
	if *evs[3].Source.TxID != *evs[7].Source.TxID || *evs[3].Source.TxID == *evs[2].Source.TxID {
		t.Errorf("txids %d %d %d", *evs[2].Source.TxID, *evs[3].Source.TxID, *evs[7].Source.TxID)
	}
	if d := diffRows(f.tableRows("id"), o.rows); d != "" {
		t.Fatalf("replayed changes differ from the table:\n%s", d)
	}
}

// TestReplicaIdentityFullAndKeyChange: with REPLICA IDENTITY FULL the
// before image is the whole row; a primary-key change is a delete and a
// create.
func TestReplicaIdentityFullAndKeyChange(t *testing.T) {
	f := newFixture(t, ordersDDL)
	f.exec("ALTER TABLE " + f.table + " REPLICA IDENTITY FULL")
	f.exec("INSERT INTO " + f.table + " VALUES (1, 'a', 1, true, null, null)")
	cfg := f.config()
	cfg.Snapshot = SnapshotNever
	s := openSplit(t, cfg, nil)
	s.readN(0)
	// The slot exists once the split started; changes from here on.
	start(t, s)
	f.exec("UPDATE " + f.table + " SET name = 'b' WHERE id = 1")
	f.exec("UPDATE " + f.table + " SET id = 2 WHERE id = 1")
	evs := s.readN(3)
	if evs[0].Op != "u" || string(evs[0].Before["name"]) != `"a"` || string(evs[0].After["name"]) != `"b"` {
		t.Fatalf("full before image: %+v", evs[0])
	}
	if evs[1].Op != "d" || string(evs[1].Before["id"]) != "1" || evs[2].Op != "c" || string(evs[2].After["id"]) != "2" || string(evs[2].Key) != `{"id":2}` {
		t.Fatalf("key change: %+v / %+v", evs[1], evs[2])
	}
}

// start makes the split connect (a Read with no room still starts it).
func start(t *testing.T, s *testSplit) {
	t.Helper()
	if _, err := s.sp.Read(context.Background(), s.buf[:1]); err != nil {
		t.Fatal(err)
	}
}

// TestSchemaChange: ADD COLUMN and DROP COLUMN between transactions show
// in the next records.
func TestSchemaChange(t *testing.T) {
	f := newFixture(t, `CREATE TABLE %s (id int PRIMARY KEY, a text)`)
	cfg := f.config()
	s := openSplit(t, cfg, nil)
	start(t, s)
	f.exec("INSERT INTO " + f.table + " VALUES (1, 'x')")
	f.exec("ALTER TABLE " + f.table + " ADD COLUMN b int DEFAULT 7")
	f.exec("INSERT INTO " + f.table + " VALUES (2, 'y', 8)")
	f.exec("ALTER TABLE " + f.table + " DROP COLUMN a")
	f.exec("UPDATE " + f.table + " SET b = 9 WHERE id = 1")
	evs := s.readN(3)
	if _, ok := evs[0].After["b"]; ok || string(evs[0].After["a"]) != `"x"` {
		t.Fatalf("before ADD COLUMN: %v", evs[0].After)
	}
	if string(evs[1].After["b"]) != "8" || string(evs[1].After["a"]) != `"y"` {
		t.Fatalf("after ADD COLUMN: %v", evs[1].After)
	}
	if _, ok := evs[2].After["a"]; ok || string(evs[2].After["b"]) != "9" {
		t.Fatalf("after DROP COLUMN: %v", evs[2].After)
	}
}

// TestResumeStreamExactly restarts a split from positions taken after
// every record (mid-transaction included) of a stream with a large
// transaction, and checks that the records after the position are
// exactly the rest: nothing lost, nothing twice. CommitPosition moves the
// slot's confirmed flush LSN.
func TestResumeStreamExactly(t *testing.T) {
	f := newFixture(t, `CREATE TABLE %s (id int PRIMARY KEY, v int)`)
	cfg := f.config()
	cfg.Snapshot = SnapshotNever
	s := openSplit(t, cfg, nil)
	start(t, s)
	base := s.sp.Position()
	f.exec("INSERT INTO " + f.table + " VALUES (1, 1)")
	f.exec("BEGIN; INSERT INTO " + f.table + " SELECT i, i FROM generate_series(2, 6) i; UPDATE " + f.table + " SET v = v + 10 WHERE id < 4; DELETE FROM " + f.table + " WHERE id = 5; COMMIT")
	f.exec("UPDATE " + f.table + " SET v = 0 WHERE id = 6")
	const total = 1 + 5 + 3 + 1 + 1
	var all []event
	positions := [][]byte{base}
	for len(all) < total {
		evs := s.readN(1)
		all = append(all, evs...)
		positions = append(positions, s.sp.Position())
	}
	s.sp.Close()
	want := func(from int) string {
		var b strings.Builder
		for _, e := range all[from:] {
			fmt.Fprintf(&b, "%s%s%s;", e.Op, e.Key, norm(e.After))
		}
		return b.String()
	}
	for i, pos := range positions {
		r := openSplit(t, cfg, pos)
		got := r.readN(total - i)
		var b strings.Builder
		for _, e := range got {
			fmt.Fprintf(&b, "%s%s%s;", e.Op, e.Key, norm(e.After))
		}
		if b.String() != want(i) {
			t.Fatalf("resumed after record %d:\n got %s\nwant %s", i, b.String(), want(i))
		}
		r.sp.Close()
	}
	// Confirming the last position moves the slot.
	r := openSplit(t, cfg, positions[len(positions)-1])
	start(t, r)
	r.commitAndAwait(f, positions[len(positions)-1])
}
