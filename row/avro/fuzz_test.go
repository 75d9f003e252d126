package avro

import (
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"

	"github.com/sluicehq/sluice/row"
)

// FuzzDecode feeds arbitrary bytes to the decoder: it must return a row or
// an error wrapping ErrData, never panic or hang; and a row it returns
// encodes back to bytes that decode to the same row, with every field
// decoded or with the fields no row field names copied (RawRest); a
// decimal of more digits than its precision, read, is refused when
// written.
func FuzzDecode(f *testing.F) {
	s := MustParse(allTypes)
	codec, err := goavro.NewCodec(allTypes)
	if err != nil {
		f.Fatal(err)
	}
	bin, err := codec.BinaryFromNative(nil, allTypesNative())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(bin)
	f.Add(bin[:len(bin)/2])
	f.Add([]byte{})
	rs, _ := row.Untyped(names(s)...)
	all, err := Compile(s, nil, rs, Options{DecimalAsString: true})
	if err != nil {
		f.Fatal(err)
	}
	some, _ := row.Untyped("qty", "address")
	rest, err := Compile(s, nil, some, Options{KeepRest: true})
	if err != nil {
		f.Fatal(err)
	}
	enc, err := NewEncoder(s, rs)
	if err != nil {
		f.Fatal(err)
	}
	raw, err := Compile(s, nil, some, Options{RawRest: true})
	if err != nil {
		f.Fatal(err)
	}
	renc, err := NewRestEncoder(s, some)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d Decoder
		r, err := d.Decode(all, data)
		r2, err2 := d.Decode(rest, data)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("all fields: %v; some fields with the rest: %v", err, err2)
		}
		r3, err3 := d.Decode(raw, data)
		if (err == nil) != (err3 == nil) {
			t.Fatalf("all fields: %v; some fields with the raw rest: %v", err, err3)
		}
		if err != nil {
			return
		}
		rawOut, err := renc.Append(nil, r3)
		if err != nil {
			t.Fatalf("decoded %v with the raw rest %x, cannot encode it: %v", r3.Vals, r3.Rest, err)
		}
		if len(r2.Rest) == 0 {
			t.Fatal("no rest")
		}
		out, err := enc.Append(nil, r)
		if err != nil && strings.Contains(err.Error(), "digits of a decimal") {
			// Bytes that hold more digits than the decimal's precision
			// are read, as Avro's readers do, but not written.
			return
		}
		if err != nil {
			t.Fatalf("decoded %v, cannot encode it: %v", r.Vals, err)
		}
		back, err := d.Decode(all, out)
		if err != nil {
			t.Fatalf("re-encoded %x does not decode: %v", out, err)
		}
		rawBack, err := d.Decode(all, rawOut)
		if err != nil {
			t.Fatalf("re-encoded with the raw rest %x does not decode: %v", rawOut, err)
		}
		for i := range r.Vals {
			if !row.Equal(r.Vals[i], back.Vals[i]) || r.Vals[i].Kind() != back.Vals[i].Kind() {
				t.Fatalf("field %s: %v, after a round trip %v", rs.Field(i).Name, r.Vals[i], back.Vals[i])
			}
			if !row.Equal(r.Vals[i], rawBack.Vals[i]) || r.Vals[i].Kind() != rawBack.Vals[i].Kind() {
				t.Fatalf("field %s: %v, after a round trip with the raw rest %v", rs.Field(i).Name, r.Vals[i], rawBack.Vals[i])
			}
		}
	})
}
