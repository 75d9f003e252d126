package mysqlcdc

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func validUTF8(s string) bool { return utf8.ValidString(s) }

func TestParseLabels(t *testing.T) {
	got, err := parseLabels("enum('new','it''s','a,b','')")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"new", "it's", "a,b", ""}
	if len(got) != len(want) {
		t.Fatalf("%q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%q, want %q", got, want)
		}
	}
	if _, err := parseLabels("enum(new)"); err == nil {
		t.Fatal("unquoted label accepted")
	}
}

func TestCompareKeyAndLiterals(t *testing.T) {
	tb := &table{db: "d", name: "t", cols: []column{
		{name: "n", kind: kInt, bits: 32}, {name: "dec", kind: kDecimal}, {name: "e", kind: kEnum, labels: []string{"z", "a"}},
		{name: "b", kind: kBytes}, {name: "s", kind: kString, collation: "utf8mb4_bin"}, {name: "ts", kind: kTemporal},
	}, pk: []int{0, 1, 2, 3, 4, 5}}
	key := func(s string) []json.RawMessage {
		var k []json.RawMessage
		if err := json.Unmarshal([]byte(s), &k); err != nil {
			t.Fatal(err)
		}
		return k
	}
	noServer := func(*column, string, string) (int, error) { t.Fatal("server asked"); return 0, nil }
	for _, c := range []struct {
		a, b string
		want int
	}{
		{`[9,"1.5","z","AA==","a","2026-01-01 00:00:00"]`, `[10,"1.5","z","AA==","a","2026-01-01 00:00:00"]`, -1},
		{`[10,"10.0","z","AA==","a","x"]`, `[10,"9.99","z","AA==","a","x"]`, 1},
		{`[10,"1","a","AA==","a","x"]`, `[10,"1.0","z","AA==","a","x"]`, 1}, // ENUM orders by index
		{`[10,"1","z","AP8=","a","x"]`, `[10,"1","z","AQ==","a","x"]`, -1},
		{`[10,"1","z","AA==","b","x"]`, `[10,"1","z","AA==","b ","x"]`, 0}, // PAD SPACE
		{`[-1,"-2","z","AA==","a","x"]`, `[-1,"-2","z","AA==","a","x"]`, 0},
	} {
		got, err := compareKey(tb, key(c.a), key(c.b), noServer)
		if err != nil || got != c.want {
			t.Errorf("compare %s %s = %d, %v; want %d", c.a, c.b, got, err, c.want)
		}
	}
	q, err := chunkQuery(tb, key(`[1,"2.50","a","AP8=","it's \\ x","2026-01-01"]`), 10)
	if err != nil {
		t.Fatal(err)
	}
	want := "SELECT `n`, `dec`, `e`, `b`, `s`, `ts` FROM `d`.`t` WHERE (`n`, `dec`, `e`, `b`, `s`, `ts`) > (1, 2.50, 2, X'00ff', 'it''s \\\\ x', '2026-01-01') ORDER BY `n`, `dec`, `e`, `b`, `s`, `ts` LIMIT 10"
	if q != want {
		t.Errorf("chunk query\n%s\nwant\n%s", q, want)
	}
	if _, err := chunkQuery(tb, key(`["1; DROP TABLE x","2","a","AA==","s","t"]`), 10); err == nil {
		t.Error("a non-number accepted as an INT literal")
	}
}

// TestCompareTimeKeys: TIME keys in time order, as the server orders
// them (negative values, hundreds of hours, fractions), not text order.
func TestCompareTimeKeys(t *testing.T) {
	tb := &table{db: "d", name: "t", cols: []column{{name: "t", kind: kTemporal}}, pk: []int{0}}
	ordered := []string{"-838:59:59", "-02:00:00", "-01:00:00.5", "-01:00:00", "-00:00:00.000001", "00:00:00", "00:00:00.5", "09:00:00", "12:00:00", "100:00:00", "838:59:59"}
	for i, a := range ordered {
		for j, b := range ordered {
			ka, _ := json.Marshal([]string{a})
			kb, _ := json.Marshal([]string{b})
			var x, y []json.RawMessage
			_ = json.Unmarshal(ka, &x)
			_ = json.Unmarshal(kb, &y)
			got, err := compareKey(tb, x, y, nil)
			if want := cmpInt(int64(i), int64(j)); err != nil || got != want {
				t.Errorf("compare %s %s = %d, %v; want %d", a, b, got, err, want)
			}
		}
	}
	// Dates and datetimes keep their text order.
	for _, d := range []string{"2026-01-01", "2026-01-01 00:00:00", "0000-00-00"} {
		if _, ok := timeMicros(d); ok {
			t.Errorf("%s taken for a TIME", d)
		}
	}
}

// TestCompareNoPadKeys: under a NO PAD binary collation a trailing space
// orders after the string without it; under PAD SPACE both are equal.
func TestCompareNoPadKeys(t *testing.T) {
	for _, c := range []struct {
		collation string
		want      int
	}{{"utf8mb4_bin", 0}, {"utf8mb4_nopad_bin", -1}, {"utf8mb4_0900_bin", -1}} {
		col := column{name: "s", kind: kString, collation: c.collation}
		if got, err := compareValue(&col, json.RawMessage(`"b"`), json.RawMessage(`"b "`), nil); err != nil || got != c.want {
			t.Errorf("%s: compare b, \"b \" = %d, %v; want %d", c.collation, got, err, c.want)
		}
	}
}

func TestBinlogPosCompare(t *testing.T) {
	a, b := binlogPos{"mysql-bin.000009", 500}, binlogPos{"mysql-bin.000010", 4}
	if a.compare(b) >= 0 || b.compare(a) <= 0 || a.compare(a) != 0 || a.compare(binlogPos{"mysql-bin.000009", 501}) >= 0 {
		t.Fatal("binlog positions misordered")
	}
}

// TestBinlogFilters: a database the server's binlog filters leave out is
// told apart from one they log.
func TestBinlogFilters(t *testing.T) {
	for _, c := range []struct {
		db, do, ignore string
		want           bool
	}{
		{"shop", "", "", true},
		{"shop", "shop,crm", "", true},
		{"shop", "crm", "", false},
		{"shop", "", "mysql,shop", false},
		{"shop", "", "shopping", true},
		{"shop", "shop", "shop", true}, // do wins
	} {
		if got := logged(c.db, c.do, c.ignore); got != c.want {
			t.Errorf("logged(%q, do %q, ignore %q) = %v, want %v", c.db, c.do, c.ignore, got, c.want)
		}
	}
}
