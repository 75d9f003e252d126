package avro

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/linkedin/goavro/v2"

	"github.com/sluicehq/sluice/row"
)

// TestRawRestSameSchema: with the writer's schema as reader, the fields no
// row field names are copied; the rest encoder writes the record back
// byte for byte, or with the named field changed.
func TestRawRestSameSchema(t *testing.T) {
	s := MustParse(`{"type":"record","name":"R","fields":[
		{"name":"a","type":"long"},{"name":"b","type":"string"},
		{"name":"c","type":{"type":"array","items":"double"}},{"name":"d","type":["null","boolean"]},
		{"name":"m","type":{"type":"map","values":"string"}}]}`)
	codec, _ := goavro.NewCodec(s.Text())
	native := map[string]any{"a": int64(-7), "b": "x\n", "c": []any{1.5, 2.5}, "d": goavro.Union("boolean", true), "m": map[string]any{"k": "v"}}
	bin, err := codec.BinaryFromNative(nil, native)
	if err != nil {
		t.Fatal(err)
	}
	rs := untyped(t, "b")
	p, err := Compile(s, nil, rs, Options{RawRest: true})
	if err != nil {
		t.Fatal(err)
	}
	var d Decoder
	r, err := d.Decode(p, bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Vals) != 1 || r.Vals[0] != row.String("x\n") {
		t.Fatalf("vals %v", r.Vals)
	}
	if want := append(append([]byte(nil), bin[:1]...), bin[4:]...); !bytes.Equal(r.Rest, want) {
		t.Errorf("rest %x, want %x (the record without b)", r.Rest, want)
	}
	enc, err := NewRestEncoder(s, rs)
	if err != nil {
		t.Fatal(err)
	}
	out, err := enc.Append(nil, r)
	if err != nil || !bytes.Equal(out, bin) {
		t.Errorf("re-encoded %x (%v), want the input %x", out, err, bin)
	}
	r.Vals[0] = row.String("changed")
	out, err = enc.Append(nil, r)
	native["b"] = "changed"
	if want, _ := codec.BinaryFromNative(nil, native); err != nil || !bytes.Equal(out, want) {
		t.Errorf("with b changed: %x (%v), want %x", out, err, want)
	}
	rj, err := NewRestJSON(s, rs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	js, err := rj.AppendMembers(nil, r.Rest)
	if want := `"a":-7,"c":[1.5,2.5],"d":true,"m":{"k":"v"}`; err != nil || string(js) != want {
		t.Errorf("json %s (%v), want %s", js, err, want)
	}
	// A rest that is not of this schema is an error, not garbage.
	r.Rest = r.Rest[:len(r.Rest)-2]
	if _, err := enc.Append(nil, r); err == nil {
		t.Error("a truncated rest encoded without error")
	}
}

// TestRawRestEvolution: written with an older schema, the rest is in the
// reader's encoding and order: fields resolved (a promotion re-encoded),
// the writer's extra field dropped, a missing one defaulted. The rest
// encoder's output is what goavro writes for the resolved record, and
// the JSON members are those KeepRest gives.
func TestRawRestEvolution(t *testing.T) {
	w := MustParse(`{"type":"record","name":"R","fields":[
		{"name":"a","type":"long"},{"name":"b","type":"string"},{"name":"c","type":"int"},
		{"name":"x","type":"string"},{"name":"d","type":{"type":"array","items":"double"}}]}`)
	r := MustParse(`{"type":"record","name":"R","fields":[
		{"name":"d","type":{"type":"array","items":"double"}},{"name":"a","type":"long"},
		{"name":"c","type":"double"},{"name":"b","type":"string"},{"name":"e","type":"int","default":5}]}`)
	wc, _ := goavro.NewCodec(w.Text())
	rc, _ := goavro.NewCodec(r.Text())
	bin, err := wc.BinaryFromNative(nil, map[string]any{"a": int64(1), "b": "bee", "c": int32(3), "x": "gone", "d": []any{0.5}})
	if err != nil {
		t.Fatal(err)
	}
	rs := untyped(t, "b")
	p, err := Compile(w, r, rs, Options{RawRest: true})
	if err != nil {
		t.Fatal(err)
	}
	var d Decoder
	for range 2 { // twice: the decoder's buffers are reused
		rw, err := d.Decode(p, bin)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := NewRestEncoder(r, rs)
		if err != nil {
			t.Fatal(err)
		}
		out, err := enc.Append(nil, rw)
		want, _ := rc.BinaryFromNative(nil, map[string]any{"d": []any{0.5}, "a": int64(1), "c": 3.0, "b": "bee", "e": int32(5)})
		if err != nil || !bytes.Equal(out, want) {
			t.Errorf("re-encoded %x (%v), want %x", out, err, want)
		}
		rj, _ := NewRestJSON(r, rs, Options{})
		js, err := rj.AppendMembers(nil, rw.Rest)
		if err != nil {
			t.Fatal(err)
		}
		pk, _ := Compile(w, r, rs, Options{KeepRest: true})
		rk, _ := new(Decoder).Decode(pk, bin)
		var got, wantJS map[string]any
		if err := json.Unmarshal([]byte("{"+string(js)+"}"), &got); err != nil {
			t.Fatalf("json %s: %v", js, err)
		}
		_ = json.Unmarshal([]byte("{"+string(rk.Rest)+"}"), &wantJS)
		if !reflect.DeepEqual(got, wantJS) {
			t.Errorf("json %s, want the members of %s", js, rk.Rest)
		}
	}
	if err := CheckRest(r, rs, r, rs); err != nil {
		t.Error(err)
	}
	if err := CheckRest(r, rs, w, rs); err == nil {
		t.Error("CheckRest accepted a writer schema of other fields")
	}
}
