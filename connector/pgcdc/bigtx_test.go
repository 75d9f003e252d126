package pgcdc

import (
	"encoding/json"
	"fmt"
	"testing"
)

// TestLargeTransactionResumesMidway: one transaction of more changes
// than the reader's queue holds, cut by a checkpoint midway (the split
// closed and reopened at its position): the rest arrives, in order,
// nothing twice, and the position names the transaction until its end.
func TestLargeTransactionResumesMidway(t *testing.T) {
	f := newFixture(t, `CREATE TABLE %s (id int PRIMARY KEY, v int)`)
	cfg := f.config()
	cfg.Snapshot = SnapshotNever
	s := openSplit(t, cfg, nil)
	start(t, s)
	const n, cut = 10000, 6000
	f.exec(fmt.Sprintf("INSERT INTO %s SELECT i, i FROM generate_series(1, %d) i", f.table, n))
	first := s.readN(cut)
	pos := s.sp.Position()
	var p position
	if err := json.Unmarshal(pos, &p); err != nil || p.TxLSN == 0 || p.TxSkip != cut {
		t.Fatalf("position mid-transaction %s (%v): want its commit LSN and skip %d", pos, err, cut)
	}
	s.sp.Close()
	r := openSplit(t, cfg, pos)
	f.exec(fmt.Sprintf("INSERT INTO %s VALUES (%d, 0)", f.table, n+1)) // a marker after it
	rest := r.readUntil(fmt.Sprintf(`{"id":%d}`, n+1))
	for i, e := range append(first, rest...) {
		if want := fmt.Sprintf(`{"id":%d}`, i+1); e.Op != "c" || string(e.Key) != want {
			t.Fatalf("record %d: %s %s, want c %s", i, e.Op, e.Key, want)
		}
	}
	if got := len(first) + len(rest); got != n+1 {
		t.Fatalf("%d records up to the marker, want %d", got, n+1)
	}
}
