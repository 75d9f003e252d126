package expr

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/types"
)

// testScope resolves column names case-insensitively.
type testScope struct {
	names []string
	types []types.Type
}

func (s *testScope) Resolve(ref *ast.ColumnRef) (int, types.Type, error) {
	name := ref.Parts[len(ref.Parts)-1].Name
	for i, n := range s.names {
		if strings.EqualFold(n, name) {
			return i, s.types[i], nil
		}
	}
	return 0, types.Type{}, fmt.Errorf("%s: unknown column %s", ref.Pos, name)
}

// errSink collects run-time errors.
type errSink struct {
	mu   sync.Mutex
	errs []string
}

func (e *errSink) add(err error) {
	e.mu.Lock()
	e.errs = append(e.errs, err.Error())
	e.mu.Unlock()
}

func (e *errSink) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.errs
	e.errs = nil
	return out
}

// render writes a value for comparison with testdata: NULL, strings
// quoted, everything else as CAST(... AS STRING) writes it.
func render(c *Compiler, v row.Value, t types.Type) string {
	if v.IsNull() {
		return "NULL"
	}
	if t.IsString() {
		return "'" + strings.ReplaceAll(v.AsString(), "'", "''") + "'"
	}
	if t.Kind == types.Null {
		return "?" + v.String()
	}
	return c.FormatValue(v, t)
}

func renderType(t types.Type) string {
	return t.WithNull(false).String()
}

// fixedNow is the clock of the tests: 2024-02-29 13:45:30.250 UTC.
var fixedNow = time.Date(2024, 2, 29, 13, 45, 30, 250e6, time.UTC)

func newTestCompiler(sink *errSink) *Compiler {
	return &Compiler{Now: func() time.Time { return fixedNow }, OnError: sink.add}
}

// TestExprs runs testdata/exprs.txt: see the file's header for the format.
func TestExprs(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, file := range files {
		runExprFile(t, file)
	}
}

func runExprFile(t *testing.T, file string) {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sink := &errSink{}
	c := newTestCompiler(sink)
	scope := &testScope{}
	var vals []row.Value
	sc := bufio.NewScanner(f)
	lineNo := 0
	cases := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		where := fmt.Sprintf("%s:%d", file, lineNo)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "zone:"):
			loc, err := time.LoadLocation(strings.TrimSpace(strings.TrimPrefix(line, "zone:")))
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			c.Location = loc
			continue
		case strings.HasPrefix(line, "cols:"):
			scope = parseCols(t, where, strings.TrimPrefix(line, "cols:"))
			vals = nil
			continue
		case strings.HasPrefix(line, "row:"):
			vals = parseRow(t, where, c, scope, strings.TrimPrefix(line, "row:"))
			continue
		}
		src, want, ok := strings.Cut(line, " => ")
		if !ok {
			t.Fatalf("%s: a case is `expr => value : type` or `expr => error: message`", where)
		}
		cases++
		want = strings.TrimSpace(want)
		e, err := parseExpr(src)
		if err != nil {
			t.Errorf("%s: test parser: %v", where, err)
			continue
		}
		x, err := c.Compile(e, scope)
		if msg, isErr := strings.CutPrefix(want, "error: "); isErr {
			if err == nil {
				t.Errorf("%s: %s: compiled (%s), want error %q", where, src, renderType(x.Type), msg)
			} else if err.Error() != msg {
				t.Errorf("%s: %s:\n got error %q\nwant error %q", where, src, err.Error(), msg)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %s: %v", where, src, err)
			continue
		}
		wantRun := ""
		if i := strings.Index(want, " ! "); i >= 0 {
			want, wantRun = strings.TrimSpace(want[:i]), strings.TrimSpace(want[i+3:])
		}
		wantVal, wantType, _ := strings.Cut(want, " : ")
		got := x.Eval(vals)
		if g := render(c, got, x.Type); g != strings.TrimSpace(wantVal) {
			t.Errorf("%s: %s = %s, want %s", where, src, g, wantVal)
		}
		if g := renderType(x.Type); wantType != "" && g != strings.TrimSpace(wantType) {
			t.Errorf("%s: %s has type %s, want %s", where, src, g, wantType)
		}
		if got.Kind() != x.Type.Storage() && !got.IsNull() && x.Type.Kind != types.Null {
			t.Errorf("%s: %s: value kind %s does not match type %s's storage %s", where, src, got.Kind(), x.Type, x.Type.Storage())
		}
		runErrs := sink.take()
		switch {
		case wantRun == "" && len(runErrs) > 0:
			t.Errorf("%s: %s: unexpected run-time errors %q", where, src, runErrs)
		case wantRun != "" && (len(runErrs) == 0 || !strings.Contains(runErrs[0], wantRun)):
			t.Errorf("%s: %s: run-time errors %q, want one containing %q", where, src, runErrs, wantRun)
		}
		// A constant expression folds to the same value.
		if x.Const {
			if g := render(c, x.Eval(nil), x.Type); g != render(c, got, x.Type) {
				t.Errorf("%s: %s: constant evaluates to %s without a row", where, src, g)
			}
			sink.take()
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d cases", file, cases)
}

func parseCols(t *testing.T, where, text string) *testScope {
	toks, err := lexExpr(text)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	p := &exprParser{toks: toks}
	s := &testScope{}
	for p.peek().kind != 'e' {
		name := p.next()
		tn, err := p.typeName()
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		typ, err := types.FromAST(tn)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if strings.EqualFold(name.text, "rt") {
			typ.Time = types.RowTime
		}
		s.names = append(s.names, name.text)
		s.types = append(s.types, typ)
		p.op(",")
	}
	return s
}

func parseRow(t *testing.T, where string, c *Compiler, s *testScope, text string) []row.Value {
	toks, err := lexExpr(text + ")")
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	p := &exprParser{toks: toks}
	list, err := p.list()
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	if len(list) != len(s.names) {
		t.Fatalf("%s: %d values for %d columns", where, len(list), len(s.names))
	}
	out := make([]row.Value, len(list))
	for i, e := range list {
		x, err := c.Compile(e, nil)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		x, err = c.convertExplicit(ast.Pos{}, x, s.types[i], false, true)
		if err != nil {
			t.Fatalf("%s: column %s: %v", where, s.names[i], err)
		}
		out[i] = x.Eval(nil)
	}
	return out
}
