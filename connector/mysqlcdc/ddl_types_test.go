package mysqlcdc

import (
	"testing"
	"time"
)

// TestTypeChangeReplayedFromBefore: a column's type changed (ENUM labels
// inserted before the old ones, INT made BIGINT UNSIGNED) while the binlog
// is replayed from before the change: the changes logged before it carry
// the old type's values (an ENUM's label number, a signed INT) and must
// be read with the old type, which the table map says, not today's
// (and binary columns, BLOB and BINARY(n), read from the table map stay
// bytes: base64, n bytes).
func TestTypeChangeReplayedFromBefore(t *testing.T) {
	lt := openLive(t, "ddltype", "id INT PRIMARY KEY, e ENUM('a','b'), n INT, bl BLOB, bn BINARY(3), g GEOMETRY")
	c, name, cfg, sp := lt.c, lt.name, lt.cfg, lt.sp
	start := sp.Position()
	mustExec(t, c, "INSERT INTO "+name+" VALUES (1, 'b', -1, X'00ff10', X'01', NULL)")
	mustExec(t, c, "ALTER TABLE "+name+" MODIFY e ENUM('x','a','b'), MODIFY n BIGINT")
	mustExec(t, c, "INSERT INTO "+name+" VALUES (2, 'b', -2, X'00ff10', X'01', NULL)")
	check := func(got []change) {
		t.Helper()
		for i, want := range []string{`{"bl":"AP8Q","bn":"AQAA","e":"b","g":null,"id":1,"n":-1}`, `{"bl":"AP8Q","bn":"AQAA","e":"b","g":null,"id":2,"n":-2}`} {
			if g := canon(got[i].After); g != want {
				t.Errorf("change %d: after %s, want %s", i, g, want)
			}
		}
	}
	check(readN(t, sp, 2, 30*time.Second))
	// Replayed from before the DDL, with today's schema live.
	_, sp2 := openSplit(t, cfg, start)
	check(readN(t, sp2, 2, 30*time.Second))
}
