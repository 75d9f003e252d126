package pgcdc

import (
	"fmt"
	"testing"
)

// TestResumeSnapshotExactly interrupts a snapshot, changes rows on both
// sides of the interrupted key (key changes across it included), resumes
// from the saved position and checks the whole history as a strict
// changelog: every row read once, then only the changes after its read.
func TestResumeSnapshotExactly(t *testing.T) {
	f := newFixture(t, `CREATE TABLE %s (id int PRIMARY KEY, v text)`)
	f.exec("INSERT INTO " + f.table + " SELECT i, 'v' || i FROM generate_series(1, 100) i")
	cfg := f.config()
	o := newOracle()
	apply := func(evs []event) {
		t.Helper()
		for _, e := range evs {
			if err := o.apply(e, "id"); err != nil {
				t.Fatal(err)
			}
		}
	}
	s := openSplit(t, cfg, nil)
	apply(s.readN(30))
	pos := s.sp.Position()
	s.sp.Close() // the crash: the slot stays where the snapshot began
	for _, q := range []string{
		"UPDATE %s SET v = 'u10' WHERE id = 10", // read before: emitted
		"UPDATE %s SET v = 'u50' WHERE id = 50", // read after: in the new snapshot
		"DELETE FROM %s WHERE id IN (20, 60)",   // both sides
		"INSERT INTO %s VALUES (200, 'new')",    // after: new snapshot
		"UPDATE %s SET id = 300 WHERE id = 15",  // before -> after the cut
		"UPDATE %s SET id = 0 WHERE id = 80",    // after -> before the cut
		"BEGIN; UPDATE %s SET v = 'tx' WHERE id IN (5, 95); COMMIT",
	} {
		f.exec(fmt.Sprintf(q, f.table))
	}
	// A second interruption inside the resumed snapshot.
	r := openSplit(t, cfg, pos)
	apply(r.readN(40))
	pos2 := r.sp.Position()
	r.sp.Close()
	f.exec(fmt.Sprintf("UPDATE %s SET v = 'second' WHERE id IN (3, 40, 90)", f.table))
	f.exec(fmt.Sprintf("DELETE FROM %s WHERE id = 99", f.table))
	r2 := openSplit(t, cfg, pos2)
	f.exec(fmt.Sprintf("INSERT INTO %s VALUES (100000, 'marker')", f.table))
	apply(r2.readUntil(`{"id":100000}`))
	f.exec(fmt.Sprintf("UPDATE %s SET v = 'live' WHERE id IN (1, 0, 300)", f.table))
	f.exec(fmt.Sprintf("INSERT INTO %s VALUES (100001, 'marker')", f.table))
	apply(r2.readUntil(`{"id":100001}`))
	if d := diffRows(f.tableRows("id"), o.rows); d != "" {
		t.Fatalf("replayed changes differ from the table:\n%s", d)
	}
}
