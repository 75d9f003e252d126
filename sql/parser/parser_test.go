package parser

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/sql/ast"
)

var update = flag.Bool("update", false, "rewrite the golden files and errors.txt")

// nexmarkVars are test values for the ${VAR} placeholders of the Nexmark
// scripts.
var nexmarkVars = map[string]string{
	"TPS": "10000000", "EVENTS_NUM": "100000000", "PERSON_PROPORTION": "1",
	"AUCTION_PROPORTION": "3", "BID_PROPORTION": "46", "BOOTSTRAP_SERVERS": "localhost:9092",
	"NEXMARK_TABLE": "datagen", "FLINK_HOME": "/opt/flink", "NEXMARK_DIR": "/opt/nexmark",
	"SUBMIT_TIME": "1700000000000",
}

func substitute(t testing.TB, s string) string {
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			return s
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			t.Fatalf("unterminated placeholder in %q", s[i:])
		}
		v, ok := nexmarkVars[s[i+2:i+j]]
		if !ok {
			t.Fatalf("no test value for placeholder %s", s[i:i+j+1])
		}
		s = s[:i] + v + s[i+j+1:]
	}
}

// stripPos returns a deep copy of v with every ast.Pos zeroed, for
// comparing trees parsed from different texts.
func stripPos(v any) any {
	rv := reflect.ValueOf(v)
	out := reflect.New(rv.Type()).Elem()
	copyNoPos(out, rv)
	return out.Interface()
}

var posType = reflect.TypeOf(ast.Pos{})

func copyNoPos(dst, src reflect.Value) {
	if src.Type() == posType {
		return
	}
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		n := reflect.New(src.Type().Elem())
		copyNoPos(n.Elem(), src.Elem())
		dst.Set(n)
	case reflect.Interface:
		if src.IsNil() {
			return
		}
		e := reflect.New(src.Elem().Type()).Elem()
		copyNoPos(e, src.Elem())
		dst.Set(e)
	case reflect.Struct:
		for i := 0; i < src.NumField(); i++ {
			copyNoPos(dst.Field(i), src.Field(i))
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := 0; i < src.Len(); i++ {
			copyNoPos(s.Index(i), src.Index(i))
		}
		dst.Set(s)
	default:
		dst.Set(src)
	}
}

// dump prints a tree compactly and deterministically: (Type Field:value
// ...), leaving out positions and zero fields.
func dump(v any) string {
	var b strings.Builder
	dumpValue(&b, reflect.ValueOf(v))
	return b.String()
}

func dumpValue(b *strings.Builder, v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			b.WriteString("nil")
			return
		}
		dumpValue(b, v.Elem())
	case reflect.Struct:
		t := v.Type()
		if t == reflect.TypeOf(ast.Ident{}) {
			id := v.Interface().(ast.Ident)
			if id.Quoted {
				b.WriteString(quoteIdent(id.Name))
			} else {
				b.WriteString(id.Name)
			}
			return
		}
		b.WriteString("(" + t.Name())
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			if f.Type() == posType || f.IsZero() {
				continue
			}
			b.WriteString(" " + t.Field(i).Name + ":")
			dumpValue(b, f)
		}
		b.WriteString(")")
	case reflect.Slice:
		b.WriteString("[")
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				b.WriteString(" ")
			}
			dumpValue(b, v.Index(i))
		}
		b.WriteString("]")
	case reflect.String:
		fmt.Fprintf(b, "%q", v.String())
	default:
		fmt.Fprint(b, v.Interface())
	}
}

// roundTrip checks Parse(Format(s)) == s, positions aside.
func roundTrip(t testing.TB, s *ast.Script) {
	t.Helper()
	out := FormatScript(s)
	s2, err := ParseScript(out)
	if err != nil {
		t.Fatalf("formatted script does not parse: %v\n%s", err, out)
	}
	if a, b := stripPos(s), stripPos(s2); !reflect.DeepEqual(a, b) {
		t.Fatalf("round trip changed the tree\nformatted:\n%s\nbefore: %s\nafter:  %s", out, dump(a), dump(b))
	}
}

// nexmarkFiles are the reference queries and DDL scripts: those the
// nexmarksql package embeds, and the others kept as test data here.
var nexmarkFiles = []string{"../nexmarksql/queries/*.sql", "testdata/nexmark/*.sql"}

func globAll(pats ...string) []string {
	var files []string
	for _, pat := range pats {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	return files
}

func TestNexmark(t *testing.T) {
	files := globAll(nexmarkFiles...)
	if len(files) < 28 {
		t.Fatalf("want the 24 queries and 4 DDL scripts, found %d files", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			s, err := ParseScript(substitute(t, string(src)))
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Statements) == 0 {
				t.Fatal("no statements")
			}
			roundTrip(t, s)
		})
	}
}

// TestGolden parses testdata/golden/*.sql and compares, statement by
// statement, the canonical form (Format) and the tree (dump) with the
// .golden file next to it. go test -update rewrites the golden files.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/golden/*.sql")
	if len(files) == 0 {
		t.Fatal("no golden inputs")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			s, err := ParseScript(string(src))
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, s)
			var b strings.Builder
			for _, st := range s.Statements {
				fmt.Fprintf(&b, "-- %s\n%s;\n%s\n\n", st.Start(), Format(st), dump(st))
			}
			golden := strings.TrimSuffix(file, ".sql") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got := b.String(); got != string(want) {
				t.Errorf("%s differs from the parse (go test -update rewrites it); got:\n%s", golden, got)
			}
		})
	}
}

// TestErrors checks the exact error of each bad input in
// testdata/errors.txt: blocks separated by blank lines, the input's lines
// followed by one line "==> error".
func TestErrors(t *testing.T) {
	const file = "testdata/errors.txt"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(strings.TrimSpace(string(data)), "\n\n")
	var out strings.Builder
	for i, blk := range blocks {
		lines := strings.Split(blk, "\n")
		var in []string
		want := ""
		for _, l := range lines {
			if strings.HasPrefix(l, "==> ") {
				want = strings.TrimPrefix(l, "==> ")
			} else if !strings.HasPrefix(l, "#") {
				in = append(in, l)
			}
		}
		src := strings.Join(in, "\n")
		_, err := ParseScript(src)
		got := "no error"
		if err != nil {
			got = err.Error()
			if _, ok := err.(*Error); !ok {
				t.Errorf("block %d: error is %T, not *Error", i+1, err)
			}
		}
		for _, l := range lines {
			if !strings.HasPrefix(l, "==> ") {
				out.WriteString(l + "\n")
			}
		}
		out.WriteString("==> " + got + "\n\n")
		if !*update && got != want {
			t.Errorf("block %d:\n%s\n got: %s\nwant: %s", i+1, src, got, want)
		}
		if got == "no error" {
			t.Errorf("block %d parses but should not:\n%s", i+1, src)
		}
	}
	if *update {
		if err := os.WriteFile(file, []byte(strings.TrimSuffix(out.String(), "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, pats := range [][]string{nexmarkFiles, {"testdata/golden/*.sql"}} {
		for _, file := range globAll(pats...) {
			src, err := os.ReadFile(file)
			if err == nil {
				f.Add(substitute(f, string(src)))
			}
		}
	}
	if data, err := os.ReadFile("testdata/errors.txt"); err == nil {
		for _, blk := range strings.Split(string(data), "\n\n") {
			f.Add(blk)
		}
	}
	f.Fuzz(func(t *testing.T, src string) {
		s, err := ParseScript(src)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error is %T, not *Error: %v", err, err)
			}
			return
		}
		roundTrip(t, s)
	})
}

// TestExprTree checks precedence and the special forms through the tree.
func TestExprTree(t *testing.T) {
	cases := []struct{ in, want string }{
		{"a OR b AND NOT c = d", "(Binary Op:\"OR\" L:(ColumnRef Parts:[a]) R:(Binary Op:\"AND\" L:(ColumnRef Parts:[b]) R:(Unary Op:\"NOT\" X:(Binary Op:\"=\" L:(ColumnRef Parts:[c]) R:(ColumnRef Parts:[d])))))"},
		{"1 + 2 * -3 || 'x'", "(Binary Op:\"||\" L:(Binary Op:\"+\" L:(NumberLit Text:\"1\") R:(Binary Op:\"*\" L:(NumberLit Text:\"2\") R:(Unary Op:\"-\" X:(NumberLit Text:\"3\")))) R:(StringLit Value:\"x\"))"},
		{"a != b", "(Binary Op:\"<>\" L:(ColumnRef Parts:[a]) R:(ColumnRef Parts:[b]))"},
		{"x NOT BETWEEN SYMMETRIC 1 + 1 AND 2 AND y", "(Binary Op:\"AND\" L:(Between X:(ColumnRef Parts:[x]) Lo:(Binary Op:\"+\" L:(NumberLit Text:\"1\") R:(NumberLit Text:\"1\")) Hi:(NumberLit Text:\"2\") Not:true Symmetric:true) R:(ColumnRef Parts:[y]))"},
		{"SUBSTRING(s FROM 2 FOR 3)", "(Call Name:SUBSTRING Args:[(ColumnRef Parts:[s]) (NumberLit Text:\"2\") (NumberLit Text:\"3\")])"},
		{"TRIM(LEADING 'x' FROM s)", "(Call Name:TRIM Args:[(ColumnRef Parts:[s]) (StringLit Value:\"LEADING\") (StringLit Value:\"x\")])"},
		{"TRIM(s)", "(Call Name:TRIM Args:[(ColumnRef Parts:[s]) (StringLit Value:\"BOTH\") (StringLit Value:\" \")])"},
		{"POSITION('a' IN s)", "(Call Name:POSITION Args:[(StringLit Value:\"a\") (ColumnRef Parts:[s])])"},
		{"`a``b`.c[1].d", "(FieldAccess X:(Index X:(ColumnRef Parts:[`a``b` c]) Index:(NumberLit Text:\"1\")) Field:d)"},
		{"(x).f", "(FieldAccess X:(ColumnRef Parts:[x]) Field:f)"},
		{"INTERVAL -'1' DAY TO HOUR", "(IntervalLit Value:\"1\" Negative:true Unit:\"DAY\" ToUnit:\"HOUR\")"},
		{"count(DISTINCT x) FILTER (WHERE x > 1)", "(Call Name:count Args:[(ColumnRef Parts:[x])] Distinct:true Filter:(Binary Op:\">\" L:(ColumnRef Parts:[x]) R:(NumberLit Text:\"1\")))"},
		{"a IS NOT DISTINCT FROM b", "(IsDistinct L:(ColumnRef Parts:[a]) R:(ColumnRef Parts:[b]) Not:true)"},
		{"NOT EXISTS (SELECT 1)", "(Exists Query:(Select Items:[(SelectItem Expr:(NumberLit Text:\"1\"))]) Not:true)"},
		{"CAST(x AS DOUBLE PRECISION NOT NULL)", "(Cast X:(ColumnRef Parts:[x]) To:(TypeName Name:\"DOUBLE\" NotNull:true))"},
		{"day + hour", "(Binary Op:\"+\" L:(ColumnRef Parts:[day]) R:(ColumnRef Parts:[hour]))"},
		{"CURRENT_TIMESTAMP", "(Call Name:CURRENT_TIMESTAMP)"},
	}
	for _, c := range cases {
		e, err := ParseExpr(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if got := dump(e); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.in, got, c.want)
		}
		e2, err := ParseExpr(Format(e))
		if err != nil || !reflect.DeepEqual(stripPos(e), stripPos(e2)) {
			t.Errorf("%s: round trip through %q failed: %v", c.in, Format(e), err)
		}
	}
}

// TestCoverage checks that the golden inputs and the Nexmark scripts
// between them produce every node type of package ast.
func TestCoverage(t *testing.T) {
	seen := map[string]bool{}
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			seen[v.Type().Name()] = true
			for i := 0; i < v.NumField(); i++ {
				walk(v.Field(i))
			}
		case reflect.Slice:
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i))
			}
		}
	}
	for _, pats := range [][]string{nexmarkFiles, {"testdata/golden/*.sql"}} {
		for _, file := range globAll(pats...) {
			src, _ := os.ReadFile(file)
			s, err := ParseScript(substitute(t, string(src)))
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			walk(reflect.ValueOf(s))
		}
	}
	all := []string{"ColumnRef", "NumberLit", "StringLit", "BoolLit", "NullLit", "IntervalLit", "TypedLit",
		"Unary", "Binary", "Like", "Between", "In", "Is", "IsDistinct", "Exists", "Subquery", "Case", "When",
		"Cast", "Extract", "Call", "WindowSpec", "Frame", "FrameBound", "TableArg", "Descriptor", "NamedArg",
		"FieldAccess", "Index", "RowExpr", "ArrayExpr", "Select", "SetOp", "Values", "With", "CTE",
		"SelectItem", "OrderItem", "TableName", "SubqueryRef", "TableFunction", "Join", "Alias",
		"CreateTable", "CreateView", "CreateFunction", "Drop", "Set", "Reset", "Insert", "StatementSet",
		"QueryStatement", "Explain", "Show", "Describe", "TypeName", "ColumnDef", "ComputedColumn",
		"TableElement", "Watermark", "Option", "Ident"}
	var missing []string
	for _, n := range all {
		if !seen[n] {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("no test input produces %v", missing)
	}
}

// TestNoBacktracking parses inputs that an exponential parser would not
// finish: nested POSITION calls without IN, nested parentheses.
func TestNoBacktracking(t *testing.T) {
	deep := strings.Repeat("POSITION(", 300) + "x" + strings.Repeat(" OR y)", 300)
	if _, err := ParseExpr(deep); err != nil {
		t.Fatal(err)
	}
	e, err := ParseExpr("POSITION(a AND b OR c, d)")
	if err != nil {
		t.Fatal(err)
	}
	want := "(Call Name:POSITION Args:[(Binary Op:\"OR\" L:(Binary Op:\"AND\" L:(ColumnRef Parts:[a]) R:(ColumnRef Parts:[b])) R:(ColumnRef Parts:[c])) (ColumnRef Parts:[d])])"
	if got := dump(e); got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

// TestDepthLimit checks that every recursive construct is bounded by the
// nesting limit instead of growing the stack with the input.
func TestDepthLimit(t *testing.T) {
	n := 5000
	for _, src := range []string{
		"SELECT " + strings.Repeat("(", n) + "1",
		"SELECT " + strings.Repeat("POSITION(", n) + "1",
		"SELECT " + strings.Repeat("f(", n) + "1",
		"SELECT " + strings.Repeat("- ", n) + "1",
		"SELECT " + strings.Repeat("NOT ", n) + "1",
		"SELECT " + strings.Repeat("CAST(", n) + "1",
		"SELECT " + strings.Repeat("ARRAY[", n) + "1",
		"SELECT " + strings.Repeat("EXISTS(SELECT ", n) + "1",
		"SELECT * FROM " + strings.Repeat("(", n) + "t",
		"SELECT * FROM TABLE(f(" + strings.Repeat("a => ", n) + "1",
		"CREATE TABLE t (a " + strings.Repeat("ARRAY<", n) + "INT",
		strings.Repeat("(", n) + "SELECT 1",
		"SELECT CASE WHEN " + strings.Repeat("CASE WHEN ", n) + "1",
	} {
		_, err := ParseScript(src)
		if err == nil || !strings.Contains(err.Error(), "nesting too deep") {
			t.Errorf("%.40s...: got %v, want the nesting limit", src, err)
		}
	}
}

// BenchmarkParseScript parses a script of 100 statements (the golden
// queries, twice) and the Nexmark q5 script.
func BenchmarkParseScript(b *testing.B) {
	queries, err := os.ReadFile("testdata/golden/queries.sql")
	if err != nil {
		b.Fatal(err)
	}
	q5, err := os.ReadFile("../nexmarksql/queries/q5.sql")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, src string }{
		{"queries", strings.Repeat(string(queries), 2)},
		{"q5", string(q5)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.src)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseScript(c.src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestPositions checks that nodes record where they start.
func TestPositions(t *testing.T) {
	st, err := ParseStatement("SELECT x,\n  a + `b`.c AS s\nFROM t JOIN u ON t.k = u.k")
	if err != nil {
		t.Fatal(err)
	}
	sel := st.(*ast.QueryStatement).Query.(*ast.Select)
	bin := sel.Items[1].Expr.(*ast.Binary)
	check := func(what string, got ast.Pos, line, col, off int) {
		t.Helper()
		if got != (ast.Pos{Line: line, Col: col, Offset: off}) {
			t.Errorf("%s at %+v, want line %d column %d offset %d", what, got, line, col, off)
		}
	}
	check("statement", st.Start(), 1, 1, 0)
	check("a + b.c", bin.Pos, 2, 3, 12)
	check("`b`.c", bin.R.Start(), 2, 7, 16)
	check("alias", sel.Items[1].Alias.Pos, 2, 16, 25)
	j := sel.From.(*ast.Join)
	check("join", j.Pos, 3, 6, 32)
	check("u", j.Right.Start(), 3, 13, 39)
	check("ON condition", j.On.Start(), 3, 18, 44)
}
