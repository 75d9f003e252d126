package mysqlcdc

import (
	"testing"
	"time"
)

// TestReconnectsAfterConnectionLoss: the server ends the binlog
// connection mid-transaction-stream; the split logs, reconnects with
// backoff at its position and loses or doubles nothing.
func TestReconnectsAfterConnectionLoss(t *testing.T) {
	lt := openLive(t, "reconnect", "id INT PRIMARY KEY, v INT")
	c, name, sp, src := lt.c, lt.name, lt.sp, lt.src
	mustExec(t, c, "BEGIN")
	for i := range 40 {
		mustExec(t, c, "INSERT INTO "+name+" VALUES (?, 0)", i)
	}
	mustExec(t, c, "COMMIT")
	got := readN(t, sp, 15, 30*time.Second) // mid-transaction
	// End every binlog dump connection (only these tests use them).
	r, err := c.Execute("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")
	if err != nil {
		t.Fatal(err)
	}
	if r.RowNumber() == 0 {
		t.Fatal("no binlog dump connection on the server")
	}
	for i := range r.RowNumber() {
		id, _ := r.GetInt(i, 0)
		_, _ = c.Execute("KILL ?", id)
	}
	mustExec(t, c, "UPDATE "+name+" SET v = 1 WHERE id < 5")
	got = append(got, readN(t, sp, 40-15+5, 60*time.Second)...)
	expectQuiet(t, sp)
	lt.replaysToTable(t, got)
	m := src.Meter()
	if errs, recs, recon := m.Errors.Load(), m.Records.Load(), m.Reconnects.Load(); errs == 0 || recon == 0 || recs != int64(len(got)) {
		t.Errorf("meter: errors %d, reconnects %d, records %d: want errors > 0, reconnects > 0 and %d records", errs, recon, recs, len(got))
	}
	if m.Lag.Load() != -1 {
		t.Errorf("meter lag %d: want -1 (the binlog has no message count)", m.Lag.Load())
	}
}
