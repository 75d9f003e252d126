package connect

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/sluicehq/sluice/nexmark"
	"github.com/sluicehq/sluice/nexmark/queries"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/types"
)

func randString(r *rand.Rand) string {
	const alphabet = "abc \"\\\n\t\x01é€\xff,;"
	n := r.IntN(12)
	b := make([]byte, 0, n)
	for range n {
		b = append(b, alphabet[r.IntN(len(alphabet))])
	}
	return string(b)
}

func randInt(r *rand.Rand) int64 {
	switch r.IntN(4) {
	case 0:
		return r.Int64N(1000) - 500
	case 1:
		return r.Int64()
	case 2:
		return -r.Int64()
	}
	return int64(r.IntN(3)) - 1
}

func col(name string, t types.Type) Column { return Column{Name: name, Type: t} }

// The SQL result rows must encode byte for byte as the hand-written
// queries' rows do: the checksums hash these bytes.
func TestAppendJSONMatchesQueryRows(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	dec := types.DecimalOf(23, 3)
	q1cols := []Column{col("auction", types.TBigInt), col("bidder", types.TBigInt), col("price", dec), col("dateTime", types.TTimestamp), col("extra", types.TVarchar)}
	q14cols := []Column{col("auction", types.TBigInt), col("bidder", types.TBigInt), col("price", dec), col("bidTimeType", types.TVarchar),
		col("dateTime", types.TTimestamp), col("extra", types.TVarchar), col("c_counts", types.TBigInt)}
	q22cols := []Column{col("auction", types.TBigInt), col("bidder", types.TBigInt), col("price", types.TBigInt), col("channel", types.TVarchar),
		col("dir1", types.TVarchar), col("dir2", types.TVarchar), col("dir3", types.TVarchar)}
	q19cols := []Column{col("auction", types.TBigInt), col("bidder", types.TBigInt), col("price", types.TBigInt), col("channel", types.TVarchar),
		col("url", types.TVarchar), col("dateTime", types.TTimestamp), col("extra", types.TVarchar), col("rank_number", types.TBigInt)}
	q0cols := []Column{col("auction", types.TBigInt), col("bidder", types.TBigInt), col("price", types.TBigInt), col("dateTime", types.TTimestamp), col("extra", types.TVarchar)}
	nullStr := func() (queries.NullString, row.Value) {
		if r.IntN(3) == 0 {
			return queries.NullString{}, row.Value{}
		}
		s := randString(r)
		return queries.NullString{S: s, Valid: true}, row.String(s)
	}
	for i := 0; i < 5000; i++ {
		a, b, p, ts, n := randInt(r), randInt(r), randInt(r), randInt(r), randInt(r)
		s1, s2 := randString(r), randString(r)
		check := func(name string, want []byte, cols []Column, vals ...row.Value) {
			t.Helper()
			got := AppendJSON(nil, cols, vals, JSONOptions{})
			if !bytes.Equal(got, want) {
				t.Fatalf("%s:\n got %s\nwant %s", name, got, want)
			}
		}
		check("q0", queries.Q0Row{Auction: a, Bidder: b, Price: p, DateTime: ts, Extra: s1}.AppendJSON(nil), q0cols,
			row.Int(a), row.Int(b), row.Int(p), row.Timestamp(ts), row.String(s1))
		check("q1", queries.Q1Row{Auction: a, Bidder: b, PriceMilli: p, DateTime: ts, Extra: s1}.AppendJSON(nil), q1cols,
			row.Int(a), row.Int(b), row.Int(p), row.Timestamp(ts), row.String(s1))
		check("q14", queries.Q14Row{Auction: a, Bidder: b, PriceMilli: p, BidTimeType: s2, DateTime: ts, Extra: s1, CCounts: n}.AppendJSON(nil), q14cols,
			row.Int(a), row.Int(b), row.Int(p), row.String(s2), row.Timestamp(ts), row.String(s1), row.Int(n))
		d1, v1 := nullStr()
		d2, v2 := nullStr()
		d3, v3 := nullStr()
		check("q22", queries.Q22Row{Auction: a, Bidder: b, Price: p, Channel: s1, Dir1: d1, Dir2: d2, Dir3: d3}.AppendJSON(nil), q22cols,
			row.Int(a), row.Int(b), row.Int(p), row.String(s1), v1, v2, v3)
		bid := nexmark.Bid{Auction: a, Bidder: b, Price: p, Channel: s1, URL: s2, DateTime: ts, Extra: s1 + s2}
		check("q19", queries.Q19Row{Bid: bid, RankNumber: n}.AppendJSON(nil), q19cols,
			row.Int(a), row.Int(b), row.Int(p), row.String(s1), row.String(s2), row.Timestamp(ts), row.String(s1+s2), row.Int(n))
	}
}

func TestAppendJSONTypes(t *testing.T) {
	cols := []Column{
		col("d0", types.DecimalOf(10, 0)), col("d2", types.DecimalOf(10, 2)), col("day", types.TDate),
		col("t", types.Type{Kind: types.Time}), col("ts", types.TTimestamp), col("f", types.TDouble), col("b", types.TBoolean),
		col("arr", types.Type{Kind: types.Array, Elem: &types.TInt}), col("n", types.TInt),
		{Name: "p.x", Type: types.TInt, Path: []string{"p", "x"}}, {Name: "p.q.y", Type: types.TVarchar, Path: []string{"p", "q", "y"}},
		{Name: "p.z", Type: types.TInt, Path: []string{"p", "z"}}, {Name: "e.a", Type: types.TInt, Path: []string{"e", "a"}},
	}
	vals := []row.Value{row.Int(-5), row.Int(-5), row.Int(16631), row.Int(3723004), row.Timestamp(1436918400123), row.Float(0.1),
		row.Bool(true), row.JSON("[1,2]"), {}, row.Int(1), row.String("y"), row.Int(3), {}}
	want := `{"d0":-5,"d2":-0.05,"day":"2015-07-15","t":"01:02:03.004","ts":1436918400123,"f":0.1,"b":true,"arr":[1,2],"n":null,"p":{"x":1,"q":{"y":"y"},"z":3},"e":null}`
	if got := AppendJSON(nil, cols, vals, JSONOptions{}); string(got) != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
	ts := []Column{col("ts", types.TTimestamp), {Name: "l", Type: types.Type{Kind: types.TimestampLTZ, Precision: 3}}}
	tv := []row.Value{row.Timestamp(1436918400000), row.Timestamp(1436918400120)}
	for _, c := range []struct {
		f    TimestampFormat
		want string
	}{
		{EpochMillis, `{"ts":1436918400000,"l":1436918400120}`},
		{SQLTimestamp, `{"ts":"2015-07-15 00:00:00","l":"2015-07-15 00:00:00.120"}`},
		{ISOTimestamp, `{"ts":"2015-07-15T00:00:00","l":"2015-07-15T00:00:00.120Z"}`},
	} {
		if got := AppendJSON(nil, ts, tv, JSONOptions{Timestamps: c.f}); string(got) != c.want {
			t.Fatalf("format %d: got %s want %s", c.f, got, c.want)
		}
	}
}

func TestParseDecimal(t *testing.T) {
	for _, c := range []struct {
		in    string
		scale int
		want  int64
		err   bool
	}{
		{"1234.5", 3, 1234500, false}, {"-0.0005", 3, -1, false}, {"0.0004", 3, 0, false}, {"12", 0, 12, false},
		{"1.5e2", 1, 1500, false}, {"1e-3", 3, 1, false}, {"9.9995", 3, 10000, false}, {".5", 1, 5, false},
		{"9223372036854775807", 0, 9223372036854775807, false}, {"9223372036854775808", 0, 0, true},
		{"1e18", 1, 0, true}, {"abc", 2, 0, true}, {"", 2, 0, true}, {"1.2.3", 2, 0, true}, {"-", 0, 0, true},
	} {
		got, err := parseDecimal(c.in, c.scale)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("parseDecimal(%q, %d) = %d, %v; want %d, err %v", c.in, c.scale, got, err, c.want, c.err)
		}
	}
	// Property: appendDecimal then parseDecimal is the identity.
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 20000; i++ {
		v, s := randInt(r), r.IntN(19)
		txt := appendDecimal(nil, v, s)
		back, err := parseDecimal(string(txt), s)
		if err != nil || back != v {
			t.Fatalf("%d scale %d -> %s -> %d, %v", v, s, txt, back, err)
		}
	}
}
