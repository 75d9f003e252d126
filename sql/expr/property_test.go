package expr

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/types"
)

// col is a column reference at index i.
func colRef(name string) *ast.ColumnRef {
	return &ast.ColumnRef{Parts: []ast.Ident{{Name: name}}, Pos: ast.Pos{Line: 1, Col: 1}}
}

func mustCompile(t testing.TB, c *Compiler, src string, s Scope) Compiled {
	t.Helper()
	e, err := parseExpr(src)
	if err != nil {
		t.Fatal(err)
	}
	x, err := c.Compile(e, s)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	return x
}

// randInt64 favours edge values.
func randInt64(r *rand.Rand) int64 {
	switch r.IntN(6) {
	case 0:
		return []int64{0, 1, -1, math.MaxInt64, math.MinInt64, math.MaxInt32, math.MinInt32}[r.IntN(7)]
	case 1:
		return r.Int64N(200) - 100
	case 2:
		return int64(r.Uint64())
	}
	return r.Int64N(1<<40) - 1<<39
}

// wrap64 reduces a big integer to int64 two's complement, as Java wraps.
func wrap64(x *big.Int) int64 {
	m := new(big.Int).And(x, new(big.Int).SetUint64(math.MaxUint64))
	return int64(m.Uint64())
}

func TestPropertyBigintArithmetic(t *testing.T) {
	sink := &errSink{}
	c := newTestCompiler(sink)
	s := &testScope{names: []string{"a", "b"}, types: []types.Type{types.TBigInt, types.TBigInt}}
	ops := []string{"+", "-", "*", "/", "%"}
	cmps := []string{"=", "<>", "<", "<=", ">", ">="}
	compiled := map[string]Compiled{}
	for _, op := range append(ops, cmps...) {
		compiled[op] = mustCompile(t, c, "a "+op+" b", s)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		a, b := randInt64(r), randInt64(r)
		vals := []row.Value{row.Int(a), row.Int(b)}
		A, B := big.NewInt(a), big.NewInt(b)
		for _, op := range ops {
			got := compiled[op].Eval(vals)
			var want *big.Int
			switch op {
			case "+":
				want = new(big.Int).Add(A, B)
			case "-":
				want = new(big.Int).Sub(A, B)
			case "*":
				want = new(big.Int).Mul(A, B)
			case "/", "%":
				if b == 0 {
					if !got.IsNull() || len(sink.take()) != 1 {
						t.Fatalf("%d %s 0: want NULL and one error", a, op)
					}
					continue
				}
				q, m := new(big.Int).QuoRem(A, B, new(big.Int)) // truncated, as Java
				want = q
				if op == "%" {
					want = m
				}
			}
			if got.AsInt() != wrap64(want) {
				t.Fatalf("%d %s %d = %d, want %d", a, op, b, got.AsInt(), wrap64(want))
			}
		}
		for _, op := range cmps {
			got := compiled[op].Eval(vals).AsBool()
			c := A.Cmp(B)
			want := map[string]bool{"=": c == 0, "<>": c != 0, "<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0}[op]
			if got != want {
				t.Fatalf("%d %s %d = %v", a, op, b, got)
			}
		}
	}
}

func TestPropertyIntWraps32(t *testing.T) {
	c := newTestCompiler(&errSink{})
	s := &testScope{names: []string{"a", "b"}, types: []types.Type{types.TInt, types.TInt}}
	add, mul := mustCompile(t, c, "a + b", s), mustCompile(t, c, "a * b", s)
	r := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		a, b := int32(r.Uint32()), int32(r.Uint32())
		vals := []row.Value{row.Int(int64(a)), row.Int(int64(b))}
		if got := add.Eval(vals).AsInt(); got != int64(a+b) {
			t.Fatalf("%d + %d = %d, want %d", a, b, got, a+b)
		}
		if got := mul.Eval(vals).AsInt(); got != int64(a*b) {
			t.Fatalf("%d * %d = %d, want %d", a, b, got, a*b)
		}
	}
}

func ratOf(v int64, scale int) *big.Rat {
	return new(big.Rat).SetFrac(big.NewInt(v), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))
}

// roundRat rounds HALF_UP to scale digits, as an unscaled big.Int.
func roundRat(x *big.Rat, scale int) *big.Int {
	m := new(big.Rat).Mul(x, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)))
	n, d := m.Num(), m.Denom()
	q, rem := new(big.Int).QuoRem(n, d, new(big.Int))
	if new(big.Int).Mul(new(big.Int).Abs(rem), big.NewInt(2)).Cmp(d) >= 0 {
		q.Add(q, big.NewInt(int64(n.Sign())))
	}
	return q
}

func TestPropertyDecimalArithmetic(t *testing.T) {
	sink := &errSink{}
	c := newTestCompiler(sink)
	r := rand.New(rand.NewPCG(5, 6))
	maxInt64 := big.NewInt(math.MaxInt64)
	minInt64 := big.NewInt(math.MinInt64)
	for round := range 300 {
		p1, p2 := 1+r.IntN(18), 1+r.IntN(18)
		s1, s2 := r.IntN(p1+1), r.IntN(p2+1)
		t1, t2 := types.DecimalOf(p1, s1), types.DecimalOf(p2, s2)
		if round%5 == 0 {
			t2 = types.TBigInt
			p2, s2 = 19, 0
		}
		s := &testScope{names: []string{"a", "b"}, types: []types.Type{t1, t2}}
		for _, op := range []string{"+", "-", "*", "/", "%", "<", "="} {
			x := mustCompile(t, c, "a "+op+" b", s)
			for range 100 {
				lim1 := int64(math.Pow10(min(p1, 18)))
				a := r.Int64N(2*lim1-1) - (lim1 - 1)
				var b int64
				if t2.Kind == types.BigInt {
					b = randInt64(r)
				} else {
					lim2 := int64(math.Pow10(min(p2, 18)))
					b = r.Int64N(2*lim2-1) - (lim2 - 1)
					if r.IntN(4) == 0 {
						b = r.Int64N(21) - 10
					}
				}
				A, B := ratOf(a, s1), ratOf(b, s2)
				got := x.Eval([]row.Value{row.Int(a), row.Int(b)})
				errs := sink.take()
				if op == "<" || op == "=" {
					want := A.Cmp(B) < 0
					if op == "=" {
						want = A.Cmp(B) == 0
					}
					if got.AsBool() != want {
						t.Fatalf("%s %s %s = %v", A.FloatString(s1), op, B.FloatString(s2), got.AsBool())
					}
					continue
				}
				rs := x.Type.Scale
				var want *big.Int
				switch op {
				case "+":
					want = roundRat(new(big.Rat).Add(A, B), rs)
				case "-":
					want = roundRat(new(big.Rat).Sub(A, B), rs)
				case "*":
					want = roundRat(new(big.Rat).Mul(A, B), rs)
				case "/":
					if b == 0 {
						if !got.IsNull() || len(errs) != 1 {
							t.Fatalf("division by zero: got %v, errors %q", got, errs)
						}
						continue
					}
					want = roundRat(new(big.Rat).Quo(A, B), rs)
				case "%":
					if b == 0 {
						if !got.IsNull() || len(errs) != 1 {
							t.Fatalf("modulo zero: got %v, errors %q", got, errs)
						}
						continue
					}
					// remainder with the dividend's sign: a - trunc(a/b)*b
					q := new(big.Rat).Quo(A, B)
					tq := new(big.Int).Quo(q.Num(), q.Denom())
					rem := new(big.Rat).Sub(A, new(big.Rat).Mul(new(big.Rat).SetInt(tq), B))
					want = roundRat(rem, rs)
				}
				if want.Cmp(maxInt64) > 0 || want.Cmp(minInt64) < 0 {
					if !got.IsNull() || len(errs) != 1 {
						t.Fatalf("%s %s %s overflows: got %v, errors %q", A.FloatString(s1), op, B.FloatString(s2), got, errs)
					}
					continue
				}
				if got.IsNull() {
					// an intermediate may overflow (rescaling for + and -);
					// it must be reported
					if len(errs) != 1 {
						t.Fatalf("%s %s %s: NULL without an error", A.FloatString(s1), op, B.FloatString(s2))
					}
					continue
				}
				if got.AsInt() != want.Int64() {
					t.Fatalf("%s %s %s (%s) = %s, want %s", A.FloatString(s1), op, B.FloatString(s2), x.Type,
						formatDecimal(got.AsInt(), rs), formatDecimal(want.Int64(), rs))
				}
			}
		}
	}
}

func TestPropertyMixedComparison(t *testing.T) {
	c := newTestCompiler(&errSink{})
	s := &testScope{names: []string{"i", "d", "f"}, types: []types.Type{types.TBigInt, types.DecimalOf(18, 4), types.TDouble}}
	r := rand.New(rand.NewPCG(7, 8))
	id := mustCompile(t, c, "i < d", s)
	di := mustCompile(t, c, "d = i", s)
	fd := mustCompile(t, c, "f <= d", s)
	for range 20000 {
		i := randInt64(r)
		d := r.Int64N(2e18) - 1e18
		if r.IntN(3) == 0 {
			d = i * 10000
			if d/10000 != i {
				d = 0
			}
		}
		f := float64(r.Int64N(1e9)-5e8) / 1000
		vals := []row.Value{row.Int(i), row.Int(d), row.Float(f)}
		I, D := new(big.Rat).SetInt64(i), ratOf(d, 4)
		if got := id.Eval(vals).AsBool(); got != (I.Cmp(D) < 0) {
			t.Fatalf("%d < %s = %v", i, D.FloatString(4), got)
		}
		if got := di.Eval(vals).AsBool(); got != (I.Cmp(D) == 0) {
			t.Fatalf("%s = %d = %v", D.FloatString(4), i, got)
		}
		if got := fd.Eval(vals).AsBool(); got != (f <= decimalToFloat(d, 4)) {
			t.Fatalf("%v <= %s = %v", f, D.FloatString(4), got)
		}
	}
}

// likeBrute matches LIKE by trying every split, over runes.
func likeBrute(p, s []rune, escape rune) bool {
	if len(p) == 0 {
		return len(s) == 0
	}
	if escape != 0 && p[0] == escape && len(p) > 1 {
		return len(s) > 0 && s[0] == p[1] && likeBrute(p[2:], s[1:], escape)
	}
	switch p[0] {
	case '%':
		for k := 0; k <= len(s); k++ {
			if likeBrute(p[1:], s[k:], escape) {
				return true
			}
		}
		return false
	case '_':
		return len(s) > 0 && likeBrute(p[1:], s[1:], escape)
	}
	return len(s) > 0 && s[0] == p[0] && likeBrute(p[1:], s[1:], escape)
}

func randFrom(r *rand.Rand, alphabet []rune, n int) string {
	out := make([]rune, r.IntN(n+1))
	for i := range out {
		out[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(out)
}

func TestPropertyLike(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for range 20000 {
		p := randFrom(r, []rune("ab%_é!"), 7)
		s := randFrom(r, []rune("abé%_!"), 9)
		escape := rune(0)
		if r.IntN(2) == 0 {
			escape = '!'
		}
		m, err := compileLike(p, escape)
		if err != nil {
			if escape == 0 || !strings.Contains(p, "!") {
				t.Fatalf("compileLike(%q): %v", p, err)
			}
			continue
		}
		if got, want := m.match(s), likeBrute([]rune(p), []rune(s), escape); got != want {
			t.Fatalf("%q LIKE %q (escape %q) = %v, want %v", s, p, escape, got, want)
		}
	}
}

// goLayout maps a Java pattern letter run to a time.Format layout.
var goLayouts = map[string]string{
	"yyyy": "2006", "yy": "06", "MM": "01", "M": "1", "MMM": "Jan", "MMMM": "January",
	"dd": "02", "d": "2", "HH": "15", "hh": "03", "h": "3", "mm": "04", "m": "4",
	"ss": "05", "s": "5", "SSS": "000", "a": "PM", "EEE": "Mon", "EEEE": "Monday",
}

func TestPropertyDateFormat(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	keys := make([]string, 0, len(goLayouts))
	for k := range goLayouts {
		keys = append(keys, k)
	}
	seps := []string{"-", " ", ":", "/", ".", ", "}
	for range 3000 {
		var java, layout strings.Builder
		for k := 0; k < 1+r.IntN(6); k++ {
			if k > 0 {
				sep := seps[r.IntN(len(seps))]
				java.WriteString(sep)
				layout.WriteString(sep)
			}
			key := keys[r.IntN(len(keys))]
			if key == "SSS" {
				java.WriteString(".SSS")
				layout.WriteString(".000")
			} else {
				java.WriteString(key)
				layout.WriteString(goLayouts[key])
			}
		}
		f, err := compileDateFormat(java.String())
		if err != nil {
			t.Fatalf("%q: %v", java.String(), err)
		}
		for range 20 {
			ms := r.Int64N(400*365*msPerDay) - 200*365*msPerDay + 1000*365*msPerDay // years ~1800..2600
			ms -= 1000 * 365 * msPerDay
			ms += 170 * 365 * msPerDay
			tm := time.UnixMilli(ms).UTC()
			want := tm.Format(layout.String())
			if got := f.Format(ms); got != want {
				t.Fatalf("%q (Go %q) at %s: got %q, want %q", java.String(), layout.String(), tm, got, want)
			}
		}
	}
}

// roundTrips reports a pattern whose formatting parses back to the same
// instant: each field once, separated by literal text, no two-digit
// year, hours in one style.
func roundTrips(df *dateFormat) bool {
	seen := map[byte]bool{}
	hours := 0
	for i, pt := range df.parts {
		if pt.letter == 0 {
			continue
		}
		if i > 0 && df.parts[i-1].letter != 0 || seen[pt.letter] || pt.letter == 'y' && pt.count == 2 || pt.letter == 'D' {
			return false
		}
		seen[pt.letter] = true
		switch pt.letter {
		case 'H', 'k', 'K', 'h':
			hours++
		}
	}
	if hours > 1 || (seen['K'] || seen['h']) && !seen['a'] {
		return false
	}
	return seen['y'] && seen['M'] && seen['d'] && hours == 1 && seen['m'] && seen['s'] && seen['S']
}

func TestDateFormatParseRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, p := range []string{"yyyy-MM-dd HH:mm:ss", "yyyyMMddHHmmss", "dd/MM/yyyy hh:mm:ss a", "yyyy-MM-dd'T'HH:mm:ss.SSS", "EEE, d MMM yyyy HH:mm:ss"} {
		f, err := compileDateFormat(p)
		if err != nil {
			t.Fatal(err)
		}
		for range 2000 {
			ms := r.Int64N(200*365*msPerDay) - 50*365*msPerDay
			if !strings.Contains(p, "SSS") {
				ms -= floorMod(ms, 1000)
			}
			s := f.Format(ms)
			back, ok := f.parse(s)
			if !ok || back != ms {
				t.Fatalf("%q: %d formats as %q, parses back as %d (%v)", p, ms, s, back, ok)
			}
		}
	}
}

func TestPropertyCivil(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for range 20000 {
		days := r.Int64N(800000) - 400000
		tm := time.Unix(days*86400, 0).UTC()
		y, m, d := civil(days)
		if y != int64(tm.Year()) || m != int(tm.Month()) || d != tm.Day() {
			t.Fatalf("civil(%d) = %d-%d-%d, want %s", days, y, m, d, tm)
		}
		if daysFromCivil(y, m, d) != days {
			t.Fatalf("daysFromCivil(%d-%d-%d) != %d", y, m, d, days)
		}
		if weekday(days) != int(tm.Weekday())+1 {
			t.Fatalf("weekday(%s) = %d", tm, weekday(days))
		}
		_, w := tm.ISOWeek()
		if isoWeek(days) != w {
			t.Fatalf("isoWeek(%s) = %d, want %d", tm, isoWeek(days), w)
		}
	}
}

func TestPropertyCastRoundTrip(t *testing.T) {
	c := newTestCompiler(&errSink{})
	r := rand.New(rand.NewPCG(17, 18))
	s := &testScope{names: []string{"d", "ts"}, types: []types.Type{types.DecimalOf(18, 5), types.TTimestamp}}
	dd := mustCompile(t, c, "CAST(CAST(d AS STRING) AS DECIMAL(18, 5)) = d", s)
	tt := mustCompile(t, c, "CAST(CAST(ts AS STRING) AS TIMESTAMP(3)) = ts", s)
	for range 5000 {
		vals := []row.Value{row.Int(r.Int64N(2e17) - 1e17), row.Timestamp(r.Int64N(1e13) - 5e12)}
		if !dd.Eval(vals).AsBool() {
			t.Fatalf("decimal %s does not round-trip through STRING", formatDecimal(vals[0].AsInt(), 5))
		}
		if !tt.Eval(vals).AsBool() {
			t.Fatalf("timestamp %d does not round-trip through STRING", vals[1].AsInt())
		}
	}
}

func FuzzLike(f *testing.F) {
	for _, s := range [][2]string{{"a%b_c", "axxbyc"}, {"%%", ""}, {"_é%", "éé"}, {"!%", "%"}, {"a!", "a"}} {
		f.Add(s[0], s[1], true)
		f.Add(s[0], s[1], false)
	}
	f.Fuzz(func(t *testing.T, p, s string, esc bool) {
		if len(p) > 24 || len(s) > 24 || !utf8.ValidString(p) || !utf8.ValidString(s) {
			return
		}
		escape := rune(0)
		if esc {
			escape = '!'
		}
		m, err := compileLike(p, escape)
		if err != nil {
			return
		}
		if got, want := m.match(s), likeBrute([]rune(p), []rune(s), escape); got != want {
			t.Fatalf("%q LIKE %q (escape %v) = %v, want %v", s, p, esc, got, want)
		}
		if _, err := similarToRegexp(p, escape); err != nil {
			_ = err // invalid regular expressions are refused, not panics
		}
	})
}

func FuzzDateFormat(f *testing.F) {
	for _, p := range []string{"yyyy-MM-dd HH:mm:ss.SSS", "EEE, d MMM yy h:mm a", "'T'''HH", "yyyyMMdd", "D u k K"} {
		f.Add(p, int64(1436965509123), "2015-07-15 13:05:09.123")
	}
	f.Fuzz(func(t *testing.T, p string, ms int64, text string) {
		if len(p) > 64 {
			return
		}
		df, err := compileDateFormat(p)
		if err != nil {
			return
		}
		ms %= 1 << 50 // years within ±35,000
		out := df.Format(ms)
		back, ok := df.parse(out)
		if ms >= 0 && ms < 253402300800000 && roundTrips(df) && (!ok || back != ms) {
			t.Fatalf("%q: %d formats as %q, parses back as %d (%v)", p, ms, out, back, ok)
		}
		if back, ok := df.parse(text); ok {
			_ = df.Format(back)
		}
	})
}

func ExampleCompiler_Compile() {
	e := &ast.Binary{Op: "*", L: &ast.NumberLit{Text: "0.908"}, R: colRef("price")}
	s := &testScope{names: []string{"price"}, types: []types.Type{types.TBigInt}}
	var c Compiler
	x, err := c.Compile(e, s)
	if err != nil {
		panic(err)
	}
	v := x.Eval([]row.Value{row.Int(1000)})
	fmt.Println(x.Type, c.FormatValue(v, x.Type))
	// Output: DECIMAL(23, 3) 908.000
}

func TestRequiredLiteral(t *testing.T) {
	for p, want := range map[string]string{
		`(&|^)channel_id=([^&]*)`: "channel_id=",
		`foo(.*?)(bar)`:           "foo",
		`a|b`:                     "",
		`(?i)abc`:                 "",
		`x(abcd)+y`:               "abcd",
		`(ab)?c`:                  "c",
	} {
		if got := requiredLiteral(p); got != want {
			t.Errorf("requiredLiteral(%q) = %q, want %q", p, got, want)
		}
	}
}

// FuzzCompileEval compiles arbitrary expressions (through the test
// parser) and evaluates them over a fixed row: no panics, and values
// are stored as their type says.
func FuzzCompileEval(f *testing.F) {
	for _, src := range []string{
		"SUBSTRING(s, i, b)", "CAST(s AS DECIMAL(10, 2)) * d", "DATE_FORMAT(t, s)", "s LIKE s ESCAPE '!'",
		"CASE WHEN i > b THEN d ELSE f END", "REGEXP_EXTRACT(s, s, i)", "TIMESTAMPADD(MONTH, i, t)",
		"FLOOR(t TO WEEK)", "ROUND(d, 2) / (i - 7)", "LPAD(s, i, s)", "TO_TIMESTAMP(s, s)", "JSON_VALUE(s, '$.a[0]')",
	} {
		f.Add(src, "ab%c", int64(7))
	}
	s := &testScope{
		names: []string{"i", "b", "d", "f", "s", "t", "dt"},
		types: []types.Type{types.TInt, types.TBigInt, types.DecimalOf(10, 2), types.TDouble, types.TVarchar, types.TTimestamp, types.TDate},
	}
	f.Fuzz(func(t *testing.T, src, str string, n int64) {
		if len(src) > 200 {
			return
		}
		e, err := parseExpr(src)
		if err != nil {
			return
		}
		c := &Compiler{OnError: func(error) {}}
		x, err := c.Compile(e, s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Fatalf("%s: error without a position: %v", src, err)
			}
			return
		}
		vals := []row.Value{row.Int(int64(int32(n))), row.Int(n), row.Int(n % 1e10), row.Float(float64(n) / 3), row.String(str), row.Timestamp(n % (1 << 45)), row.Int(n % 100000)}
		v := x.Eval(vals)
		if !v.IsNull() && x.Type.Kind != types.Null && v.Kind() != x.Type.Storage() {
			t.Fatalf("%s: value %v of kind %s for type %s", src, v, v.Kind(), x.Type)
		}
		_ = c.FormatValue(v, x.Type)
	})
}

func TestPropertyFastRegexp(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	patterns := []string{
		`(&|^)channel_id=([^&]*)`, `(a|^)bc(d*)`, `^ab(c)`, `x?y{0,3}ab(.)`, `(?i)ab`, `\bab(c)`, `(a+)b`,
		`[a-c]{2}b(c|$)`, `(^|&)b=([^&]*)`, `a(b)c|bc`, `é?b(.)`,
	}
	for _, p := range patterns {
		re := regexp.MustCompile(p)
		fast := newFastRegexp(re)
		for range 3000 {
			s := randFrom(r, []rune("abc&=_xyé"), 14)
			if r.IntN(3) == 0 {
				s += "channel_id=" + randFrom(r, []rune("1&a"), 4)
			}
			want, got := re.FindStringSubmatchIndex(s), fast.find(s)
			if fmt.Sprint(want) != fmt.Sprint(got) {
				t.Fatalf("%q on %q: got %v, want %v (lit %q, k %d)", p, s, got, want, fast.lit, fast.k)
			}
		}
	}
}
