package pgcdc

import (
	"testing"
	"time"
)

// TestInheritanceChildNotHalfCaptured: pgoutput reports the changes of
// an inheritance child under the child's own name, so a captured parent's
// records are its own rows only; its snapshot must not read the child's
// rows either (they would arrive as "r" and never change after).
func TestInheritanceChildNotHalfCaptured(t *testing.T) {
	f := newFixture(t, `CREATE TABLE %s (id int PRIMARY KEY, v int)`)
	child := f.table + "_child"
	f.exec("CREATE TABLE " + child + " (PRIMARY KEY (id)) INHERITS (" + f.table + ")")
	t.Cleanup(func() { _, _ = f.db.Exec(t.Context(), "DROP TABLE IF EXISTS "+child) })
	f.exec("INSERT INTO " + f.table + " VALUES (1, 1)")
	f.exec("INSERT INTO " + child + " VALUES (2, 2)")
	s := openSplit(t, f.config(), nil)
	got := s.readN(1)
	f.exec("INSERT INTO " + child + " VALUES (4, 4)")
	f.exec("INSERT INTO " + f.table + " VALUES (3, 3)")
	got = append(got, s.readN(1)...)
	if string(got[0].Key) != `{"id":1}` || got[0].Op != "r" || string(got[1].Key) != `{"id":3}` || got[1].Op != "c" {
		t.Fatalf("records %s %s, %s %s: want the parent's own rows, r of 1 then c of 3", got[0].Op, got[0].Key, got[1].Op, got[1].Key)
	}
	s.quiet(200 * time.Millisecond)
}
