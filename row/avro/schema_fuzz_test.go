package avro

import (
	"errors"
	"testing"

	"github.com/sluicehq/sluice/row"
)

// FuzzParseSchema parses arbitrary schema texts (pipeline files and
// registries hand them over) and decodes arbitrary bytes with what
// parses: parsing, compiling and decoding must return errors, never
// panic; a row decoded encodes back to bytes that decode to the same row
// (values a writer refuses aside).
func FuzzParseSchema(f *testing.F) {
	for _, s := range []string{allTypes, logical112,
		`{"type":"record","name":"R","fields":[{"name":"a","type":["null",{"type":"fixed","name":"F","size":16,"logicalType":"uuid"}],"default":null}]}`,
		`{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"array","items":{"type":"long","logicalType":"local-timestamp-nanos"}}}]}`,
		`{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"long","logicalType":"timestamp-nanos"},"default":-1}]}`,
	} {
		f.Add(s, []byte{})
		f.Add(s, []byte{0x02, 0x04, 0x06, 0x08, 0x10, 0x12, 0x14, 0x16, 0x18, 0x1a, 0x1c, 0x1e, 0x20, 0x22, 0x24, 0x26, 0x28, 0x2a})
	}
	f.Fuzz(func(t *testing.T, text string, data []byte) {
		s, err := Parse(text)
		if err != nil {
			if !errors.Is(err, ErrSchema) {
				t.Fatalf("error not wrapping ErrSchema: %v", err)
			}
			return
		}
		rs, err := row.Untyped(names(s)...)
		if err != nil {
			return
		}
		p, err := Compile(s, s, rs, Options{})
		if err != nil {
			return
		}
		var d Decoder
		r, err := d.Decode(p, data)
		if err != nil {
			return
		}
		enc, err := NewEncoder(s, rs)
		if err != nil {
			t.Fatalf("decodes with the schema, cannot make an encoder: %v", err)
		}
		out, err := enc.Append(nil, r)
		if err != nil {
			return
		}
		back, err := d.Decode(p, out)
		if err != nil {
			t.Fatalf("decoded %v, re-encoded %x does not decode: %v", r.Vals, out, err)
		}
		for i := range r.Vals {
			if !row.Equal(r.Vals[i], back.Vals[i]) || r.Vals[i].Kind() != back.Vals[i].Kind() {
				t.Fatalf("field %s: %v, after a round trip %v", rs.Field(i).Name, r.Vals[i], back.Vals[i])
			}
		}
	})
}
