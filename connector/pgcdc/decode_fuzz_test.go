package pgcdc

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
)

// pgoutput message builders (protocol version 1), for seeds and tests.

func cstr(b []byte, s string) []byte { return append(append(b, s...), 0) }

func u16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func u32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func u64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

type relCol struct {
	key  bool
	name string
	oid  uint32
}

func relationMsg(id uint32, schema, table string, cols ...relCol) []byte {
	b := u32([]byte{'R'}, id)
	b = cstr(cstr(b, schema), table)
	b = append(b, 'd')
	b = u16(b, uint16(len(cols)))
	for _, c := range cols {
		flag := byte(0)
		if c.key {
			flag = 1
		}
		b = append(b, flag)
		b = cstr(b, c.name)
		b = u32(u32(b, c.oid), 0xffffffff)
	}
	return b
}

func beginMsg(final uint64, xid uint32) []byte {
	return u32(u64(u64([]byte{'B'}, final), 1_000_000), xid)
}

func commitMsg(lsn, end uint64) []byte {
	return u64(u64(u64([]byte{'C', 0}, lsn), end), 1_000_000)
}

// tuple: nil is null, "\x00u" an unchanged TOASTed value.
func tuple(b []byte, vals ...*string) []byte {
	b = u16(b, uint16(len(vals)))
	for _, v := range vals {
		switch {
		case v == nil:
			b = append(b, 'n')
		case *v == "\x00u":
			b = append(b, 'u')
		default:
			b = append(b, 't')
			b = u32(b, uint32(len(*v)))
			b = append(b, *v...)
		}
	}
	return b
}

func sp(s string) *string { return &s }

func insertMsg(rel uint32, vals ...*string) []byte {
	return tuple(append(u32([]byte{'I'}, rel), 'N'), vals...)
}

func updateMsg(rel uint32, oldKind byte, old []*string, vals ...*string) []byte {
	b := u32([]byte{'U'}, rel)
	if oldKind != 0 {
		b = tuple(append(b, oldKind), old...)
	}
	return tuple(append(b, 'N'), vals...)
}

func deleteMsg(rel uint32, kind byte, old ...*string) []byte {
	return tuple(append(u32([]byte{'D'}, rel), kind), old...)
}

// fuzzReader is a reader with no connection, for decoding.
func fuzzReader() *reader {
	cfg := &Config{Slot: "s", Publication: "p", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	src := &Source{cfg: *cfg}
	s := &split{src: src, cfg: cfg, tables: []tableName{{"public", "t"}}, names: []string{"public.t"}, db: "test"}
	return newReader(s, &position{V: positionV, Phase: phaseStream, Tables: s.names, LSN: 1})
}

// FuzzDecode feeds arbitrary bytes as the pgoutput message after a
// Relation and a Begin: decoding must fail cleanly or produce records
// that are JSON with a JSON key.
func FuzzDecode(f *testing.F) {
	f.Add(insertMsg(1, sp("1"), sp("a"), sp("t"), sp("{\"x\":1}")))
	f.Add(insertMsg(1, sp("1"), nil, sp("x"), sp("not json")))
	f.Add(updateMsg(1, 'O', []*string{sp("1"), sp("a"), sp("f"), nil}, sp("1"), sp("\x00u"), sp("t"), nil))
	f.Add(updateMsg(1, 'K', []*string{sp("2"), nil, nil, nil}, sp("3"), sp("b"), sp("t"), nil))
	f.Add(updateMsg(1, 0, nil, sp("3"), sp("b"), sp("t"), nil))
	f.Add(deleteMsg(1, 'K', sp("3"), nil, nil, nil))
	f.Add(relationMsg(1, "public", "t", relCol{true, "id", oidInt8}, relCol{false, "b", oidBytea}))
	f.Add(commitMsg(100, 120))
	f.Add([]byte{'T', 0, 0, 0, 1, 0, 0, 0, 0, 1})
	f.Add([]byte{'I', 0, 0, 0, 9, 'N', 0, 1, 't', 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := fuzzReader()
		rels := map[uint32]*relation{}
		var tx txState
		ctx := context.Background()
		for _, m := range [][]byte{
			relationMsg(1, "public", "t", relCol{true, "id", oidInt8}, relCol{false, "name", 25}, relCol{false, "ok", oidBool}, relCol{false, "doc", oidJSONB}),
			beginMsg(100, 7),
		} {
			if _, err := r.decode(ctx, m, rels, &tx); err != nil {
				t.Fatal(err)
			}
		}
		items, err := r.decode(ctx, data, rels, &tx)
		if err != nil {
			return
		}
		for _, it := range items {
			if it.posOnly {
				continue
			}
			if !json.Valid(it.msg.Value) || !json.Valid(it.msg.Key) {
				t.Fatalf("not JSON: key %q value %q", it.msg.Key, it.msg.Value)
			}
		}
	})
}

// FuzzAppendValue: every value of every type maps to valid JSON.
func FuzzAppendValue(f *testing.F) {
	for _, s := range []struct {
		oid  uint32
		text string
	}{{oidBool, "t"}, {oidInt4, "-12"}, {oidInt8, "007"}, {oidFloat8, "NaN"}, {oidNumeric, "1.50"}, {oidNumeric, "1e+20"},
		{oidJSON, `{"a":[1,2]}`}, {oidBytea, `\x00ff`}, {oidTimestampTZ, "2026-12-06 13:05:59.123+00"}, {oidTimestamp, "2026-12-06 13:05:59"},
		{oidDate, "2026-12-06"}, {25, "a\"b\\c\n\x01\xff"}} {
		f.Add(s.oid, []byte(s.text))
	}
	f.Fuzz(func(t *testing.T, oid uint32, text []byte) {
		b := appendValue(nil, oid, text)
		if !json.Valid(b) {
			t.Fatalf("oid %d %q -> %q is not JSON", oid, text, b)
		}
	})
}

// TestDecodeToast: an unchanged TOASTed column is taken from a full old
// image, and left out without one, and left out too when the old image is
// only the key (pgoutput sends its other columns as nulls), here with a
// key change: the insert of the new key must not say the column is null.
func TestDecodeToast(t *testing.T) {
	r := fuzzReader()
	rels := map[uint32]*relation{}
	var tx txState
	ctx := context.Background()
	var got []string
	for _, m := range [][]byte{
		relationMsg(1, "public", "t", relCol{true, "id", oidInt8}, relCol{false, "big", 25}),
		beginMsg(100, 7),
		updateMsg(1, 'O', []*string{sp("1"), sp("large")}, sp("1"), sp("\x00u")),
		updateMsg(1, 0, nil, sp("1"), sp("\x00u")),
		updateMsg(1, 'K', []*string{sp("1"), nil}, sp("2"), sp("\x00u")),
		commitMsg(100, 120),
	} {
		items, err := r.decode(ctx, m, rels, &tx)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if !it.posOnly {
				var e struct{ After map[string]any }
				if err := json.Unmarshal(it.msg.Value, &e); err != nil {
					t.Fatal(err)
				}
				b, _ := json.Marshal(e.After)
				got = append(got, string(b))
			}
		}
	}
	// The key change is a delete (no after image: null) then an insert.
	if len(got) != 4 || got[0] != `{"big":"large","id":1}` || got[1] != `{"id":1}` || got[2] != `null` || got[3] != `{"id":2}` {
		t.Fatalf("after images %q", got)
	}
}

// TestTimestampMapping: timestamps in RFC 3339 form where PostgreSQL's
// ISO output has one; the others (infinities, BC, years past 9999) as
// PostgreSQL printed them, never half converted.
func TestTimestampMapping(t *testing.T) {
	for _, c := range []struct {
		oid        uint32
		text, want string
	}{
		{oidTimestampTZ, "2026-12-06 13:05:59.123456+00", `"2026-12-06T13:05:59.123456Z"`},
		{oidTimestamp, "2026-12-06 13:05:59", `"2026-12-06T13:05:59"`},
		{oidTimestampTZ, "infinity", `"infinity"`},
		{oidTimestamp, "-infinity", `"-infinity"`},
		{oidTimestamp, "0044-03-15 12:00:00 BC", `"0044-03-15 12:00:00 BC"`},
		{oidTimestampTZ, "0044-03-15 12:00:00+00 BC", `"0044-03-15 12:00:00+00 BC"`},
		{oidTimestampTZ, "294276-12-31 23:59:59.999999+00", `"294276-12-31 23:59:59.999999+00"`},
	} {
		if got := string(appendValue(nil, c.oid, []byte(c.text))); got != c.want {
			t.Errorf("oid %d %q -> %s, want %s", c.oid, c.text, got, c.want)
		}
	}
}
