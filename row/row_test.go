package row

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestJSONDecodeTypes(t *testing.T) {
	s := MustSchema(Field{Name: "n"}, Field{Name: "b"}, Field{Name: "i"}, Field{Name: "f"}, Field{Name: "s"}, Field{Name: "o"}, Field{Name: "missing"}, Field{Name: "ts", Kind: KindTimestamp})
	d := NewJSONDecoder(s, false)
	r, err := d.Decode([]byte(`{"n":null,"b":true,"i":-42,"f":1.5,"s":"h\u00e9\"llo","o":{"x":[1,2]},"ts":"2024-01-02T03:04:05.006Z","other":1}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Value{Null(), Bool(true), Int(-42), Float(1.5), String("hé\"llo"), JSON(`{"x":[1,2]}`), Null(), Timestamp(time.Date(2024, 1, 2, 3, 4, 5, 6e6, time.UTC).UnixMilli())}
	for i, w := range want {
		if g := r.Vals[i]; g != w {
			t.Errorf("field %s: got %#v (%s), want %#v", s.Field(i).Name, g, g.Kind(), w)
		}
	}
	if r.Rest != nil {
		t.Errorf("rest %q without keepRest", r.Rest)
	}
}

func TestJSONDecodeErrors(t *testing.T) {
	s := MustSchema(Field{Name: "a", Kind: KindInt})
	d := NewJSONDecoder(s, true)
	for _, tc := range []struct {
		in   string
		want error
	}{
		{`[1]`, ErrNotObject},
		{`"x"`, ErrNotObject},
		{`{"a":"x"}`, ErrType},
		{`{"a":1.5}`, ErrType},
	} {
		if _, err := d.Decode([]byte(tc.in)); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.in, err, tc.want)
		}
	}
	for _, in := range []string{``, `{`, `{"a":}`, `{"a":1}x`} {
		if _, err := d.Decode([]byte(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestJSONRestPassThrough(t *testing.T) {
	s := MustSchema(Field{Name: "a"}, Field{Name: "new"})
	d := NewJSONDecoder(s, true)
	in := []byte(`{"x":"k\"q","a":1,"y":[1,{"z":null}],"w\n":true}`)
	r, err := d.Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	r.Vals[1] = String("added")
	out := NewJSONEncoder(s).Append(nil, r)
	want := `{"a":1,"new":"added","x":"k\"q","y":[1,{"z":null}],"w\n":true}`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
}

// TestDecodedRowsIndependent checks that rows do not share memory with the
// input or with each other (the arena never overwrites what it handed out).
func TestDecodedRowsIndependent(t *testing.T) {
	s := MustSchema(Field{Name: "s"})
	d := NewJSONDecoder(s, true)
	var rows []Row
	var want []string
	for i := range 5000 {
		str := strings.Repeat(string(rune('a'+i%26)), i%50)
		in := []byte(`{"s":"` + str + `","k":"` + str + `"}`)
		r, err := d.Decode(in)
		if err != nil {
			t.Fatal(err)
		}
		clear(in)
		rows = append(rows, r)
		want = append(want, str)
	}
	for i, r := range rows {
		if r.Vals[0].AsString() != want[i] {
			t.Fatalf("row %d: %q, want %q", i, r.Vals[0].AsString(), want[i])
		}
		if len(want[i]) > 0 && !bytes.Contains(r.Rest, []byte(want[i])) {
			t.Fatalf("row %d rest %q", i, r.Rest)
		}
	}
}

func TestEncodeValues(t *testing.T) {
	for _, tc := range []struct {
		v    Value
		want string
	}{
		{Null(), "null"},
		{Bool(false), "false"},
		{Int(math.MinInt64), "-9223372036854775808"},
		{Float(3), "3.0"},
		{Float(1e21), "1e+21"},
		{Float(math.NaN()), "null"},
		{Float(math.Inf(-1)), "null"},
		{String("a<b>\x01\t\xff"), "\"a\\u003cb\\u003e\\u0001\\t\uFFFD\""},
		{Timestamp(1700000000123), `"2023-11-14T22:13:20.123Z"`},
		{JSON(`[1]`), `[1]`},
	} {
		if g := string(tc.v.AppendJSON(nil)); g != tc.want {
			t.Errorf("%#v: got %s, want %s", tc.v, g, tc.want)
		}
	}
}

func TestMillis(t *testing.T) {
	for _, tc := range []struct {
		v    Value
		want int64
		ok   bool
	}{
		{Int(5), 5, true},
		{Float(5.9), 5, true},
		{String("1700000000000"), 1700000000000, true},
		{String("2023-11-14T22:13:20.123+01:00"), 1699996400123, true},
		{String("yesterday"), 0, false},
		{Null(), 0, false},
		{Bool(true), 0, false},
		{Timestamp(-3), -3, true},
	} {
		got, err := tc.v.Millis()
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%#v: got %d, %v", tc.v, got, err)
		}
		if err != nil && !errors.Is(err, ErrNoTime) {
			t.Errorf("%#v: error %v is not ErrNoTime", tc.v, err)
		}
	}
}

func TestCompareOrder(t *testing.T) {
	ordered := []Value{Null(), Bool(false), Bool(true), Float(math.NaN()), Int(-1), Float(-0.5), Int(0), Float(0.5), Int(1 << 60), Timestamp(0), String(""), String("a"), JSON("[]")}
	for i := range ordered {
		for j := range ordered {
			want := cmp3(i, j)
			if i == j {
				want = 0
			}
			if g := Compare(ordered[i], ordered[j]); g != want {
				t.Errorf("Compare(%#v, %#v) = %d, want %d", ordered[i], ordered[j], g, want)
			}
		}
	}
	if !Equal(Int(2), Float(2)) {
		t.Error("2 != 2.0")
	}
}

func TestAppendKeyInjective(t *testing.T) {
	vals := []Value{Null(), Bool(true), Int(1), Float(1), Float(0), Float(math.Copysign(0, -1)), String(""), String("\x01"), String("a"), JSON("a"), Timestamp(1)}
	seen := map[string][2]int{}
	for i := range vals {
		for j := range vals {
			r := Row{Vals: []Value{vals[i], vals[j]}}
			k := string(r.AppendKey(nil, []int{0, 1}))
			if p, dup := seen[k]; dup {
				same := func(a, b Value) bool {
					return a == b || a.kind == KindFloat && b.kind == KindFloat && a.AsFloat() == b.AsFloat()
				}
				if !same(vals[p[0]], vals[i]) || !same(vals[p[1]], vals[j]) {
					t.Errorf("key collision: %v and %v", p, [2]int{i, j})
				}
			}
			seen[k] = [2]int{i, j}
		}
	}
}

func TestFromAnyRoundTrip(t *testing.T) {
	for _, v := range []Value{Null(), Bool(true), Int(-7), Float(2.5), String("x"), Timestamp(1700000000123)} {
		got, err := FromAny(v.Any())
		if err != nil || got != v {
			t.Errorf("%#v: got %#v, %v", v, got, err)
		}
	}
	if v, err := FromAny(JSON(`{"a":[1,"x"]}`).Any()); err != nil || v != JSON(`{"a":[1,"x"]}`) {
		t.Errorf("json round trip: %#v, %v", v, err)
	}
	// Expression builtins give typed slices and maps (split: []string,
	// groupBy: map[any][]any): nested values like []any and
	// map[string]any.
	for _, tc := range []struct {
		in   any
		want Value
	}{
		{[]int{1}, JSON(`[1]`)},
		{[]string{"a", "b"}, JSON(`["a","b"]`)},
		{[]string(nil), Null()},
		{map[any][]any{1: {"x"}, "k": nil}, JSON(`{"1":["x"],"k":null}`)},
		{map[string]int{"a": 1}, JSON(`{"a":1}`)},
		{[2]float64{0.5, 1}, JSON(`[0.5,1]`)},
		{[]time.Duration{time.Second}, JSON(`[1000]`)},
		{[][]byte{[]byte("x")}, JSON(`["eA=="]`)},
	} {
		if got, err := FromAny(tc.in); err != nil || got != tc.want {
			t.Errorf("%#v: got %#v, %v; want %#v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []any{make(chan int), []func(){nil}, map[[2]int]int{{1, 2}: 3}, struct{}{}} {
		if _, err := FromAny(bad); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%T: %v, want ErrUnsupported", bad, err)
		}
	}
}

func TestCSV(t *testing.T) {
	s := MustSchema(Field{Name: "id", Kind: KindInt}, Field{Name: "name", Kind: KindString}, Field{Name: "score"}, Field{Name: "zip"})
	d := NewCSVDecoder(s, 0, true)
	if err := d.SetHeader([]byte("name,id,zip,score,extra\r")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		line string
		want []Value
		rest string
		err  bool
	}{
		{`"Smith, J",7,01234,2.5,x`, []Value{Int(7), String("Smith, J"), Float(2.5), String("01234")}, `"extra":"x"`, false},
		{`"say ""hi""",-3,0,,true`, []Value{Int(-3), String(`say "hi"`), Null(), Int(0)}, `"extra":true`, false},
		{`123,1,2,-0.5,`, []Value{Int(1), String("123"), Float(-0.5), Int(2)}, `"extra":null`, false},
		{`a,b,c,d,e`, nil, "", true},
		{`a,1,2,3`, nil, "", true},
		{`"a,1,2,3,4`, nil, "", true},
		{`"a"x,1,2,3,4`, nil, "", true},
	} {
		r, err := d.Decode([]byte(tc.line))
		if tc.err {
			if err == nil || !errors.Is(err, ErrCSV) {
				t.Errorf("%s: err %v, want a CSV error", tc.line, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.line, err)
			continue
		}
		for i, w := range tc.want {
			if r.Vals[i] != w {
				t.Errorf("%s: field %d = %#v, want %#v", tc.line, i, r.Vals[i], w)
			}
		}
		if string(r.Rest) != tc.rest {
			t.Errorf("%s: rest %q, want %q", tc.line, r.Rest, tc.rest)
		}
	}
}

func TestSchema(t *testing.T) {
	if _, err := NewSchema(Field{Name: "a"}, Field{Name: "a"}); !errors.Is(err, ErrDuplicateField) {
		t.Errorf("duplicate: %v", err)
	}
	s := MustSchema(Field{Name: "a", Kind: KindInt}, Field{Name: "b"})
	if i, ok := s.Index("b"); !ok || i != 1 {
		t.Errorf("Index(b) = %d, %v", i, ok)
	}
	if s.String() != "a int, b" {
		t.Errorf("String() = %q", s.String())
	}
	for k := KindNull; k <= KindJSON; k++ {
		if got, err := ParseKind(k.String()); err != nil || got != k {
			t.Errorf("ParseKind(%s) = %v, %v", k, got, err)
		}
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	r := Row{Vals: []Value{Null(), Bool(false), Int(math.MinInt64), Float(math.Inf(-1)), String("héllo"), Timestamp(-1), JSON(`{"a":[]}`)}, Rest: []byte(`"x":1`)}
	b := r.AppendBinary([]byte("prefix"))[6:]
	got, n, err := DecodeRow(append(b, 0xff))
	if err != nil || n != len(b) {
		t.Fatalf("decode: %v, %d of %d bytes", err, n, len(b))
	}
	for i := range r.Vals {
		if got.Vals[i] != r.Vals[i] {
			t.Errorf("field %d: %#v, want %#v", i, got.Vals[i], r.Vals[i])
		}
	}
	if string(got.Rest) != string(r.Rest) {
		t.Errorf("rest %q", got.Rest)
	}
	for _, bad := range [][]byte{{}, {1, 9}, {1, 7}, {1, 3}, {1, 4, 1}, {1, 1, 2}, {2, 0, 0}} {
		if _, _, err := DecodeRow(bad); !errors.Is(err, ErrBinary) {
			t.Errorf("%x: err %v", bad, err)
		}
	}
}
