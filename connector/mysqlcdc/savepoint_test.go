package mysqlcdc

import (
	"fmt"
	"testing"
	"time"
)

// TestSavepointIsNotACommit: a transaction with a SAVEPOINT (which the
// server logs as a query event inside the transaction) read in part and
// resumed from the position saved after the savepoint: the rest of the
// transaction arrives, nothing twice. The savepoint must not end the
// transaction in the position (its GTID marked done, the resume point
// moved inside it).
func TestSavepointIsNotACommit(t *testing.T) {
	c := server(t)
	name := newTable(t, c, "revcdc_savepoint", "id INT PRIMARY KEY, v INT")
	cfg := testConfig(name)
	cfg.Snapshot = SnapshotNever
	_, sp := openSplit(t, cfg, nil)
	expectQuiet(t, sp)
	mustExec(t, c, "BEGIN")
	mustExec(t, c, fmt.Sprintf("INSERT INTO %s VALUES (1, 1)", name))
	mustExec(t, c, "SAVEPOINT revcdc_sp")
	mustExec(t, c, fmt.Sprintf("INSERT INTO %s VALUES (2, 2)", name))
	mustExec(t, c, fmt.Sprintf("INSERT INTO %s VALUES (3, 3)", name))
	mustExec(t, c, "COMMIT")
	first := readN(t, sp, 2, 30*time.Second)
	pos := sp.Position()
	_, sp2 := openSplit(t, cfg, pos)
	mustExec(t, c, fmt.Sprintf("INSERT INTO %s VALUES (4, 4)", name)) // a marker after it
	rest := readN(t, sp2, 2, 30*time.Second)
	expectQuiet(t, sp2)
	img := map[string]string{}
	apply(t, img, first)
	apply(t, img, rest)
	sameImage(t, img, tableImage(t, c, name))
}
