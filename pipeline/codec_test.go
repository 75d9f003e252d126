package pipeline

import (
	"testing"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/state/codec"
)

func TestStateCodecsRoundTrip(t *testing.T) {
	acc := &winAcc{keyVals: []row.Value{row.String("u1"), row.Int(3)}, aggs: []aggState{
		{n: 4, isFloat: true, f: 2.5},
		{n: 2, i: -7},
		{n: 1, v: row.String("x"), ts: 99, set: true},
		{n: 3, distinct: map[string]struct{}{"a": {}, "b": {}}},
	}}
	c, err := codec.For[*winAcc]()
	if err != nil {
		t.Fatal(err)
	}
	b := c.Append(nil, acc)
	got, _, err := c.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	b2 := c.Append(nil, got)
	if string(b) != string(b2) || len(got.aggs[3].distinct) != 2 || got.aggs[2].v != row.String("x") || got.keyVals[1] != row.Int(3) {
		t.Fatalf("accumulator round trip: %+v", got)
	}
	kc, err := codec.For[rowKey]()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []rowKey{{v: row.String("u")}, {v: row.Float(1.5)}, {}, {enc: "\x04\x01a\x02\x02"}} {
		got, _, err := kc.Decode(kc.Append(nil, k))
		if err != nil || got != k || got.KeyHash() != k.KeyHash() {
			t.Errorf("key %+v: got %+v, %v", k, got, err)
		}
	}
	rc, err := codec.For[keyedRow]()
	if err != nil {
		t.Fatal(err)
	}
	kr := keyedRow{key: rowKey{v: row.Int(1)}, r: row.Row{Vals: []row.Value{row.Int(1), row.Null()}, Rest: []byte(`"a":1`)}}
	gr, _, err := rc.Decode(rc.Append(nil, kr))
	if err != nil || gr.key != kr.key || len(gr.r.Vals) != 2 || string(gr.r.Rest) != `"a":1` {
		t.Fatalf("keyed row: %+v, %v", gr, err)
	}
}

// FuzzStateDecoders: checkpoint files are outside bytes; the decoders of
// the pipeline's state must not panic on any input.
func FuzzStateDecoders(f *testing.F) {
	b, _ := winAcc{keyVals: []row.Value{row.Int(1)}, aggs: []aggState{{n: 1, distinct: map[string]struct{}{"k": {}}}}}.MarshalBinary()
	f.Add(b)
	kb, _ := rowKey{enc: "ab"}.MarshalBinary()
	f.Add(kb)
	f.Fuzz(func(t *testing.T, b []byte) {
		var a winAcc
		_ = a.UnmarshalBinary(b)
		var k rowKey
		_ = k.UnmarshalBinary(b)
		var kr keyedRow
		_ = kr.UnmarshalBinary(b)
	})
}
