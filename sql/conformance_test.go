package sql_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/connect"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/expr"
	"github.com/sluicehq/sluice/sql/internal/oracle"
	"github.com/sluicehq/sluice/sql/parser"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/sluicehq/sluice/stream"
)

// A conformance file (testdata/queries/*.sqltest) is a list of sections,
// each opened by a line starting with "-- ":
//
//	-- table NAME        CREATE TABLE NAME ...; its 'path' option may be
//	                     '${NAME}': the rows below, written to a JSON file
//	-- rows NAME         the table's rows, one JSON object a line, in
//	                     arrival order
//	-- setup             more statements (CREATE VIEW, CREATE FUNCTION,
//	                     CREATE TABLE ... WITH ('connector' = 'capture'))
//	-- name: TEXT        starts a case; sections before the first case
//	                     are shared by all the file's cases
//	-- query             one statement: a query, or INSERT INTO a
//	                     'capture' table
//	-- expect            the final materialised result: one row a line,
//	                     values separated by " | ", in any order
//	                     (compared sorted, as a multiset); NULL is NULL
//	-- expect-changelog  optional: the exact changelog at parallelism 1,
//	                     one change a line: "+I | v | ...", "-U | ...",
//	                     in the order the query emits it
//	-- oracle: none REASON   the oracle cannot evaluate the case
//	-- parallelism 1,2   (default 1,2)
//
// Lines starting with "#" outside queries are comments. Every case runs
// at each parallelism; its result must equal the expectation, and so
// must the oracle's (sql/internal/oracle) unless it says none.
type confCase struct {
	file, name string
	line       int
	tables     []confTable
	setup      []string
	query      string
	expect     []string
	hasExpect  bool
	// changelog is the exact changelog at parallelism 1 ("+I | v | ..."),
	// when the case gives one.
	changelog   []string
	oracleNone  string
	parallelism []int
}

type confTable struct {
	name, ddl string
	rows      []string
}

func parseConformance(path string) ([]*confCase, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	shared := &confCase{file: filepath.Base(path), parallelism: []int{1, 2}}
	cur := shared
	var cases []*confCase
	var section, arg string
	var buf []string
	tableIdx := map[string]int{}
	flush := func() error {
		text := strings.TrimSpace(strings.Join(buf, "\n"))
		buf = nil
		switch section {
		case "", "name:":
		case "table":
			cur.tables = append(cur.tables, confTable{name: arg, ddl: text})
			tableIdx[strings.ToLower(arg)] = len(cur.tables) - 1
		case "rows":
			i, ok := tableIdx[strings.ToLower(arg)]
			if !ok || i >= len(cur.tables) {
				return fmt.Errorf("rows of %s before its table", arg)
			}
			for _, l := range strings.Split(text, "\n") {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
					cur.tables[i].rows = append(cur.tables[i].rows, l)
				}
			}
		case "setup":
			cur.setup = append(cur.setup, text)
		case "query":
			cur.query = text
		case "expect-changelog":
			for _, l := range strings.Split(text, "\n") {
				if l = strings.TrimSpace(l); l != "" {
					cur.changelog = append(cur.changelog, l)
				}
			}
		case "expect":
			cur.hasExpect = true
			for _, l := range strings.Split(text, "\n") {
				if l = strings.TrimSpace(l); l != "" {
					cur.expect = append(cur.expect, l)
				}
			}
		default:
			return fmt.Errorf("unknown section %q", section)
		}
		return nil
	}
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if !strings.HasPrefix(line, "-- ") {
			if section != "query" && section != "setup" && section != "table" && strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			buf = append(buf, line)
			continue
		}
		if err := flush(); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		head := strings.TrimPrefix(line, "-- ")
		word, rest, _ := strings.Cut(head, " ")
		section, arg = word, strings.TrimSpace(rest)
		switch word {
		case "name:":
			c := &confCase{file: shared.file, name: arg, line: n, parallelism: shared.parallelism,
				tables: append([]confTable(nil), shared.tables...), setup: append([]string(nil), shared.setup...)}
			cases = append(cases, c)
			cur = c
			for k := range tableIdx {
				delete(tableIdx, k)
			}
			for i, t := range c.tables {
				tableIdx[strings.ToLower(t.name)] = i
			}
		case "oracle:":
			cur.oracleNone = arg
			section = ""
		case "parallelism":
			cur.parallelism = nil
			for _, p := range strings.Split(arg, ",") {
				v, err := strconv.Atoi(strings.TrimSpace(p))
				if err != nil {
					return nil, fmt.Errorf("%s:%d: parallelism %q", path, n, arg)
				}
				cur.parallelism = append(cur.parallelism, v)
			}
			section = ""
		}
	}
	if err := flush(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", path, n, err)
	}
	for _, c := range cases {
		if c.query == "" || !c.hasExpect {
			return nil, fmt.Errorf("%s:%d: case %q needs a query and an expect section", path, c.line, c.name)
		}
	}
	return cases, sc.Err()
}

// ------------------------------------------------------------ functions

// plusOne is the Go scalar UDF of the suite: x + 1 for a BIGINT.
var plusOne = expr.ScalarFunc{
	Name:          "plus_one",
	Deterministic: true,
	Check: func(args []types.Type) (types.Type, error) {
		if len(args) != 1 || !args[0].IsInteger() {
			return types.Type{}, fmt.Errorf("plus_one takes one integer")
		}
		return types.TBigInt.WithNull(args[0].NotNull), nil
	},
	Eval: func(args []row.Value) row.Value {
		if args[0].IsNull() {
			return row.Null()
		}
		return row.Int(args[0].AsInt() + 1)
	},
}

// sumSquares is the Go UDAF of the suite: the sum of its argument's
// squares (a BIGINT), retractable.
type sumSquares struct{}

func (sumSquares) Name() string                        { return "sum_squares" }
func (sumSquares) CreateAccumulator() exec.Accumulator { return &sumSqAcc{} }
func (sumSquares) DecodeAccumulator(b []byte) (exec.Accumulator, error) {
	v, _, err := row.DecodeValue(b)
	if err != nil {
		return nil, err
	}
	return &sumSqAcc{sum: v.AsInt()}, nil
}

type sumSqAcc struct{ sum int64 }

func (a *sumSqAcc) Accumulate(args []row.Value) {
	if !args[0].IsNull() {
		a.sum += args[0].AsInt() * args[0].AsInt()
	}
}
func (a *sumSqAcc) Retract(args []row.Value) {
	if !args[0].IsNull() {
		a.sum -= args[0].AsInt() * args[0].AsInt()
	}
}
func (a *sumSqAcc) Value() row.Value               { return row.Int(a.sum) }
func (a *sumSqAcc) AppendBinary(dst []byte) []byte { return row.Int(a.sum).AppendBinary(dst) }

func sumSquaresType(args []types.Type) (types.Type, error) {
	if len(args) != 1 || !args[0].IsInteger() {
		return types.Type{}, fmt.Errorf("sum_squares takes one integer")
	}
	return types.TBigInt.WithNull(true), nil
}

// ------------------------------------------------------------ materialising

// materialized is a multiset of formatted rows built from a changelog:
// +I/+U add a row, -U/-D remove one; removing a row not present is an
// error.
type materialized struct {
	mu     sync.Mutex
	counts map[string]int
	errs   []string
	log    []string
}

func newMaterialized() *materialized { return &materialized{counts: map[string]int{}} }

func (m *materialized) apply(c exec.Change, colTypes []types.Type) {
	line := formatRow(c.Vals, colTypes)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.log = append(m.log, c.Op.String()+" | "+line)
	if c.Op.IsRetract() {
		if m.counts[line] == 0 {
			if len(m.errs) < 5 {
				m.errs = append(m.errs, fmt.Sprintf("%s retracts [%s], which is not in the result", c.Op, line))
			}
			return
		}
		m.counts[line]--
		return
	}
	m.counts[line]++
}

func (m *materialized) rows() []string {
	var out []string
	for l, n := range m.counts {
		for i := 0; i < n; i++ {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

func formatRow(vals []row.Value, ts []types.Type) string {
	cells := make([]string, len(vals))
	for i, v := range vals {
		cells[i] = oracle.FormatValue(v, ts[i])
	}
	return strings.Join(cells, " | ")
}

// captureSink materialises per sink subtask (the changes of one key come
// in order to one subtask), merged at the end.
type captureSink struct {
	mu    sync.Mutex
	parts []*materialized
	types []types.Type
}

func (s *captureSink) Open(context.Context, stream.SubtaskInfo) (stream.SinkWriter[exec.Change], error) {
	m := newMaterialized()
	s.mu.Lock()
	s.parts = append(s.parts, m)
	s.mu.Unlock()
	return &captureWriter{m: m, types: s.types}, nil
}

type captureWriter struct {
	m     *materialized
	types []types.Type
}

func (w *captureWriter) Write(_ context.Context, recs []exec.Change) error {
	for _, c := range recs {
		w.m.apply(c, w.types)
	}
	return nil
}

func (w *captureWriter) Close(context.Context) error { return nil }

func (s *captureSink) result() ([]string, []string) {
	var rows, errs []string
	for _, p := range s.parts {
		rows = append(rows, p.rows()...)
		errs = append(errs, p.errs...)
	}
	sort.Strings(rows)
	return rows, errs
}

// ------------------------------------------------------------ running

func newConfSession(t *testing.T, p int) (*sql.Session, *[]*captureSink) {
	t.Helper()
	sess := sql.NewSession(sql.Options{StreamOptions: []stream.Option{stream.WithBatchSize(1)}})
	if err := sess.RegisterFunction(plusOne, "com.example.PlusOne"); err != nil {
		t.Fatal(err)
	}
	sess.RegisterAggregate("sum_squares", sumSquares{}, sumSquaresType, "com.example.SumSquares")
	var sinks []*captureSink
	sess.RegisterSink("capture", sql.SinkConnector{AcceptsUpdates: true, Open: func(st connect.SinkTable) (stream.Sink[exec.Change], error) {
		s := &captureSink{}
		for _, c := range st.Columns {
			s.types = append(s.types, c.Type)
		}
		sinks = append(sinks, s)
		return s, nil
	}})
	if err := sess.Set("parallelism.default", strconv.Itoa(p)); err != nil {
		t.Fatal(err)
	}
	return sess, &sinks
}

// setupScript writes the case's input files and returns its DDL with
// the paths filled in.
func setupScript(t *testing.T, c *confCase) string {
	dir := t.TempDir()
	var b strings.Builder
	for _, tb := range c.tables {
		path := filepath.Join(dir, tb.name+".json")
		if err := os.WriteFile(path, []byte(strings.Join(tb.rows, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		b.WriteString(strings.ReplaceAll(tb.ddl, "${"+tb.name+"}", path))
		b.WriteString(";\n")
	}
	for _, s := range c.setup {
		b.WriteString(s)
		b.WriteString(";\n")
	}
	return b.String()
}

func runEngine(t *testing.T, c *confCase, p int) ([]string, error) {
	rows, _, err := runEngineLog(t, c, p)
	return rows, err
}

// runEngineLog runs the case and returns its materialised result and
// its changelog (in arrival order at the sink; one sink subtask's
// changes after another's).
func runEngineLog(t *testing.T, c *confCase, p int) ([]string, []string, error) {
	sess, sinks := newConfSession(t, p)
	ctx := context.Background()
	if err := sess.ExecuteScript(ctx, setupScript(t, c)); err != nil {
		return nil, nil, fmt.Errorf("setup: %w", err)
	}
	st, err := parser.ParseStatement(c.query)
	if err != nil {
		return nil, nil, err
	}
	switch st := st.(type) {
	case *ast.QueryStatement:
		m := newMaterialized()
		var ts []types.Type
		err := sess.Query(ctx, st.Query, func(cols []sql.Column, _ bool) {
			for _, c := range cols {
				ts = append(ts, c.Type)
			}
		}, func(ch exec.Change) { m.apply(ch, ts) })
		if err != nil {
			return nil, nil, err
		}
		if len(m.errs) > 0 {
			return nil, nil, errors.New(strings.Join(m.errs, "; "))
		}
		return m.rows(), m.log, nil
	case *ast.Insert:
		if err := sess.Execute(ctx, st); err != nil {
			return nil, nil, err
		}
		var rows, errs, log []string
		for _, s := range *sinks {
			r, e := s.result()
			rows, errs = append(rows, r...), append(errs, e...)
			for _, p := range s.parts {
				log = append(log, p.log...)
			}
		}
		if len(errs) > 0 {
			return nil, nil, errors.New(strings.Join(errs, "; "))
		}
		sort.Strings(rows)
		return rows, log, nil
	}
	return nil, nil, fmt.Errorf("the query section must hold a query or an INSERT, not %T", st)
}

func runOracle(c *confCase) ([]string, error) {
	funcs := expr.NewRegistry()
	if err := funcs.RegisterScalar(plusOne.Name, plusOne); err != nil {
		return nil, err
	}
	cat := oracle.NewCatalog(funcs)
	cat.Aggregates["SUM_SQUARES"] = oracle.Aggregate{Fn: sumSquares{}, Result: sumSquaresType}
	rowsOf := map[string][]string{}
	var ddl []string
	for _, tb := range c.tables {
		rowsOf[strings.ToLower(tb.name)] = tb.rows
		ddl = append(ddl, tb.ddl)
	}
	script, err := parser.ParseScript(strings.Join(append(ddl, c.setup...), ";\n"))
	if err != nil {
		return nil, err
	}
	for _, st := range script.Statements {
		switch st := st.(type) {
		case *ast.CreateTable:
			if err := cat.AddTable(st, rowsOf[strings.ToLower(st.Name[len(st.Name)-1].Name)]); err != nil {
				return nil, err
			}
		case *ast.CreateView:
			cat.AddView(st)
		case *ast.CreateFunction:
			// plus_one and sum_squares are known under their own names;
			// a CREATE FUNCTION binding another name is not modelled.
			name := strings.ToUpper(st.Name[len(st.Name)-1].Name)
			switch strings.ToLower(st.Identifier) {
			case "com.example.plusone":
				f := plusOne
				f.Name = name
				funcs.Unregister(name)
				if err := funcs.RegisterScalar(name, f); err != nil {
					return nil, err
				}
			case "com.example.sumsquares":
				cat.Aggregates[name] = cat.Aggregates["SUM_SQUARES"]
			}
		}
	}
	st, err := parser.ParseStatement(c.query)
	if err != nil {
		return nil, err
	}
	var q ast.Query
	switch st := st.(type) {
	case *ast.QueryStatement:
		q = st.Query
	case *ast.Insert:
		q = st.Query
	default:
		return nil, fmt.Errorf("oracle: %T", st)
	}
	res, err := cat.Eval(q)
	if err != nil {
		return nil, err
	}
	ts := make([]types.Type, len(res.Columns))
	for i, col := range res.Columns {
		ts[i] = col.Type
	}
	var rows []string
	for _, r := range res.Rows {
		rows = append(rows, formatRow(r, ts))
	}
	sort.Strings(rows)
	return rows, nil
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func diffRows(want, got []string) string {
	return fmt.Sprintf("want %d rows:\n  %s\ngot %d rows:\n  %s", len(want), strings.Join(want, "\n  "), len(got), strings.Join(got, "\n  "))
}

func equalRows(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestConformance runs every case of testdata/queries at each of its
// parallelisms and against the oracle.
func TestConformance(t *testing.T) {
	files, err := filepath.Glob("testdata/queries/*.sqltest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no conformance files: %v", err)
	}
	for _, f := range files {
		cases, err := parseConformance(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			t.Run(strings.TrimSuffix(c.file, ".sqltest")+"/"+c.name, func(t *testing.T) {
				want := sortedCopy(c.expect)
				if c.oracleNone == "" {
					got, err := runOracle(c)
					if err != nil {
						t.Errorf("%s:%d: oracle: %v", c.file, c.line, err)
					} else if !equalRows(want, got) {
						t.Errorf("%s:%d: the oracle disagrees with the expectation\n%s", c.file, c.line, diffRows(want, got))
					}
				}
				for _, p := range c.parallelism {
					got, log, err := runEngineLog(t, c, p)
					if err != nil {
						t.Errorf("%s:%d: parallelism %d: %v", c.file, c.line, p, err)
						continue
					}
					if p == 1 && c.changelog != nil && !equalRows(c.changelog, log) {
						t.Errorf("%s:%d: the changelog at parallelism 1 differs\nwant:\n  %s\ngot:\n  %s", c.file, c.line, strings.Join(c.changelog, "\n  "), strings.Join(log, "\n  "))
					}
					if !equalRows(want, got) {
						t.Errorf("%s:%d: parallelism %d: the engine disagrees with the expectation\n%s", c.file, c.line, p, diffRows(want, got))
					}
				}
			})
		}
	}
}
