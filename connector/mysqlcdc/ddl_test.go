package mysqlcdc

import (
	"encoding/json"
	"testing"
	"time"
)

// TestSchemaChangesMidStream: ADD COLUMN and DROP COLUMN between changes;
// each change carries the columns of its time, also when the binlog is
// replayed from before the changes (schemas from the table maps).
func TestSchemaChangesMidStream(t *testing.T) {
	lt := openLive(t, "ddl", "id INT PRIMARY KEY, a INT, b VARCHAR(10)")
	c, name, cfg, sp := lt.c, lt.name, lt.cfg, lt.sp
	start := sp.Position()
	mustExec(t, c, "INSERT INTO "+name+" VALUES (1, 10, 'x')")
	mustExec(t, c, "ALTER TABLE "+name+" ADD COLUMN c DECIMAL(5,1) DEFAULT 1.5")
	mustExec(t, c, "INSERT INTO "+name+" VALUES (2, 20, 'y', 2.5)")
	mustExec(t, c, "UPDATE "+name+" SET c = 9.5 WHERE id = 1")
	mustExec(t, c, "ALTER TABLE "+name+" DROP COLUMN b")
	mustExec(t, c, "INSERT INTO "+name+" VALUES (3, 30, 3.5)")
	mustExec(t, c, "DELETE FROM "+name+" WHERE id = 2")
	want := []struct {
		op   string
		cols string // the columns of the row image
	}{{"c", "a,id,b"}, {"c", "a,b,c,id"}, {"u", "a,b,c,id"}, {"c", "a,c,id"}, {"d", "a,c,id"}}
	check := func(got []change) {
		t.Helper()
		for i, w := range want {
			img := got[i].After
			if img == nil {
				img = got[i].Before
			}
			if got[i].Op != w.op || cols(img) != sortCols(w.cols) {
				t.Errorf("change %d: %s with columns %s, want %s with %s: %s", i, got[i].Op, cols(img), w.op, sortCols(w.cols), got[i].raw)
			}
		}
		// ADD COLUMN gave row 1 the default without a change event.
		if b, a := canon(got[2].Before), canon(got[2].After); b != `{"a":10,"b":"x","c":"1.5","id":1}` || a != `{"a":10,"b":"x","c":"9.5","id":1}` {
			t.Errorf("update of row 1: before %s after %s", b, a)
		}
	}
	check(readN(t, sp, len(want), 30*time.Second))
	// Replayed from before the DDL, with today's schema live.
	_, sp2 := openSplit(t, cfg, start)
	check(readN(t, sp2, len(want), 30*time.Second))
	expectQuiet(t, sp2)
}

func cols(m map[string]json.RawMessage) string {
	s := ""
	for _, k := range sortedKeys(m) {
		if s != "" {
			s += ","
		}
		s += k
	}
	return s
}

func sortCols(s string) string {
	m := map[string]json.RawMessage{}
	for _, k := range splitComma(s) {
		m[k] = nil
	}
	return cols(m)
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

func sortedKeys(m map[string]json.RawMessage) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
