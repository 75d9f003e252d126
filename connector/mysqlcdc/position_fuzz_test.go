package mysqlcdc

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzDecodePosition: a checkpointed position (bytes from a checkpoint
// file) either decodes into one that re-encodes to an equal position or
// is refused with an error; never a panic.
func FuzzDecodePosition(f *testing.F) {
	seeds := []position{
		{V: 1, Resume: binlogPos{"mysql-bin.000003", 4}},
		{V: 1, Resume: binlogPos{"mysql-bin.000003", 30235}, GTID: "0-1-58", Skip: 20000},
		{V: 1, Resume: binlogPos{"mysql-bin.000003", 4}, GTID: "0-1-5,1-2-7", Snapshot: []tableProgress{{Table: "test.orders", Last: []json.RawMessage{json.RawMessage(`42`)}}, {Table: "test.users", Done: true}},
			Segments: map[string][]segment{"test.orders": {{At: binlogPos{"mysql-bin.000003", 4}}, {From: []json.RawMessage{json.RawMessage(`"k\u00e9"`), json.RawMessage(`7`)}, At: binlogPos{"mysql-bin.000004", 99}}}}},
	}
	for _, s := range seeds {
		f.Add(s.encode())
	}
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":1,"resume":{"file":"x","pos":1},"segments":{"a.b":[{"from":[{}],"at":{"file":"f","pos":1}}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePosition(b)
		if err != nil {
			return
		}
		q, err := decodePosition(p.encode())
		if err != nil {
			t.Fatalf("re-decoding %s: %v", p.encode(), err)
		}
		if !bytes.Equal(p.encode(), q.encode()) {
			t.Fatalf("not stable: %s vs %s", p.encode(), q.encode())
		}
	})
}

// FuzzAppendString: any bytes render as a valid JSON string that decodes
// to the input when it is valid UTF-8.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\ nl\n tab\t \x00 \x1f", "é 漢字 🙂", "\xff\xfe bad"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		var out string
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%q rendered %s: %v", s, b, err)
		}
		if validUTF8(s) && out != s {
			t.Fatalf("%q came back as %q", s, out)
		}
	})
}
