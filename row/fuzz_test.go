package row

import (
	"encoding/json"
	"testing"
)

// FuzzJSONDecode checks that the JSON decoder never panics on outside
// bytes, and that whatever it accepts survives an encode/decode round trip
// with equal field values and equal pass-through members.
func FuzzJSONDecode(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":"x","c":[1,2],"d":{"e":null}}`,
		`{"a":1.5e300,"z":"\u00e9\ud83d\ude00"}`,
		`{"b":true,"a":-0}`,
		`{}`, `[]`, `"a"`, `{"a":`, `{"a":"\x"}`, `{"a":18446744073709551616}`,
	} {
		f.Add([]byte(s))
	}
	s := MustSchema(Field{Name: "a"}, Field{Name: "b"})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewJSONDecoder(s, true)
		r, err := d.Decode(data)
		if err != nil {
			return
		}
		out := NewJSONEncoder(s).Append(nil, r)
		if !json.Valid(out) {
			t.Fatalf("encoded %q from %q is not valid JSON", out, data)
		}
		r2, err := NewJSONDecoder(s, true).Decode(out)
		if err != nil {
			t.Fatalf("re-decode of %q: %v", out, err)
		}
		for i := range r.Vals {
			// Encoding normalises (invalid UTF-8, non-finite floats), so
			// compare encodings: encoding must be a fixed point.
			if string(r.Vals[i].AppendJSON(nil)) != string(r2.Vals[i].AppendJSON(nil)) {
				t.Fatalf("field %d: %#v then %#v", i, r.Vals[i], r2.Vals[i])
			}
		}
		if string(r.Rest) != string(r2.Rest) {
			t.Fatalf("rest %q then %q", r.Rest, r2.Rest)
		}
	})
}

// FuzzCSVDecode checks that the CSV decoder never panics and that decoded
// rows encode to valid JSON.
func FuzzCSVDecode(f *testing.F) {
	for _, s := range []string{`1,"x, y",3.5`, `"a""b",,true`, `"unterminated`, `a"b,c,d`, "-0,-,0e1\r"} {
		f.Add([]byte(s))
	}
	s := MustSchema(Field{Name: "a"}, Field{Name: "b", Kind: KindInt})
	f.Fuzz(func(t *testing.T, line []byte) {
		d := NewCSVDecoder(s, 0, true)
		if err := d.SetColumns([]string{"a", "b", "c"}); err != nil {
			t.Fatal(err)
		}
		r, err := d.Decode(line)
		if err != nil {
			return
		}
		if out := NewJSONEncoder(s).Append(nil, r); !json.Valid(out) {
			t.Fatalf("encoded %q from %q is not valid JSON", out, line)
		}
	})
}

// FuzzDecodeRow checks that the binary row decoder never panics on
// arbitrary bytes (checkpoint files are outside bytes) and that what it
// accepts survives an encode/decode round trip (varints it read need not
// have been minimal).
func FuzzDecodeRow(f *testing.F) {
	f.Add(Row{Vals: []Value{Null(), Bool(true), Int(-5), Float(2.5), String("x"), Timestamp(7), JSON("[1]")}, Rest: []byte(`"a":1`)}.AppendBinary(nil))
	f.Add([]byte{0, 0})
	f.Add([]byte{3, 4, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, err := DecodeRow(b)
		if err != nil {
			return
		}
		_ = n
		enc := r.AppendBinary(nil)
		r2, n2, err := DecodeRow(enc)
		if err != nil || n2 != len(enc) {
			t.Fatalf("re-decode of %x: %v, %d bytes", enc, err, n2)
		}
		if string(r2.AppendBinary(nil)) != string(enc) || string(r2.Rest) != string(r.Rest) || len(r2.Vals) != len(r.Vals) {
			t.Fatalf("round trip changed %x", enc)
		}
		for i := range r.Vals {
			if r.Vals[i] != r2.Vals[i] {
				t.Fatalf("field %d: %#v then %#v", i, r.Vals[i], r2.Vals[i])
			}
		}
	})
}
