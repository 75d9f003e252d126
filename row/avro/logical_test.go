package avro

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/avrolimit"
	"github.com/sluicehq/sluice/row"
)

// logical112 holds the logical types Avro 1.12 added: uuid on a fixed of
// 16 bytes and the nanosecond timestamps, next to the local timestamps.
const logical112 = `{"type":"record","name":"R","fields":[
	{"name":"id","type":{"type":"fixed","name":"U","size":16,"logicalType":"uuid"}},
	{"name":"ns","type":{"type":"long","logicalType":"timestamp-nanos"}},
	{"name":"lns","type":{"type":"long","logicalType":"local-timestamp-nanos"}},
	{"name":"lms","type":{"type":"long","logicalType":"local-timestamp-millis"}},
	{"name":"lus","type":{"type":"long","logicalType":"local-timestamp-micros"}},
	{"name":"opt","type":["null",{"type":"long","logicalType":"timestamp-nanos"}],"default":null}]}`

// TestLogicalTypes112Decode: the values are read by the spec: a uuid
// fixed holds the 16 bytes of the UUID in network order and reads as its
// canonical text; nanosecond timestamps count nanoseconds from the epoch
// and read as timestamps (milliseconds, rounded down).
func TestLogicalTypes112Decode(t *testing.T) {
	s := MustParse(logical112)
	uuid := []byte{0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0x00}
	var bin []byte
	bin = append(bin, uuid...)
	bin = appendLong(bin, 1_700_000_000_123_456_789)
	bin = appendLong(bin, -1) // one nanosecond before the epoch
	bin = appendLong(bin, 1_700_000_000_123)
	bin = appendLong(bin, 1_700_000_000_123_456)
	bin = appendLong(bin, 1) // union branch: the timestamp
	bin = appendLong(bin, 5_000_000)
	for _, f := range []string{"id", "ns", "lns", "lms", "lus", "opt"} {
		sf, _ := s.Field(f)
		if k := sf.Kind; f == "id" && k != row.KindString || f != "id" && k != row.KindTimestamp {
			t.Errorf("field %s has kind %v", f, k)
		}
	}
	rs := untyped(t, names(s)...)
	p, err := Compile(s, nil, rs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var d Decoder
	r, err := d.Decode(p, bin)
	if err != nil {
		t.Fatal(err)
	}
	want := []row.Value{
		row.String("123e4567-e89b-12d3-a456-426614174000"),
		row.Timestamp(1_700_000_000_123),
		row.Timestamp(-1),
		row.Timestamp(1_700_000_000_123),
		row.Timestamp(1_700_000_000_123),
		row.Timestamp(5),
	}
	for i, w := range want {
		if r.Vals[i].Kind() != w.Kind() || !row.Equal(r.Vals[i], w) {
			t.Errorf("%s = %s %v, want %v", rs.Names()[i], r.Vals[i].Kind(), r.Vals[i], w)
		}
	}

	// The same fields written back give the same bytes, the nanoseconds
	// below a millisecond aside.
	enc, err := NewEncoder(s, rs)
	if err != nil {
		t.Fatal(err)
	}
	out, err := enc.Append(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	var back []byte
	back = append(back, uuid...)
	back = appendLong(back, 1_700_000_000_123_000_000)
	back = appendLong(back, -1_000_000)
	back = appendLong(back, 1_700_000_000_123)
	back = appendLong(back, 1_700_000_000_123_000)
	back = appendLong(back, 1)
	back = appendLong(back, 5_000_000)
	if string(out) != string(back) {
		t.Errorf("encoded\n% x\nwant\n% x", out, back)
	}
}

// TestLogicalTypes112EncodeErrors: values a uuid fixed or a nanosecond
// timestamp cannot hold are refused, naming the field.
func TestLogicalTypes112EncodeErrors(t *testing.T) {
	s := MustParse(`{"type":"record","name":"R","fields":[
		{"name":"id","type":{"type":"fixed","name":"U","size":16,"logicalType":"uuid"}},
		{"name":"ns","type":{"type":"long","logicalType":"timestamp-nanos"}}]}`)
	enc, err := NewEncoder(s, untyped(t, "id", "ns"))
	if err != nil {
		t.Fatal(err)
	}
	good := row.String("123E4567-E89B-12D3-A456-426614174000")
	for _, tc := range []struct {
		vals  []row.Value
		field string
	}{
		{[]row.Value{row.String("123e4567-e89b-12d3-a456-42661417400g"), row.Timestamp(0)}, "id"},
		{[]row.Value{row.String("123e4567e89b-12d3-a456-4266141740000"), row.Timestamp(0)}, "id"},
		{[]row.Value{row.String("short"), row.Timestamp(0)}, "id"},
		{[]row.Value{good, row.Timestamp(1 << 62)}, "ns"},
		{[]row.Value{good, row.Timestamp(-(1 << 62))}, "ns"},
	} {
		_, err := enc.Append(nil, row.Row{Vals: tc.vals})
		if !errors.Is(err, ErrEncode) || !strings.Contains(err.Error(), "field "+tc.field+":") {
			t.Errorf("%v: error %v, want one about field %s", tc.vals, err, tc.field)
		}
	}
	if _, err := enc.Append(nil, row.Row{Vals: []row.Value{good, row.Timestamp(0)}}); err != nil {
		t.Errorf("upper-case uuid: %v", err)
	}
}

// TestUUIDOnlyOnFixed16: a uuid annotation on a fixed of another size is
// not a uuid (the spec's rule for invalid logical types: the underlying
// type is used).
func TestUUIDOnlyOnFixed16(t *testing.T) {
	s := MustParse(`{"type":"record","name":"R","fields":[
		{"name":"id","type":{"type":"fixed","name":"U","size":4,"logicalType":"uuid"}}]}`)
	p, err := Compile(s, nil, untyped(t, "id"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var d Decoder
	r, err := d.Decode(p, []byte("abcd"))
	if err != nil || r.Vals[0] != row.String("abcd") {
		t.Errorf("got %v, %v", r.Vals, err)
	}
}

// TestParseBoundsDefaultWork: a schema whose field defaults would take
// hamba/avro exponential time to check (one from an Avro container
// file's header, or a registry) is refused before it is parsed; the same
// shape smaller parses.
func TestParseBoundsDefaultWork(t *testing.T) {
	text := `{"type":"record","name":"Top","fields":[{"name":"t","type":` + avrolimit.NestedDefaults(17, 2, true) + `}]}`
	if _, err := Parse(text); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "field defaults") {
		t.Errorf("got %v, want a schema error about the field defaults", err)
	}
	small := `{"type":"record","name":"Top","fields":[{"name":"t","type":` + avrolimit.NestedDefaults(5, 2, true) + `}]}`
	if _, err := Parse(small); err != nil {
		t.Error(err)
	}
}
