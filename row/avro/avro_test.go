package avro

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"

	"github.com/sluicehq/sluice/row"
)

// allTypes covers every Avro type and the logical types Sluice maps.
const allTypes = `{
  "type": "record", "name": "Order", "namespace": "shop",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "qty", "type": "int"},
    {"name": "paid", "type": "boolean"},
    {"name": "price", "type": "double"},
    {"name": "ratio", "type": "float"},
    {"name": "user", "type": "string"},
    {"name": "blob", "type": "bytes"},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID", "SHIPPED"]}},
    {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 4}},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "attrs", "type": {"type": "map", "values": "long"}},
    {"name": "address", "type": {"type": "record", "name": "Address", "fields": [
        {"name": "city", "type": "string"},
        {"name": "zip", "type": ["null", "string"], "default": null}]}},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "ts_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "fixed_amount", "type": {"type": "fixed", "name": "Dec8", "size": 8, "logicalType": "decimal", "precision": 18, "scale": 3}},
    {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}}
  ]}`

func allTypesNative() map[string]any {
	return map[string]any{
		"id":           int64(42),
		"qty":          int32(-3),
		"paid":         true,
		"price":        19.99,
		"ratio":        float32(0.5),
		"user":         "ada \"lovelace\"",
		"blob":         []byte{0, 1, 2, 0xff},
		"status":       "PAID",
		"hash":         []byte("abcd"),
		"tags":         []any{"a", "b"},
		"attrs":        map[string]any{"x": int64(1)},
		"address":      map[string]any{"city": "Paris", "zip": goavro.Union("string", "75001")},
		"note":         nil,
		"ts":           time.UnixMilli(1_700_000_000_123).UTC(),
		"ts_us":        time.UnixMicro(1_700_000_000_123_456).UTC(),
		"day":          time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC),
		"amount":       big.NewRat(-12345, 100),
		"fixed_amount": big.NewRat(1_000_001, 1000),
		"uid":          "123e4567-e89b-12d3-a456-426614174000",
	}
}

func names(s *Schema) []string {
	var out []string
	for _, f := range s.Fields() {
		out = append(out, f.Name)
	}
	return out
}

func untyped(t *testing.T, ns ...string) *row.Schema {
	t.Helper()
	rs, err := row.Untyped(ns...)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestDecodeAllTypesFromGoavro(t *testing.T) {
	codec, err := goavro.NewCodec(allTypes)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := codec.BinaryFromNative(nil, allTypesNative())
	if err != nil {
		t.Fatal(err)
	}
	s := MustParse(allTypes)
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
	want := map[string]row.Value{
		"id":           row.Int(42),
		"qty":          row.Int(-3),
		"paid":         row.Bool(true),
		"price":        row.Float(19.99),
		"ratio":        row.Float(0.5),
		"user":         row.String(`ada "lovelace"`),
		"blob":         row.String("\x00\x01\x02\xff"),
		"status":       row.String("PAID"),
		"hash":         row.String("abcd"),
		"tags":         row.JSON(`["a","b"]`),
		"attrs":        row.JSON(`{"x":1}`),
		"address":      row.JSON(`{"city":"Paris","zip":"75001"}`),
		"note":         row.Null(),
		"ts":           row.Timestamp(1_700_000_000_123),
		"ts_us":        row.Timestamp(1_700_000_000_123),
		"day":          row.Timestamp(time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC).UnixMilli()),
		"amount":       row.Float(-123.45),
		"fixed_amount": row.Float(1000.001),
		"uid":          row.String("123e4567-e89b-12d3-a456-426614174000"),
	}
	for i, n := range rs.Names() {
		got := r.Vals[i]
		if got.Kind() != want[n].Kind() || !row.Equal(got, want[n]) {
			t.Errorf("%s = %s %v, want %s %v", n, got.Kind(), got, want[n].Kind(), want[n])
		}
	}
	// The kinds the schema promises are the kinds decoded.
	for i, f := range s.Fields() {
		if k := r.Vals[i].Kind(); f.Kind != k && !(f.Nullable && k == row.KindNull) {
			t.Errorf("field %s: Fields says %s, decoded %s", f.Name, f.Kind, k)
		}
	}

	// Exact decimals on request.
	p2, err := Compile(s, nil, untyped(t, "amount", "fixed_amount"), Options{DecimalAsString: true})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := d.Decode(p2, bin)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Vals[0] != row.String("-123.45") || r2.Vals[1] != row.String("1000.001") {
		t.Errorf("decimal strings: %v", r2.Vals)
	}
}

// TestEncodeReadByGoavro: rows encoded by Encoder are what goavro reads,
// value for value, including what was decoded from goavro's bytes.
func TestEncodeReadByGoavro(t *testing.T) {
	codec, err := goavro.NewCodec(allTypes)
	if err != nil {
		t.Fatal(err)
	}
	native := allTypesNative()
	// Sluice's timestamps are milliseconds: whole ones survive.
	native["ts_us"] = time.UnixMilli(1_700_000_000_123).UTC()
	bin, err := codec.BinaryFromNative(nil, native)
	if err != nil {
		t.Fatal(err)
	}
	s := MustParse(allTypes)
	rs := untyped(t, names(s)...)
	p, err := Compile(s, nil, rs, Options{DecimalAsString: true})
	if err != nil {
		t.Fatal(err)
	}
	var d Decoder
	r, err := d.Decode(p, bin)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := NewEncoder(s, rs)
	if err != nil {
		t.Fatal(err)
	}
	out, err := enc.Append(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(bin) {
		t.Errorf("re-encoded bytes differ:\n got %x\nwant %x", out, bin)
	}
	back, rest, err := codec.NativeFromBinary(out)
	if err != nil || len(rest) != 0 {
		t.Fatalf("goavro: %v (%d bytes left)", err, len(rest))
	}
	m := back.(map[string]any)
	if m["amount"].(*big.Rat).Cmp(big.NewRat(-12345, 100)) != 0 {
		t.Errorf("amount: %v", m["amount"])
	}
	if !m["ts"].(time.Time).Equal(native["ts"].(time.Time)) {
		t.Errorf("ts: %v", m["ts"])
	}
	if !reflect.DeepEqual(m["address"], map[string]any{"city": "Paris", "zip": map[string]any{"string": "75001"}}) {
		t.Errorf("address: %#v", m["address"])
	}
}

func TestEncodeConversions(t *testing.T) {
	s := MustParse(`{"type":"record","name":"R","fields":[
		{"name":"n","type":["null","long","double","string"]},
		{"name":"d","type":"double"},
		{"name":"ts","type":{"type":"long","logicalType":"timestamp-micros"}},
		{"name":"day","type":{"type":"int","logicalType":"date"}},
		{"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
		{"name":"items","type":{"type":"array","items":{"type":"record","name":"Item","fields":[
			{"name":"sku","type":"string"},{"name":"qty","type":"int","default":1}]}}},
		{"name":"extra","type":"string","default":"x"}]}`)
	rs := untyped(t, "n", "d", "ts", "day", "price", "items")
	enc, err := NewEncoder(s, rs)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := goavro.NewCodec(s.Text())
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2024, 5, 6, 7, 8, 9, 10_000_000, time.UTC)
	r := row.Row{Vals: []row.Value{
		row.Float(2.5), row.Int(3), row.String(ts.Format(time.RFC3339Nano)), row.Timestamp(ts.UnixMilli()),
		row.Float(0.1), row.JSON(`[{"sku":"a","qty":2},{"sku":"b"}]`),
	}}
	bin, err := enc.Append(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := codec.NativeFromBinary(bin)
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	if !reflect.DeepEqual(m["n"], map[string]any{"double": 2.5}) {
		t.Errorf("n: %#v", m["n"])
	}
	if m["d"] != 3.0 || m["extra"] != "x" {
		t.Errorf("d, extra: %#v %#v", m["d"], m["extra"])
	}
	if !m["ts"].(time.Time).Equal(ts.Truncate(time.Millisecond)) {
		t.Errorf("ts: %v", m["ts"])
	}
	if !m["day"].(time.Time).Equal(time.Date(2024, 5, 6, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("day: %v", m["day"])
	}
	if m["price"].(*big.Rat).Cmp(big.NewRat(1, 10)) != 0 {
		t.Errorf("price: %v", m["price"])
	}
	want := []any{map[string]any{"sku": "a", "qty": int32(2)}, map[string]any{"sku": "b", "qty": int32(1)}}
	if !reflect.DeepEqual(m["items"], want) {
		t.Errorf("items: %#v", m["items"])
	}

	// Values the schema has no place for are errors naming the field.
	for _, tc := range []struct {
		vals  []row.Value
		field string
	}{
		{[]row.Value{row.Null(), row.Null()}, "d"},
		{[]row.Value{row.Null(), row.String("x")}, "d"},
		{[]row.Value{row.Null(), row.Int(1), row.Bool(true)}, "ts"},
		{[]row.Value{row.Null(), row.Int(1), row.Int(0), row.Int(0), row.String("1.2.3")}, "price"},
		{[]row.Value{row.Null(), row.Int(1), row.Int(0), row.Int(0), row.Int(1), row.JSON(`[{"qty":2}]`)}, "items"},
	} {
		_, err := enc.Append(nil, row.Row{Vals: tc.vals})
		if !errors.Is(err, ErrEncode) || !strings.Contains(err.Error(), "field "+tc.field+":") {
			t.Errorf("%v: error %v, want one about field %s", tc.vals, err, tc.field)
		}
	}
}

// TestResolution: a v1 writer read with a v2 reader, by Avro's rules.
func TestResolution(t *testing.T) {
	v1 := MustParse(`{"type":"record","name":"Order","fields":[
		{"name":"id","type":"int"},
		{"name":"legacy","type":{"type":"array","items":"string"}},
		{"name":"amount","type":"float"},
		{"name":"status","type":{"type":"enum","name":"S","symbols":["NEW","LOST","PAID"]}},
		{"name":"who","type":["null","string","int"]},
		{"name":"code","type":"bytes"},
		{"name":"tags","type":{"type":"map","values":"int"}}]}`)
	v2 := MustParse(`{"type":"record","name":"Order","fields":[
		{"name":"order_id","type":"long","aliases":["id"]},
		{"name":"amount","type":"double"},
		{"name":"status","type":{"type":"enum","name":"S","symbols":["NEW","PAID","UNKNOWN"],"default":"UNKNOWN"}},
		{"name":"who","type":["null","string"]},
		{"name":"code","type":"string"},
		{"name":"tags","type":{"type":"map","values":"double"}},
		{"name":"email","type":"string","default":"none"},
		{"name":"score","type":["null","double"],"default":null},
		{"name":"meta","type":{"type":"record","name":"Meta","fields":[{"name":"v","type":"int"}]},"default":{"v":7}}]}`)
	w, err := goavro.NewCodec(v1.Text())
	if err != nil {
		t.Fatal(err)
	}
	rs := untyped(t, "order_id", "amount", "status", "who", "code", "tags", "email", "score", "meta")
	p, err := Compile(v1, v2, rs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var d Decoder
	enc := func(m map[string]any) []byte {
		b, err := w.BinaryFromNative(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	base := func() map[string]any {
		return map[string]any{"id": int32(7), "legacy": []any{"x"}, "amount": float32(1.5), "status": "LOST",
			"who": goavro.Union("string", "bo"), "code": []byte("c1"), "tags": map[string]any{"a": int32(2)}}
	}
	r, err := d.Decode(p, enc(base()))
	if err != nil {
		t.Fatal(err)
	}
	want := []row.Value{row.Int(7), row.Float(1.5), row.String("UNKNOWN"), row.String("bo"), row.String("c1"),
		row.JSON(`{"a":2.0}`), row.String("none"), row.Null(), row.JSON(`{"v":7}`)}
	for i, wv := range want {
		if r.Vals[i].Kind() != wv.Kind() || !row.Equal(r.Vals[i], wv) {
			t.Errorf("%s = %v (%s), want %v (%s)", rs.Field(i).Name, r.Vals[i], r.Vals[i].Kind(), wv, wv.Kind())
		}
	}
	// A writer union branch the reader lacks fails that record only.
	m := base()
	m["who"] = goavro.Union("int", int32(3))
	if _, err := d.Decode(p, enc(m)); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "union branch 2") {
		t.Errorf("int branch: %v", err)
	}
	if _, err := d.Decode(p, enc(base())); err != nil {
		t.Errorf("after a bad record: %v", err)
	}

	// A reader field without a default that the writer lacks does not
	// resolve; nor does a type that cannot be promoted.
	v3 := MustParse(`{"type":"record","name":"Order","fields":[{"name":"email","type":"string"}]}`)
	if _, err := Compile(v1, v3, rs, Options{}); !errors.Is(err, ErrResolve) || !strings.Contains(err.Error(), "email") {
		t.Errorf("missing default: %v", err)
	}
	v4 := MustParse(`{"type":"record","name":"Order","fields":[{"name":"amount","type":"int"}]}`)
	if _, err := Compile(v1, v4, rs, Options{}); !errors.Is(err, ErrResolve) || !strings.Contains(err.Error(), "float cannot be read as int") {
		t.Errorf("demotion: %v", err)
	}
}

func TestKeepRest(t *testing.T) {
	s := MustParse(`{"type":"record","name":"R","fields":[
		{"name":"a","type":"long"},{"name":"b","type":"string"},
		{"name":"c","type":{"type":"array","items":"double"}},{"name":"d","type":["null","boolean"]}]}`)
	codec, _ := goavro.NewCodec(s.Text())
	bin, err := codec.BinaryFromNative(nil, map[string]any{"a": int64(1), "b": "x\n", "c": []any{1.5}, "d": goavro.Union("boolean", true)})
	if err != nil {
		t.Fatal(err)
	}
	reader := MustParse(`{"type":"record","name":"R","fields":[
		{"name":"a","type":"long"},{"name":"b","type":"string"},
		{"name":"c","type":{"type":"array","items":"double"}},{"name":"d","type":["null","boolean"]},
		{"name":"e","type":"int","default":5}]}`)
	p, err := Compile(s, reader, untyped(t, "b"), Options{KeepRest: true})
	if err != nil {
		t.Fatal(err)
	}
	var d Decoder
	r, err := d.Decode(p, bin)
	if err != nil {
		t.Fatal(err)
	}
	if r.Vals[0] != row.String("x\n") {
		t.Errorf("b = %v", r.Vals[0])
	}
	if got, want := string(r.Rest), `"a":1,"c":[1.5],"d":true,"e":5`; got != want {
		t.Errorf("rest = %s, want %s", got, want)
	}
	if js := string(row.NewJSONEncoder(untyped(t, "b")).Append(nil, r)); js != `{"b":"x\n","a":1,"c":[1.5],"d":true,"e":5}` {
		t.Errorf("json: %s", js)
	}
}

func TestBadBytes(t *testing.T) {
	s := MustParse(allTypes)
	codec, _ := goavro.NewCodec(allTypes)
	bin, err := codec.BinaryFromNative(nil, allTypesNative())
	if err != nil {
		t.Fatal(err)
	}
	rs := untyped(t, "id", "tags", "address", "uid")
	p, err := Compile(s, nil, rs, Options{KeepRest: true})
	if err != nil {
		t.Fatal(err)
	}
	var d Decoder
	for i := range len(bin) {
		if _, err := d.Decode(p, bin[:i]); !errors.Is(err, ErrData) {
			t.Fatalf("truncated to %d bytes: %v", i, err)
		}
	}
	if _, err := d.Decode(p, append(bin[:len(bin):len(bin)], 0)); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "1 bytes left") {
		t.Errorf("trailing byte: %v", err)
	}
	if _, err := d.Decode(p, bin); err != nil {
		t.Errorf("valid after invalid: %v", err)
	}
	// Huge counts and lengths are refused without allocating.
	arr := MustParse(`{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"array","items":"null"}}]}`)
	pa, _ := Compile(arr, nil, untyped(t, "a"), Options{})
	if _, err := d.Decode(pa, appendLong(nil, math.MaxInt64)); !errors.Is(err, ErrData) {
		t.Errorf("huge empty-item array: %v", err)
	}
	str := MustParse(`{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}`)
	ps, _ := Compile(str, nil, untyped(t, "a"), Options{})
	if _, err := d.Decode(ps, appendLong(nil, 1<<40)); !errors.Is(err, ErrData) {
		t.Errorf("huge string: %v", err)
	}
	if _, err := d.Decode(ps, appendLong(nil, -1)); !errors.Is(err, ErrData) {
		t.Errorf("negative length: %v", err)
	}
}

func TestRecursiveSchema(t *testing.T) {
	s := MustParse(`{"type":"record","name":"Node","fields":[
		{"name":"v","type":"long"},{"name":"next","type":["null","Node"],"default":null}]}`)
	codec, _ := goavro.NewCodec(s.Text())
	native := map[string]any{"v": int64(1), "next": goavro.Union("Node", map[string]any{"v": int64(2), "next": nil})}
	bin, err := codec.BinaryFromNative(nil, native)
	if err != nil {
		t.Fatal(err)
	}
	rs := untyped(t, "v", "next")
	p, err := Compile(s, nil, rs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var d Decoder
	r, err := d.Decode(p, bin)
	if err != nil {
		t.Fatal(err)
	}
	if r.Vals[1] != row.JSON(`{"v":2,"next":null}`) {
		t.Errorf("next = %v", r.Vals[1])
	}
	enc, _ := NewEncoder(s, rs)
	out, err := enc.Append(nil, r)
	if err != nil || string(out) != string(bin) {
		t.Errorf("re-encode: %x, %v; want %x", out, err, bin)
	}
	// A chain nested deeper than the limit is refused, not a stack overflow.
	var deep []byte
	for range maxDepth + 10 {
		deep = append(deep, 2, 2) // v=1, branch 1 (Node)
	}
	deep = append(deep, 2, 0)
	if _, err := d.Decode(p, deep); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "deeper") {
		t.Errorf("deep: %v", err)
	}
}

func TestHeader(t *testing.T) {
	b := AppendHeader(nil, 258)
	b = append(b, 'x')
	id, payload, err := SplitHeader(b)
	if err != nil || id != 258 || string(payload) != "x" {
		t.Errorf("SplitHeader = %d %q %v", id, payload, err)
	}
	if _, _, err := SplitHeader([]byte{1, 0, 0, 0, 1}); !errors.Is(err, ErrMagic) {
		t.Errorf("magic: %v", err)
	}
	if _, _, err := SplitHeader([]byte{0, 0}); !errors.Is(err, ErrShort) {
		t.Errorf("short: %v", err)
	}
}

func TestDerive(t *testing.T) {
	rs := row.MustSchema(row.Field{Name: "user"}, row.Field{Name: "n", Kind: row.KindInt},
		row.Field{Name: "avg", Kind: row.KindFloat}, row.Field{Name: "at", Kind: row.KindTimestamp},
		row.Field{Name: "ok", Kind: row.KindBool}, row.Field{Name: "doc", Kind: row.KindJSON})
	s, err := Derive(rs, "sluice.out.Revenue")
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "sluice.out.Revenue" {
		t.Errorf("name %s", s.Name())
	}
	enc, err := NewEncoder(s, rs)
	if err != nil {
		t.Fatal(err)
	}
	in := row.Row{Vals: []row.Value{row.String("u1"), row.Int(3), row.Float(1.5), row.Timestamp(1000), row.Null(), row.JSON(`{"a":1}`)}}
	bin, err := enc.Append(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(s, nil, untyped(t, rs.Names()...), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var d Decoder
	out, err := d.Decode(p, bin)
	if err != nil {
		t.Fatal(err)
	}
	want := []row.Value{row.String("u1"), row.Int(3), row.Float(1.5), row.Timestamp(1000), row.Null(), row.String(`{"a":1}`)}
	if !reflect.DeepEqual(out.Vals, want) {
		t.Errorf("round trip %v, want %v", out.Vals, want)
	}
	// goavro reads the derived schema and the bytes.
	codec, err := goavro.NewCodec(s.Text())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := codec.NativeFromBinary(bin); err != nil {
		t.Error(err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, text := range []string{`{`, `"string"`, `{"type":"record","name":"R","fields":[{"name":"a","type":"nope"}]}`,
		// A union of no types with a default (hamba/avro panics on it;
		// the Avro spec's default of a union is of its first type, which
		// this one lacks): an error, not a panic, for a container file's
		// header may hold it.
		`{"type":"record","name":"R","fields":[{"name":"a","type":[],"default":null}]}`} {
		if _, err := Parse(text); !errors.Is(err, ErrSchema) {
			t.Errorf("Parse(%s) = %v", text, err)
		}
	}
	// Two versions of one record name parse independently.
	a := MustParse(`{"type":"record","name":"X","fields":[{"name":"a","type":"int"}]}`)
	b := MustParse(`{"type":"record","name":"X","fields":[{"name":"b","type":"string"}]}`)
	if names(a)[0] != "a" || names(b)[0] != "b" {
		t.Errorf("shared name table: %v %v", names(a), names(b))
	}
}

// TestEmptyItemsBoundedPerRecord: items that take no bytes (Avro 1.12
// spec, "Binary Encoding": null is written as zero bytes) are the one
// thing a record's length does not bound, and an array may come in any
// number of blocks ("Complex Types", arrays). A few hundred bytes of
// blocks of nulls must not become millions of items, whether the field
// is decoded, kept in the rest, or skipped.
func TestEmptyItemsBoundedPerRecord(t *testing.T) {
	s := MustParse(`{"type":"record","name":"R","fields":[
		{"name":"a","type":{"type":"array","items":"null"}},
		{"name":"b","type":{"type":"array","items":{"type":"array","items":"null"}}}]}`)
	var many []byte // a: 64 blocks of maxEmptyItems nulls
	for range 64 {
		many = appendLong(many, maxEmptyItems)
	}
	many = append(many, 0)
	nested := appendLong(nil, 64) // b: 64 arrays of maxEmptyItems nulls
	for range 64 {
		nested = append(appendLong(nested, maxEmptyItems), 0)
	}
	nested = append(nested, 0)
	cases := map[string][]byte{
		"blocks": append(append([]byte{}, many...), 0),
		"nested": append([]byte{0}, nested...),
	}
	var d Decoder
	for name, data := range cases {
		for _, opts := range []struct {
			target string
			o      Options
		}{{"a", Options{}}, {"b", Options{}}, {"x", Options{KeepRest: true}}, {"x", Options{RawRest: true}}, {"x", Options{}}} {
			p, err := Compile(s, nil, untyped(t, opts.target), opts.o)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.Decode(p, data); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "no size") {
				t.Errorf("%s, row field %s, %+v: %v; want too many items of no size", name, opts.target, opts.o, err)
			}
		}
	}
	// Up to the bound, such items decode.
	ok := appendLong(appendLong(nil, maxEmptyItems/2), maxEmptyItems/2)
	ok = append(ok, 0, 0) // the end of a; b empty
	p, _ := Compile(s, nil, untyped(t, "a"), Options{})
	if _, err := d.Decode(p, ok); err != nil {
		t.Errorf("%d nulls in two blocks: %v", maxEmptyItems, err)
	}
}

// TestSkippedBlockChecked: an array block may carry its size in bytes
// (Avro 1.12 spec, "Complex Types", arrays: a negative count is followed
// by the block's size) so that readers can skip it. A skipped field is
// still checked as a decoded one is (a record is bad or not whichever
// fields a pipeline names, and RawRest copies skipped bytes), so a block
// whose items are malformed fails whether the field is read or skipped.
func TestSkippedBlockChecked(t *testing.T) {
	s := MustParse(`{"type":"record","name":"R","fields":[
		{"name":"a","type":{"type":"array","items":"int"}},{"name":"b","type":"long"}]}`)
	good := []byte{1, 2, 6, 0, 8}   // a: one block of -1 item in 1 byte (3); b = 4
	bad := []byte{1, 2, 0x80, 0, 8} // the item's varint runs past the block
	var d Decoder
	for _, target := range []string{"a", "b"} {
		for _, o := range []Options{{}, {KeepRest: true}, {RawRest: true}} {
			p, err := Compile(s, nil, untyped(t, target), o)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.Decode(p, good); err != nil {
				t.Errorf("row field %s, %+v: good block: %v", target, o, err)
			}
			if _, err := d.Decode(p, bad); !errors.Is(err, ErrData) {
				t.Errorf("row field %s, %+v: bad block: %v, want ErrData", target, o, err)
			}
		}
	}
}

// TestAliasDoesNotStealAField: a reader field takes the writer field of
// its own name before one named by its aliases (Avro 1.12 spec, "Schema
// Resolution" and "Aliases": aliases are used "if the writer's schema
// does not contain a field" of the reader field's name), so a writer that
// has both gives the named one, and the other is skipped as any writer
// field the reader lacks. At the top level, in nested records, and with
// the rest kept as JSON or as binary.
func TestAliasDoesNotStealAField(t *testing.T) {
	for _, order := range []string{
		`{"name":"order_id","type":"long"},{"name":"id","type":"long"}`,
		`{"name":"id","type":"long"},{"name":"order_id","type":"long"}`,
	} {
		w := MustParse(`{"type":"record","name":"R","fields":[` + order + `,
			{"name":"n","type":{"type":"record","name":"N","fields":[` + order + `]}}]}`)
		rd := MustParse(`{"type":"record","name":"R","fields":[{"name":"order_id","type":"long","aliases":["id"]},
			{"name":"n","type":{"type":"record","name":"N","fields":[{"name":"order_id","type":"long","aliases":["id"]}]}}]}`)
		codec, err := goavro.NewCodec(w.Text())
		if err != nil {
			t.Fatal(err)
		}
		bin, err := codec.BinaryFromNative(nil, map[string]any{"order_id": int64(1), "id": int64(2),
			"n": map[string]any{"order_id": int64(1), "id": int64(2)}})
		if err != nil {
			t.Fatal(err)
		}
		var d Decoder
		p, err := Compile(w, rd, untyped(t, "order_id", "n"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := d.Decode(p, bin)
		if err != nil {
			t.Fatal(err)
		}
		if r.Vals[0] != row.Int(1) || r.Vals[1] != row.JSON(`{"order_id":1}`) {
			t.Errorf("writer fields %s: order_id = %v, n = %v; want 1 and {\"order_id\":1}", order, r.Vals[0], r.Vals[1])
		}
		for _, o := range []Options{{KeepRest: true}, {RawRest: true}} {
			p, err := Compile(w, rd, untyped(t, "n"), o)
			if err != nil {
				t.Fatal(err)
			}
			r, err := d.Decode(p, bin)
			if err != nil {
				t.Fatal(err)
			}
			rest := string(r.Rest)
			if o.RawRest {
				rest = string(appendLong(nil, 1))
				if string(r.Rest) != rest {
					t.Errorf("writer fields %s, raw rest: %x, want %x (order_id 1 in the reader's encoding)", order, r.Rest, rest)
				}
				continue
			}
			if rest != `"order_id":1` {
				t.Errorf("writer fields %s, rest: %s, want \"order_id\":1", order, rest)
			}
		}
	}
}

// TestDecimalPrecision: a decimal's precision is "the (maximum)
// precision of decimals stored in this type" (Avro 1.12 spec, "Logical
// Types", Decimal), so the encoder refuses a value with more significant
// digits, once scaled and rounded, than the schema allows, rather than
// writing bytes a reader of that schema cannot hold. A short string such
// as "1e999999" is refused before it becomes a million-digit number.
func TestDecimalPrecision(t *testing.T) {
	for _, typ := range []string{`"bytes"`, `"fixed","name":"F","size":8`} {
		s := MustParse(`{"type":"record","name":"R","fields":[
			{"name":"d","type":{"type":` + typ + `,"logicalType":"decimal","precision":6,"scale":2}}]}`)
		enc, err := NewEncoder(s, untyped(t, "d"))
		if err != nil {
			t.Fatal(err)
		}
		for v, ok := range map[row.Value]bool{
			row.String("9999.99"): true, row.String("-9999.99"): true, row.String("9999.994"): true,
			row.Float(1234.5): true, row.Int(9999): true, row.String("0.001"): true,
			row.String("9999.995"): false, row.String("10000"): false, row.Int(-10000): false,
			row.Float(1e10): false, row.String("1e999999"): false, row.String("-1e999999"): false,
		} {
			out, err := enc.Append(nil, row.Row{Vals: []row.Value{v}})
			if (err == nil) != ok {
				t.Errorf("%s decimal(6,2) %v: %d bytes, %v; want ok %v", typ, v, len(out), err, ok)
			}
		}
	}
}

// TestDiamondSchema: a writer schema whose records have fields of one
// record type level after level (sixty levels: 2^60 paths to the bottom,
// a few KB of text, as an object container file's header may hold)
// compiles, encodes and decodes in time linear in its size.
func TestDiamondSchema(t *testing.T) {
	const levels = 60
	s := `{"type":"record","name":"T0","fields":[{"name":"x","type":"int"}]}`
	for k := 1; k < levels; k++ {
		s = fmt.Sprintf(`{"type":"record","name":"T%d","fields":[{"name":"a","type":%s},{"name":"b","type":"T%d"}]}`, k, s, k-1)
	}
	sc := MustParse(s)
	rs := untyped(t, "a")
	if _, err := Compile(sc, nil, rs, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewEncoder(sc, untyped(t, "a", "b")); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRestEncoder(sc, rs); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRestJSON(sc, rs, Options{}); err != nil {
		t.Fatal(err)
	}
	// A record of it is 2^59 ints: a few bytes of one are refused.
	var d Decoder
	p, _ := Compile(sc, nil, rs, Options{})
	if _, err := d.Decode(p, []byte{2, 4, 6}); !errors.Is(err, ErrData) {
		t.Errorf("3 bytes: %v", err)
	}
}
