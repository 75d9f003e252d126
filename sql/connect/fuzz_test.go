package connect

import (
	"bytes"
	"testing"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/types"
)

// fuzzColumns has a column of every storage, nested ones included.
func fuzzColumns() []Column {
	return append(allTypesColumns(), col("t2", types.Type{Kind: types.TimestampLTZ, Precision: 3}), col("tiny", types.Type{Kind: types.TinyInt}),
		col("m", types.Type{Kind: types.Map, Key: &types.TVarchar, Elem: &types.TInt}), col("iv", types.TInterval))
}

// FuzzJSONDecode: any input decodes or fails cleanly, and a decoded row
// encodes to JSON that decodes to the same row (for the columns whose
// text form is exact).
func FuzzJSONDecode(f *testing.F) {
	cols := fuzzColumns()
	for _, c := range allTypesRows() {
		f.Add(AppendJSON(nil, allTypesColumns(), c.Vals, JSONOptions{}))
	}
	f.Add([]byte(`{"id":"12","price":"1e-2","ts":"2015-07-15 00:00:00.5","p":{"city":null},"m":{"a":1},"iv":5}`))
	f.Add([]byte(`{"id":1.5}`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(`{"tiny":300}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := newJSONDecoder(cols, false)
		vals, err := d.decode(data)
		if err != nil {
			return
		}
		if len(vals) != len(cols) {
			t.Fatalf("%d values for %d columns", len(vals), len(cols))
		}
		for i, v := range vals {
			if !v.IsNull() && v.Kind() != cols[i].Type.Storage() {
				t.Fatalf("column %s: a %s value for %s", cols[i].Name, v.Kind(), cols[i].Type)
			}
		}
		out := AppendJSON(nil, cols, vals, JSONOptions{})
		back, err := newJSONDecoder(cols, false).decode(out)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", out, err)
		}
		for i := range vals {
			if cols[i].Type.Kind == types.Double || cols[i].Type.Storage() == row.KindJSON {
				continue // NaN and JSON text formatting
			}
			if back[i] != vals[i] {
				t.Fatalf("column %s: %v then %v via %s", cols[i].Name, vals[i], back[i], out)
			}
		}
	})
}

// FuzzCSVDecode: any line decodes or fails cleanly; a decoded row
// written back reads the same.
func FuzzCSVDecode(f *testing.F) {
	cols := allTypesColumns()
	c, _ := newCSVCodec(cols, Options{}, "")
	for _, r := range allTypesRows() {
		f.Add(c.appendRow(nil, r.Vals))
	}
	f.Add([]byte(`1,"a""b",,,`))
	f.Add([]byte(`"unterminated`))
	f.Fuzz(func(t *testing.T, line []byte) {
		if bytes.ContainsAny(line, "\n\r") {
			return // the framing splits records
		}
		dec, _ := newCSVCodec(cols, Options{}, "")
		vals, err := dec.decode(line)
		if err != nil {
			return
		}
		enc, _ := newCSVCodec(cols, Options{}, "")
		out := enc.appendRow(nil, vals)
		back, err := dec.decode(out)
		if err != nil {
			t.Fatalf("re-decoding %q: %v", out, err)
		}
		for i := range vals {
			if cols[i].Type.Kind == types.Double || cols[i].Type.Storage() == row.KindJSON {
				continue
			}
			if back[i] != vals[i] {
				t.Fatalf("column %s: %v then %v via %q", cols[i].Name, vals[i], back[i], out)
			}
		}
	})
}
