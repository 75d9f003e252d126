package mysqlcdc

import (
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"
)

// TestTypeChangeReplayedFromBefore: a column's type changed (ENUM labels
// inserted before the old ones, INT made BIGINT) while the binlog
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

// TestTableMapCacheKeyedByTable: a table id names another table after a
// server restart (ids start again; the binlog read across the restart has
// both): the schema kept for the id is not reused for the other table.
func TestTableMapCacheKeyedByTable(t *testing.T) {
	a := &table{db: "d", name: "a", cols: []column{{name: "id", kind: kInt}}, pk: []int{0}}
	b := &table{db: "d", name: "b", cols: []column{{name: "id", kind: kInt}, {name: "v", kind: kString}}, pk: []int{0}}
	s := &split{tables: map[string]*table{"d.a": a, "d.b": b}}
	r := &binlogReader{maps: map[uint64]*table{}}
	mapEvent := func(name string, cols int) *replication.TableMapEvent {
		return &replication.TableMapEvent{TableID: 18, Schema: []byte("d"), Table: []byte(name), ColumnCount: uint64(cols)}
	}
	if err := r.tableMap(s, mapEvent("a", 1)); err != nil || r.maps[18] != a {
		t.Fatalf("table map of d.a: %v, schema %v", err, r.maps[18])
	}
	if err := r.tableMap(s, mapEvent("b", 2)); err != nil || r.maps[18] != b {
		t.Fatalf("table map of d.b with d.a's old id: %v, schema of %s", err, r.maps[18].name)
	}
}
