package pgcdc

import (
	"testing"
	"time"
)

// TestPartitionedTableChangesCaptured: a partitioned table's rows live in
// its partitions, whose changes pgoutput reports under the partition's
// own name unless the publication publishes via the root: the snapshot
// (which reads the parent) and the changes must both arrive, under the
// configured table, whether the source creates the publication or finds
// one made without that option.
func TestPartitionedTableChangesCaptured(t *testing.T) {
	for _, existing := range []bool{false, true} {
		f := newFixture(t, `CREATE TABLE %s (id int PRIMARY KEY, v int) PARTITION BY RANGE (id)`)
		f.exec("CREATE TABLE " + f.table + "_p1 PARTITION OF " + f.table + " FOR VALUES FROM (0) TO (100)")
		f.exec("CREATE TABLE " + f.table + "_p2 PARTITION OF " + f.table + " FOR VALUES FROM (100) TO (200)")
		if existing {
			f.exec("CREATE PUBLICATION " + f.pub + " FOR TABLE " + f.table)
		}
		f.exec("INSERT INTO " + f.table + " VALUES (1, 1), (150, 150)")
		s := openSplit(t, f.config(), nil)
		if got := s.readN(2); got[0].Op != "r" || got[1].Op != "r" {
			t.Fatalf("snapshot %s %s", got[0].Op, got[1].Op)
		}
		f.exec("INSERT INTO " + f.table + " VALUES (2, 2), (151, 151)")
		f.exec("UPDATE " + f.table + " SET v = 0 WHERE id IN (1, 150)")
		for _, e := range s.readN(4) {
			if e.Source.Table != f.table[len("public."):] {
				t.Errorf("existing publication %v: %s of %s reported under table %s", existing, e.Op, e.Key, e.Source.Table)
			}
		}
		s.quiet(200 * time.Millisecond)
	}
}
