package mysqlcdc

import (
	"fmt"
	"testing"
	"time"
)

// TestXATransactionResumesMidway: an XA transaction (XA START ... XA
// END, XA PREPARE, XA COMMIT), read in part and resumed from the
// position saved inside it: the rest arrives, nothing twice.
func TestXATransactionResumesMidway(t *testing.T) {
	c := server(t)
	name := newTable(t, c, "revcdc_xa", "id INT PRIMARY KEY, v INT")
	cfg := testConfig(name)
	cfg.Snapshot = SnapshotNever
	_, sp := openSplit(t, cfg, nil)
	expectQuiet(t, sp)
	mustExec(t, c, "XA START 'revcdc_xa1'")
	mustExec(t, c, fmt.Sprintf("INSERT INTO %s VALUES (1, 1)", name))
	mustExec(t, c, fmt.Sprintf("INSERT INTO %s VALUES (2, 2)", name))
	mustExec(t, c, "XA END 'revcdc_xa1'")
	mustExec(t, c, "XA PREPARE 'revcdc_xa1'")
	mustExec(t, c, "XA COMMIT 'revcdc_xa1'")
	first := readN(t, sp, 1, 30*time.Second)
	pos := sp.Position()
	t.Logf("position %s", pos)
	_, sp2 := openSplit(t, cfg, pos)
	mustExec(t, c, fmt.Sprintf("INSERT INTO %s VALUES (3, 3)", name)) // a marker after it
	rest := readN(t, sp2, 2, 30*time.Second)
	expectQuiet(t, sp2)
	img := map[string]string{}
	apply(t, img, first)
	apply(t, img, rest)
	sameImage(t, img, tableImage(t, c, name))
}
