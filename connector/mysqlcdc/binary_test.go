package mysqlcdc

import (
	"testing"
	"time"
)

// A BINARY(n) value whose last bytes are zeros: the binlog leaves them
// out, a SELECT does not. A row read by the snapshot and the same row in
// a later change must have one key and one image, or a consumer keyed by
// the message key keeps two rows for it.
func TestBinaryTrailingZerosSameInSnapshotAndBinlog(t *testing.T) {
	c := server(t)
	name := newTable(t, c, "binpad", "id BINARY(4) PRIMARY KEY, b BINARY(3), n INT")
	mustExec(t, c, "INSERT INTO "+name+" VALUES (X'61', X'0100', 1)")
	_, sp := openSplit(t, testConfig(name), nil)
	snap := readN(t, sp, 1, 30*time.Second)
	mustExec(t, c, "UPDATE "+name+" SET n = 2 WHERE n = 1")
	got := readN(t, sp, 1, 30*time.Second)
	if got[0].Op != "u" {
		t.Fatalf("change %s", got[0].raw)
	}
	if snap[0].key != got[0].key {
		t.Errorf("one row, two keys: snapshot %s, change %s", snap[0].key, got[0].key)
	}
	for _, col := range []string{"id", "b"} {
		if s, b, a := string(snap[0].After[col]), string(got[0].Before[col]), string(got[0].After[col]); s != b || s != a {
			t.Errorf("column %s: snapshot %s, before %s, after %s", col, s, b, a)
		}
	}
	if want := `"YQAAAA=="`; string(got[0].After["id"]) != want {
		t.Errorf("id %s, want %s (61 00 00 00)", got[0].After["id"], want)
	}
}

func TestStringLength(t *testing.T) {
	for _, tc := range []struct {
		meta uint16
		want int
	}{
		{0xfe04, 4},   // BINARY(4)
		{0xfeff, 255}, // BINARY(255)
		{0xee2c, 300}, // CHAR of 300 bytes: 0x12c, bit 8 folded into the type
	} {
		if got := stringLength(tc.meta); got != tc.want {
			t.Errorf("stringLength(%#x) = %d, want %d", tc.meta, got, tc.want)
		}
	}
}

// TestSessionSetupUndoesCharPadding: under a server default sql_mode with
// PAD_CHAR_TO_FULL_LENGTH a SELECT pads CHAR values with spaces, which
// the binlog does not have; the source's session setup takes it out, so
// a snapshot row reads 'ab', as a change of it does.
func TestSessionSetupUndoesCharPadding(t *testing.T) {
	c := server(t)
	name := newTable(t, c, "charpad", "id CHAR(4) PRIMARY KEY")
	mustExec(t, c, "INSERT INTO "+name+" VALUES ('ab')")
	mustExec(t, c, "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',PAD_CHAR_TO_FULL_LENGTH,NO_BACKSLASH_ESCAPES')")
	t.Cleanup(func() { _, _ = c.Execute("SET SESSION sql_mode = DEFAULT") })
	for _, q := range sessionSetup {
		mustExec(t, c, q)
	}
	r, err := c.Execute("SELECT id FROM " + name)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := r.GetString(0, 0); v != "ab" {
		t.Fatalf("CHAR(4) 'ab' read as %q after the session setup", v)
	}
}
