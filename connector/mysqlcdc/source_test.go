package mysqlcdc

import (
	"testing"
	"time"
)

func TestSnapshotThenStream(t *testing.T) {
	c := server(t)
	name := newTable(t, c, "orders", "id INT PRIMARY KEY, customer VARCHAR(40), amount DECIMAL(10,2), qty INT UNSIGNED, f FLOAT, d DOUBLE, created DATETIME(3), ts TIMESTAMP(6) NULL, day DATE, status ENUM('new','paid','shipped'), tags SET('a','b','c'), payload BLOB, flag BIT(3), y YEAR, note TEXT")
	for i := 1; i <= 25; i++ {
		mustExec(t, c, "INSERT INTO "+name+" VALUES (?, ?, ?, ?, 1.1, 2.5, '2026-12-06 10:00:00.123', '2026-12-06 10:00:00.5', '2026-12-06', 'new', 'a,c', X'00ff10', b'101', 2026, 'line\nbreak \"q\" é')",
			i, "customer-"+string(rune('a'+i%26)), float64(i)*1.25, 4000000000+i)
	}
	_, sp := openSplit(t, testConfig(name), nil)
	img := map[string]string{}
	snap := readN(t, sp, 25, 30*time.Second)
	for _, ch := range snap {
		if ch.Op != "r" || ch.Before != nil || ch.Source.Connector != "mysql" || ch.Source.File == "" || !ch.Source.Snapshot {
			t.Fatalf("snapshot row %s", ch.raw)
		}
	}
	apply(t, img, snap)
	sameImage(t, img, tableImage(t, c, name))

	// Several changes in one transaction, then single statements.
	mustExec(t, c, "BEGIN")
	mustExec(t, c, "INSERT INTO "+name+" (id, customer, amount, qty, status, tags, ts) VALUES (100, 'x', 9.99, 1, 'paid', '', '2026-01-01 00:00:00')")
	mustExec(t, c, "UPDATE "+name+" SET amount = amount + 1, status = 'shipped', f = 3.25 WHERE id <= 5")
	mustExec(t, c, "DELETE FROM "+name+" WHERE id IN (6, 7)")
	mustExec(t, c, "COMMIT")
	mustExec(t, c, "UPDATE "+name+" SET id = 200 WHERE id = 8") // key change: d + c
	mustExec(t, c, "UPDATE "+name+" SET note = NULL, payload = NULL WHERE id = 9")
	got := readN(t, sp, 1+5+2+2+1, 30*time.Second)
	ops := ""
	for _, ch := range got {
		ops += ch.Op
	}
	// The key change is a delete of the old key and a create of the new.
	if ops != "cuuuuudd"+"dc"+"u" {
		t.Fatalf("ops %s", ops)
	}
	t.Logf("snapshot row: %s\nchange: %s", snap[0].raw, got[1].raw)
	g := got[0].Source.GTID
	if g == nil || *g == "" {
		t.Errorf("no gtid in %s", got[0].raw)
	}
	for _, ch := range got[:8] {
		if ch.Source.GTID == nil || *ch.Source.GTID != *g {
			t.Errorf("one transaction, several gtids: %s", ch.raw)
		}
	}
	apply(t, img, got)
	sameImage(t, img, tableImage(t, c, name))
	expectQuiet(t, sp)
}
