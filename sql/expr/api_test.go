package expr

import (
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/types"
)

func TestUDF(t *testing.T) {
	reg := NewRegistry()
	if err := reg.RegisterScalar("count_char", Func2("count_char", func(s, c string) int64 {
		return int64(strings.Count(s, c))
	})); err != nil {
		t.Fatal(err)
	}
	if err := reg.RegisterScalar("twice", Func1("twice", func(x float64) float64 { return 2 * x })); err != nil {
		t.Fatal(err)
	}
	calls := 0
	var mu sync.Mutex
	if err := reg.RegisterScalar("counted", ScalarFunc{
		Check: func(args []types.Type) (types.Type, error) { return types.TBigInt, nil },
		Eval: func(args []row.Value) row.Value {
			mu.Lock()
			calls++
			mu.Unlock()
			return row.Int(int64(len(args)))
		},
		Deterministic: true,
	}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		name string
		f    ScalarFunc
		want string
	}{
		{"upper", Func1("upper", strings.ToUpper), "function UPPER is built in; register the function under another name"},
		{"count", Func1("count", strings.ToUpper), "function COUNT is built in; register the function under another name"},
		{"COUNT_CHAR", Func1("x", strings.ToUpper), "function COUNT_CHAR is already registered"},
		{"nothing", ScalarFunc{}, "function NOTHING: Check and Eval are both required"},
	} {
		if err := reg.RegisterScalar(bad.name, bad.f); err == nil || err.Error() != bad.want {
			t.Errorf("RegisterScalar(%s) = %v, want %q", bad.name, err, bad.want)
		}
	}
	c := &Compiler{Funcs: reg}
	s := &testScope{names: []string{"extra", "i"}, types: []types.Type{types.TVarchar, types.TInt}}
	x := mustCompile(t, c, "count_char(extra, 'c')", s)
	if x.Type.Kind != types.BigInt {
		t.Errorf("type %s", x.Type)
	}
	if got := x.Eval([]row.Value{row.String("abcabc"), row.Int(1)}).AsInt(); got != 2 {
		t.Errorf("count_char = %d", got)
	}
	if got := x.Eval([]row.Value{row.Null(), row.Int(1)}); !got.IsNull() {
		t.Errorf("count_char(NULL) = %v", got)
	}
	if got := mustCompile(t, c, "twice(i)", s).Eval([]row.Value{row.Null(), row.Int(4)}).AsFloat(); got != 8 {
		t.Errorf("twice(4) = %v", got)
	}
	// constant arguments are folded once
	k := mustCompile(t, c, "counted(1, 2)", s)
	if !k.Const || calls != 1 {
		t.Errorf("counted(1, 2): Const %v, %d calls", k.Const, calls)
	}
	k.Eval(nil)
	if calls != 1 {
		t.Errorf("a folded constant called the function again")
	}
	e, _ := parseExpr("count_char(i, 'c')")
	if _, err := c.Compile(e, s); err == nil || err.Error() != "line 1, column 1: COUNT_CHAR: expects (STRING, STRING), got (INT, CHAR)" {
		t.Errorf("type error: %v", err)
	}
	e, _ = parseExpr("count_chars(extra, 'c')")
	if _, err := c.Compile(e, s); err == nil || err.Error() != "line 1, column 1: unknown function COUNT_CHARS; did you mean COUNT_CHAR?" {
		t.Errorf("suggestion: %v", err)
	}
	if f, ok := reg.Lookup("Count_Char"); !ok || f.Name != "COUNT_CHAR" {
		t.Errorf("Lookup(Count_Char) = %v, %v", f.Name, ok)
	}
	if f, ok := reg.Lookup("upper"); !ok || f.Eval != nil || f.Check == nil {
		t.Errorf("Lookup(upper) = %+v, %v", f, ok)
	} else if rt, err := f.Check([]types.Type{types.TVarchar}); err != nil || rt.Kind != types.Varchar {
		t.Errorf("UPPER's Check = %s, %v", rt, err)
	} else if _, err := f.Check([]types.Type{types.TInt}); err == nil {
		t.Errorf("UPPER's Check accepts INT")
	}
	if _, ok := reg.Lookup("nope"); ok {
		t.Error("Lookup(nope) found something")
	}
	names := reg.Names()
	for _, want := range []string{"COUNT_CHAR", "UPPER", "DATE_FORMAT", "REGEXP_EXTRACT"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("Names() lacks %s", want)
		}
	}
	// the default registry does not see UDFs of another
	e, _ = parseExpr("count_char(extra, 'c')")
	if _, err := (&Compiler{}).Compile(e, s); err == nil {
		t.Error("the default registry knows count_char")
	}
}

func TestPredicate(t *testing.T) {
	c := &Compiler{}
	s := &testScope{names: []string{"a", "b"}, types: []types.Type{types.TBigInt, types.TBoolean}}
	for _, tc := range []struct {
		src  string
		vals []row.Value
		want bool
	}{
		{"a > 1", []row.Value{row.Int(2), row.Null()}, true},
		{"a > 1", []row.Value{row.Int(0), row.Null()}, false},
		{"a > 1", []row.Value{row.Null(), row.Null()}, false},
		{"b", []row.Value{row.Null(), row.Null()}, false},
		{"NOT b", []row.Value{row.Null(), row.Null()}, false},
		{"b IS NULL", []row.Value{row.Null(), row.Null()}, true},
		{"1 = 1", nil, true},
		{"NULL", nil, false},
	} {
		e, err := parseExpr(tc.src)
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.Predicate(e, s)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		if got := p(tc.vals); got != tc.want {
			t.Errorf("%s on %v = %v", tc.src, tc.vals, got)
		}
	}
	e, _ := parseExpr("a + 1")
	if _, err := c.Predicate(e, s); err == nil || err.Error() != "line 1, column 3: a condition must be BOOLEAN, not BIGINT" {
		t.Errorf("Predicate(a + 1): %v", err)
	}
}

func TestIsAggregate(t *testing.T) {
	for _, n := range []string{"COUNT", "sum", "Avg", "MIN", "MAX"} {
		if !IsAggregate(n) {
			t.Errorf("IsAggregate(%s) = false", n)
		}
	}
	for _, n := range []string{"ROW_NUMBER", "rank", "DENSE_RANK"} {
		if !IsWindowFunc(n) || IsAggregate(n) {
			t.Errorf("%s: IsWindowFunc %v IsAggregate %v", n, IsWindowFunc(n), IsAggregate(n))
		}
	}
	if IsAggregate("UPPER") || IsWindowFunc("UPPER") {
		t.Error("UPPER is not an aggregate")
	}
	call := &ast.Call{Name: ast.Ident{Name: "ROW_NUMBER"}, Over: &ast.WindowSpec{}, Pos: ast.Pos{Line: 3, Col: 9}}
	if _, err := (&Compiler{}).Compile(call, nil); err == nil || err.Error() != "line 3, column 9: window function ROW_NUMBER ... OVER is not allowed here; it is planned as an OVER aggregation" {
		t.Errorf("OVER: %v", err)
	}
}

func TestCoerce(t *testing.T) {
	c := &Compiler{}
	lit := func(src string) Compiled { return mustCompile(t, c, src, nil) }
	for _, tc := range []struct {
		src  string
		to   types.Type
		want string
		err  string
	}{
		{"1", types.TBigInt, "1", ""},
		{"1", types.DecimalOf(10, 2), "1.00", ""},
		{"1.5", types.TDouble, "1.5", ""},
		{"'abc'", types.TVarchar, "abc", ""},
		{"NULL", types.TBigInt, "NULL", ""},
		{"'2020-01-01 00:00:00'", types.TTimestamp, "2020-01-01 00:00:00.000", ""},
		{"1", types.TVarchar, "", "cannot cast implicitly INT to VARCHAR; CAST it explicitly"},
		{"DATE '2020-01-02'", types.TTimestamp, "2020-01-02 00:00:00.000", ""},
		{"1e0", types.TInt, "", "cannot cast implicitly DOUBLE to INT; CAST it explicitly"},
		{"'1'", types.TBigInt, "", "cannot cast implicitly CHAR to BIGINT; CAST it explicitly"},
		{"TRUE", types.TInt, "", "cannot cast implicitly BOOLEAN to INT; CAST it explicitly"},
		{"1.5", types.TInt, "", "cannot cast implicitly DECIMAL(2, 1) to INT; CAST it explicitly"},
		{"TIMESTAMP '2020-01-01 00:00:00'", types.TBigInt, "", "cannot cast implicitly TIMESTAMP to BIGINT; CAST it explicitly"},
	} {
		x, err := Coerce(lit(tc.src), tc.to)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("Coerce(%s, %s) error %v, want %q", tc.src, tc.to, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Coerce(%s, %s): %v", tc.src, tc.to, err)
			continue
		}
		if !types.Equal(x.Type, tc.to) && !(tc.to.Kind == types.Varchar && x.Type.Kind == types.Varchar) {
			t.Errorf("Coerce(%s, %s) has type %s", tc.src, tc.to, x.Type)
		}
		v := x.Eval(nil)
		got := c.FormatValue(v, x.Type)
		if got != tc.want {
			t.Errorf("Coerce(%s, %s) = %s, want %s", tc.src, tc.to, got, tc.want)
		}
		if !v.IsNull() && v.Kind() != tc.to.Storage() {
			t.Errorf("Coerce(%s, %s) stores %s", tc.src, tc.to, v.Kind())
		}
	}
}

func TestConcurrentEval(t *testing.T) {
	c := &Compiler{}
	x := mustCompile(t, c, "CASE WHEN s LIKE ns THEN DATE_FORMAT(t, ns) ELSE REGEXP_EXTRACT(s, ns) END", &testScope{
		names: []string{"s", "ns", "t"}, types: []types.Type{types.TVarchar, types.TVarchar, types.TTimestamp}})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				p := []string{"a%", "(b)", "yyyy", "H"}[(g+i)%4]
				x.Eval([]row.Value{row.String("abc"), row.String(p), row.Timestamp(int64(i))})
			}
		}()
	}
	wg.Wait()
}
