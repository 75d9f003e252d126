package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/connect"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/parser"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/sluicehq/sluice/stream"
)

// SQLStepSpec is a sql step: a Flink SQL query over the rows of the step
// before it, read as the table `input`.
type SQLStepSpec struct {
	Query string
	// QueryPos is where the query is in the file.
	QueryPos Pos
	// Columns declares SQL types of input fields (optional).
	Columns []SQLColumnSpec
	// inFile maps a position in the query (line, column from 1) to its
	// place in the file; ok is false where it cannot tell.
	inFile func(line, col int) (int, int, bool)
}

// queryPlace returns how positions in the query scalar n map to the
// file: a one-line plain or quoted scalar, or a literal block (|).
func queryPlace(e *errs, n *yaml.Node) func(line, col int) (int, int, bool) {
	switch n.Style {
	case 0, yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		shift := 0
		if n.Style != 0 {
			shift = 1
		}
		l0, c0 := n.Line, n.Column
		return func(line, col int) (int, int, bool) {
			return l0, c0 + shift + col - 1, line == 1
		}
	case yaml.LiteralStyle:
		lines := strings.Split(string(e.src), "\n")
		indent := -1
		for i := n.Line; i < len(lines); i++ { // lines[n.Line] is the line after the "|"
			if t := strings.TrimLeft(lines[i], " "); t != "" {
				indent = len(lines[i]) - len(t)
				break
			}
		}
		l0 := n.Line
		return func(line, col int) (int, int, bool) {
			return l0 + line, indent + col, indent >= 0
		}
	}
	return func(int, int) (int, int, bool) { return 0, 0, false }
}

// sqlError is a planning error of a sql step at its place in the file
// when the message starts with the query position ("line L, column C:
// ..."), else at the query.
func sqlError(ss *SQLStepSpec, msg string) *SpecError {
	var l, c int
	if n, _ := fmt.Sscanf(msg, "line %d, column %d:", &l, &c); n == 2 && ss.inFile != nil {
		if fl, fc, ok := ss.inFile(l, c); ok {
			rest := strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
			return &SpecError{File: ss.QueryPos.File, Line: fl, Column: fc, Field: ss.QueryPos.Field, Msg: rest}
		}
	}
	return ss.QueryPos.errorf("%s", msg)
}

// SQLColumnSpec is one `field: TYPE` entry of a sql step's columns.
type SQLColumnSpec struct {
	Name string
	// Type is the SQL type as written (BIGINT, DOUBLE, DECIMAL(10, 2),
	// STRING, TIMESTAMP(3), ...).
	Type string
	typ  types.Type
	Pos  Pos
}

// sqlTable is the name of the table a sql step's query reads.
const sqlTable = "input"

// sqlOpField is the field holding the changelog operation (+I, -U, +U,
// -D) of an updating sql step's rows.
const sqlOpField = "op"

// sqlRowtime is the pseudo-column holding a row's event time.
const sqlRowtime = "rowtime"

func parseSQLStep(e *errs, v *yaml.Node, path string) *SQLStepSpec {
	v = resolve(v)
	if v != nil && v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
		if strings.TrimSpace(v.Value) == "" {
			e.at(v, path, "must be a SQL query such as SELECT user, count(*) AS n FROM input GROUP BY user")
			return nil
		}
		return &SQLStepSpec{Query: v.Value, QueryPos: Pos{File: e.file, Line: v.Line, Column: v.Column, Field: path}, inFile: queryPlace(e, v)}
	}
	o := newObj(e, v, path, "a query, or {query: ..., columns: {field: SQL type}}")
	if o == nil {
		return nil
	}
	s := &SQLStepSpec{Query: o.reqStr("query", "the SQL query, reading the table input"), QueryPos: o.pos("query")}
	if qn := o.get("query"); qn != nil && qn.Kind == yaml.ScalarNode {
		s.inFile = queryPlace(e, qn)
	}
	if co := o.object("columns", "field: SQL type (BIGINT, DOUBLE, STRING, TIMESTAMP(3), ...)"); co != nil {
		for _, k := range co.keys {
			n := co.get(k)
			p := Pos{File: e.file, Line: n.Line, Column: n.Column, Field: co.sub(k)}
			if !identRe.MatchString(k) {
				e.at(co.knod[k], co.sub(k), "%q is not a field name (letters, digits and _)", k)
				continue
			}
			if n.Kind != yaml.ScalarNode || n.Value == "" {
				e.at(n, co.sub(k), "must be a SQL type such as BIGINT, DOUBLE, DECIMAL(10, 2), STRING, BOOLEAN or TIMESTAMP(3), not %s", describe(n))
				continue
			}
			t, err := parseSQLType(n.Value)
			if err != nil {
				e.at(n, co.sub(k), "%v", err)
				continue
			}
			s.Columns = append(s.Columns, SQLColumnSpec{Name: k, Type: n.Value, typ: t, Pos: p})
		}
	}
	o.done("query", "columns")
	return s
}

// parseSQLType reads a SQL type name (as a CAST target).
func parseSQLType(text string) (types.Type, error) {
	bad := fmt.Errorf("%q is not a SQL type; use BOOLEAN, INT, BIGINT, DOUBLE, DECIMAL(p, s), STRING, DATE or TIMESTAMP(3)", text)
	if strings.Count(text, "(") != strings.Count(text, ")") {
		bad = fmt.Errorf("%q is not a SQL type: in a {...} mapping, quote a type with a comma, like \"DECIMAL(10, 2)\"", text)
	}
	x, err := parser.ParseExpr("CAST(NULL AS " + text + ")")
	if err != nil {
		return types.Type{}, bad
	}
	c, ok := x.(*ast.Cast)
	if !ok || c.To == nil {
		return types.Type{}, bad
	}
	t, err := types.FromAST(c.To)
	if err != nil {
		return types.Type{}, fmt.Errorf("%q: %v", text, err)
	}
	if t.Kind == types.Row || t.Kind == types.Array || t.Kind == types.Map {
		return types.Type{}, fmt.Errorf("%q: nested types are not supported as sql step columns; declare the field STRING (its JSON text) and read it with JSON functions", text)
	}
	return t, nil
}

// sqlPlan is a planned sql step.
type sqlPlan struct {
	query *sql.BoundQuery
	// in are the input positions of the table's columns, types their
	// SQL types; rowtime: the table's last column is the record's
	// timestamp.
	in      []int
	types   []types.Type
	names   []string
	rowtime bool
	// out are the result columns' SQL types; updating: rows carry their
	// changelog operation in the first field.
	out      []types.Type
	updating bool
	// opIn is the input position of the rows' change (a changelog
	// source's op field), -1 when the input is append-only.
	opIn int
	// normalized: the input comes through the changelog's normalisation,
	// so a retraction is a copy of a row inserted before.
	normalized bool
	why        string
	schema     *row.Schema
	stage      string
}

// planSQL plans a sql step over the fields cur; eventTime says the
// records' timestamps are event times with watermarks.
func planSQL(e *errs, st StepSpec, path string, cur *fieldSet, eventTime, changelog bool) *sqlPlan {
	ss := st.SQL
	if ss == nil {
		return nil
	}
	sp := &sqlPlan{stage: path, opIn: -1}
	declared := map[string]types.Type{}
	for _, c := range ss.Columns {
		declared[c.Name] = c.typ
		if !cur.open {
			if _, ok := cur.idx[c.Name]; !ok {
				e.list = append(e.list, c.Pos.errorf("unknown field %q; fields here: %s", c.Name, strings.Join(cur.known(), ", ")))
			}
		}
	}
	// The table's columns: every field here; while the records still
	// have the input's shape, the fields the query names (and those
	// declared) are extracted from the input like any step's.
	var names []string
	if cur.open {
		q, err := parser.ParseQuery(ss.Query)
		if err == nil {
			for _, n := range queryFieldRefs(q) {
				if _, ok := cur.resolve(n); !ok {
					continue // not a field of the input: the planner says so
				}
			}
		}
		for _, c := range ss.Columns {
			if _, ok := cur.resolve(c.Name); !ok {
				e.list = append(e.list, c.Pos.errorf("unknown field %q; fields here: %s", c.Name, strings.Join(cur.known(), ", ")))
			}
		}
	}
	names = append(names, cur.names...)
	var cols []sql.BoundColumn
	var untyped []string
	hasRowtime := false
	for _, n := range names {
		i := cur.idx[n]
		if changelog && n == changelogField {
			sp.opIn = i // the change, not a column
			continue
		}
		t, ok := declared[n]
		if !ok {
			t = sqlTypeOfKind(cur.kinds[i])
			if cur.kinds[i] == row.KindNull {
				untyped = append(untyped, n)
			}
		}
		if strings.EqualFold(n, sqlRowtime) {
			hasRowtime = true
		}
		sp.in = append(sp.in, i)
		sp.types = append(sp.types, t)
		sp.names = append(sp.names, n)
		cols = append(cols, sql.BoundColumn{Name: n, Type: t})
	}
	if !hasRowtime {
		t := types.TTimestamp
		if eventTime {
			t.Time = types.RowTime
		}
		cols = append(cols, sql.BoundColumn{Name: sqlRowtime, Type: t, Hidden: true})
		sp.rowtime = true
	}
	sess := sql.NewSession(sql.Options{})
	bind := sess.BindTable
	if changelog {
		bind = sess.BindChangelogTable
	}
	if err := bind(sqlTable, cols); err != nil {
		e.list = append(e.list, ss.QueryPos.errorf("%v", err))
		return nil
	}
	q, err := sess.PlanBound(ss.Query)
	if err != nil {
		msg := err.Error()
		if len(untyped) > 0 && (strings.Contains(msg, "STRING") || strings.Contains(msg, "CHAR")) {
			sort.Strings(untyped)
			msg += fmt.Sprintf(" (fields whose type the pipeline does not know are STRING here: %s; declare their types with sql: {query: ..., columns: {%s: DOUBLE}})", strings.Join(untyped, ", "), untyped[0])
		}
		if l := strings.ToLower(msg); !eventTime && (strings.Contains(l, "rowtime") || strings.Contains(l, "time attribute")) {
			msg += " (in a pipeline, rowtime is the records' event time, a time attribute, when the source has event_time: add source.event_time: {field: ...})"
		}
		e.list = append(e.list, sqlError(ss, msg))
		return nil
	}
	sp.query = q
	sp.updating = q.Updating()
	sp.why = q.WhyUpdating()
	out := newFieldSet(false)
	if sp.updating {
		out.kinds[out.add(sqlOpField)] = row.KindString
	}
	for _, c := range q.Columns() {
		if _, dup := out.idx[c.Name]; dup {
			if sp.updating && c.Name == sqlOpField {
				e.list = append(e.list, ss.QueryPos.errorf("the result is updating (%s), so its rows carry their change in a field %q, which the query's column %q would hide: rename the column (AS ...)", sp.why, sqlOpField, c.Name))
			} else {
				e.list = append(e.list, ss.QueryPos.errorf("the result has two columns named %q: rename one (AS ...)", c.Name))
			}
			continue
		}
		out.kinds[out.add(c.Name)] = pipelineKind(c.Type)
		sp.out = append(sp.out, c.Type)
	}
	sp.schema = out.schema()
	return sp
}

// queryFieldRefs lists the names a query may mean as fields of its input:
// the column references, less the names the query itself defines (select
// aliases, table and CTE aliases and column lists, window columns).
func queryFieldRefs(q ast.Query) []string {
	defined := map[string]bool{"window_start": true, "window_end": true, "window_time": true, sqlRowtime: true}
	var refs []string
	var visit func(v reflect.Value)
	visit = func(v reflect.Value) {
		if !v.IsValid() {
			return
		}
		switch v.Kind() {
		case reflect.Interface, reflect.Pointer:
			if v.IsNil() {
				return
			}
			switch x := v.Interface().(type) {
			case *ast.ColumnRef:
				switch len(x.Parts) {
				case 1:
					refs = append(refs, x.Parts[0].Name)
				case 2:
					refs = append(refs, x.Parts[1].Name)
				}
				return
			case *ast.Alias:
				defined[strings.ToLower(x.Name.Name)] = true
				for _, c := range x.Columns {
					defined[strings.ToLower(c.Name)] = true
				}
			}
			visit(v.Elem())
		case reflect.Struct:
			switch x := v.Interface().(type) {
			case ast.SelectItem:
				if x.Alias != nil {
					defined[strings.ToLower(x.Alias.Name)] = true
				}
			case ast.CTE:
				defined[strings.ToLower(x.Name.Name)] = true
				for _, c := range x.Columns {
					defined[strings.ToLower(c.Name)] = true
				}
			}
			for i := 0; i < v.NumField(); i++ {
				if v.Type().Field(i).IsExported() {
					visit(v.Field(i))
				}
			}
		case reflect.Slice:
			for i := 0; i < v.Len(); i++ {
				visit(v.Index(i))
			}
		}
	}
	visit(reflect.ValueOf(q))
	var out []string
	seen := map[string]bool{}
	for _, r := range refs {
		if defined[strings.ToLower(r)] || seen[r] || !identRe.MatchString(r) {
			continue
		}
		seen[r] = true
		out = append(out, r)
	}
	return out
}

// sqlTypeOfKind is the SQL type of a field of a known kind; unknown
// kinds (an expression's result, an undeclared input field) are STRING.
func sqlTypeOfKind(k row.Kind) types.Type {
	switch k {
	case row.KindBool:
		return types.TBoolean
	case row.KindInt:
		return types.TBigInt
	case row.KindFloat:
		return types.TDouble
	case row.KindTimestamp:
		return types.TTimestamp
	}
	return types.TVarchar
}

// pipelineKind is the kind a SQL type's values have in pipeline rows.
func pipelineKind(t types.Type) row.Kind {
	switch t.Kind {
	case types.Boolean:
		return row.KindBool
	case types.TinyInt, types.SmallInt, types.Int, types.BigInt, types.Time, types.IntervalDayTime, types.IntervalYearMonth:
		return row.KindInt
	case types.Float, types.Double, types.Decimal:
		return row.KindFloat
	case types.Char, types.Varchar:
		return row.KindString
	case types.Timestamp, types.TimestampLTZ, types.Date:
		return row.KindTimestamp
	case types.Row, types.Array, types.Map:
		return row.KindJSON
	}
	return row.KindNull
}

const msPerDay = 86_400_000

var pow10 = func() [19]int64 {
	var p [19]int64
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// toSQL converts a pipeline value to the storage of SQL type t (see
// package sql/types), or says why it cannot be.
func toSQL(v row.Value, t types.Type) (row.Value, error) {
	if v.IsNull() {
		return v, nil
	}
	k := v.Kind()
	fail := func() (row.Value, error) {
		return row.Null(), fmt.Errorf("a %s value (%s) is not a %s", k, truncate(v.String(), 40), t.Plain())
	}
	switch t.Kind {
	case types.Boolean:
		switch k {
		case row.KindBool:
			return v, nil
		case row.KindString:
			if b, err := strconv.ParseBool(v.AsString()); err == nil {
				return row.Bool(b), nil
			}
		}
		return fail()
	case types.TinyInt, types.SmallInt, types.Int, types.BigInt:
		var n int64
		switch k {
		case row.KindInt:
			n = v.AsInt()
		case row.KindFloat:
			f := v.AsFloat()
			if f != math.Trunc(f) || math.Abs(f) >= 1<<63 {
				return fail()
			}
			n = int64(f)
		case row.KindString:
			x, err := strconv.ParseInt(strings.TrimSpace(v.AsString()), 10, 64)
			if err != nil {
				return fail()
			}
			n = x
		default:
			return fail()
		}
		lim := map[types.Kind]int64{types.TinyInt: math.MaxInt8, types.SmallInt: math.MaxInt16, types.Int: math.MaxInt32}[t.Kind]
		if lim != 0 && (n > lim || n < -lim-1) {
			return row.Null(), fmt.Errorf("%d is out of the range of %s", n, t.Plain())
		}
		return row.Int(n), nil
	case types.Float, types.Double:
		switch k {
		case row.KindFloat:
			return v, nil
		case row.KindInt:
			return row.Float(float64(v.AsInt())), nil
		case row.KindString:
			if f, err := strconv.ParseFloat(strings.TrimSpace(v.AsString()), 64); err == nil {
				return row.Float(f), nil
			}
		}
		return fail()
	case types.Decimal:
		var f float64
		switch k {
		case row.KindInt:
			f = float64(v.AsInt())
		case row.KindFloat:
			f = v.AsFloat()
		case row.KindString:
			x, err := strconv.ParseFloat(strings.TrimSpace(v.AsString()), 64)
			if err != nil {
				return fail()
			}
			f = x
		default:
			return fail()
		}
		if t.Scale > 18 {
			return fail()
		}
		u := math.Round(f * float64(pow10[t.Scale]))
		p := min(t.Precision, types.MaxDecimalPrecision)
		if math.IsNaN(u) || math.Abs(u) >= float64(pow10[p]) {
			return row.Null(), fmt.Errorf("%v does not fit %s", f, t.Plain())
		}
		return row.Int(int64(u)), nil
	case types.Char, types.Varchar:
		switch k {
		case row.KindString:
			return v, nil
		case row.KindTimestamp:
			return row.String(time.UnixMilli(v.AsInt()).UTC().Format("2006-01-02T15:04:05.000Z")), nil
		}
		return row.String(v.String()), nil
	case types.Timestamp, types.TimestampLTZ:
		ms, err := v.Millis()
		if err != nil {
			return fail()
		}
		return row.Timestamp(ms), nil
	case types.Date:
		ms, err := v.Millis()
		if err != nil {
			return fail()
		}
		return row.Int(floorDiv(ms, msPerDay)), nil
	case types.Time, types.IntervalDayTime, types.IntervalYearMonth:
		if k == row.KindInt {
			return v, nil
		}
		return fail()
	}
	return fail()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// fromSQL converts a SQL value of type t to its pipeline value.
func fromSQL(v row.Value, t types.Type) row.Value {
	if v.IsNull() {
		return v
	}
	switch t.Kind {
	case types.Decimal:
		if v.Kind() == row.KindInt {
			return row.Float(float64(v.AsInt()) / float64(pow10[min(t.Scale, 18)]))
		}
	case types.Date:
		if v.Kind() == row.KindInt {
			return row.Timestamp(v.AsInt() * msPerDay)
		}
	}
	return v
}

// buildSQL adds a sql step to the dataflow: rows become the table's
// changes (a field that does not convert to its column's type makes the
// record a bad record), the query runs on them, and its result becomes
// rows again.
func buildSQL(ctx context.Context, rows stream.Stream[row.Row], sp *sqlPlan, in func() *row.Schema, dl *deadLetters) (stream.Stream[row.Row], error) {
	width := len(sp.in)
	if sp.rowtime {
		width++
	}
	changes := stream.FlatMap(rows, func(r row.Row, em *stream.Emitter[exec.Change]) {
		op := exec.Insert
		if sp.opIn >= 0 {
			var ok bool
			if op, ok = opByName[r.Get(sp.opIn).AsString()]; !ok {
				rr := r
				f := failure{Stage: sp.stage, Origin: sp.stage, Offset: -1, Err: fmt.Errorf("field %s: %q is not a change (+I, -U, +U, -D)", changelogField, r.Get(sp.opIn).String()), Row: &rr, Schema: in()}
				if ferr := dl.report(ctx, f); ferr != nil {
					panic(ferr)
				}
				return
			}
		}
		vals := make([]row.Value, width)
		for j, i := range sp.in {
			v, err := toSQL(r.Get(i), sp.types[j])
			if err != nil {
				if sp.normalized && op.IsRetract() {
					// The normalisation's copy of a kept row, whose
					// insertion failed the same way and went to the
					// dead letters then: drop it, once.
					return
				}
				rr := r
				f := failure{Stage: sp.stage, Origin: sp.stage, Offset: -1, Err: fmt.Errorf("field %s: %w", sp.names[j], err), Row: &rr, Schema: in()}
				if ferr := dl.report(ctx, f); ferr != nil {
					panic(ferr)
				}
				return
			}
			vals[j] = v
		}
		if sp.rowtime {
			vals[width-1] = row.Timestamp(em.Timestamp())
		}
		em.Emit(exec.Change{Op: op, Vals: vals})
	}, stream.Name(sp.stage+".input"))
	res, err := sp.query.Build(ctx, map[string]stream.Stream[exec.Change]{sqlTable: changes})
	if err != nil {
		return stream.Stream[row.Row]{}, fmt.Errorf("%s: %w", sp.stage, err)
	}
	out := sp.out
	updating := sp.updating
	return stream.Map(res, func(c exec.Change) row.Row {
		off := 0
		if updating {
			off = 1
		}
		vals := make([]row.Value, len(out)+off)
		if updating {
			vals[0] = row.String(c.Op.String())
		}
		for i, t := range out {
			if i < len(c.Vals) {
				vals[i+off] = fromSQL(c.Vals[i], t)
			}
		}
		return row.Row{Vals: vals}
	}, stream.Name(sp.stage+".rows")), nil
}

// changelogPostgres writes the rows of an updating sql step (the change
// in the first field) to PostgreSQL through the SQL postgres sink: +I and
// +U upsert by key, -D deletes by key, -U is replaced by the +U after it.
type changelogPostgres struct {
	inner stream.Sink[exec.Change]
}

func openChangelogPostgres(c *postgresConfig, s *row.Schema) (stream.Sink[row.Row], error) {
	if len(c.cfg.Key) == 0 {
		return nil, errors.New("postgres: an updating result needs key: the columns that identify a result row")
	}
	var cols []connect.Column
	for _, f := range s.Fields()[1:] {
		cols = append(cols, connect.Column{Name: f.Name, Type: pgTypeOfKind(f.Kind)})
	}
	var pk []int
	for _, k := range c.cfg.Key {
		i, ok := s.Index(k)
		if !ok || i == 0 {
			return nil, fmt.Errorf("postgres: key field %q is not a result column (columns: %s)", k, strings.Join(s.Names()[1:], ", "))
		}
		pk = append(pk, i-1)
	}
	inner, err := connect.OpenSink(connect.SinkTable{Name: c.cfg.Table, Columns: cols, PrimaryKey: pk, Updating: true,
		Options: connect.Options{"connector": "postgres", "url": c.cfg.DSN, "table-name": c.cfg.Table}}, connect.Env{})
	if err != nil {
		return nil, err
	}
	return &changelogPostgres{inner: inner}, nil
}

// pgTypeOfKind is the column type of a field of kind k.
func pgTypeOfKind(k row.Kind) types.Type {
	switch k {
	case row.KindTimestamp:
		return types.Type{Kind: types.TimestampLTZ, Precision: 3}
	case row.KindJSON, row.KindNull:
		return types.TVarchar
	}
	return sqlTypeOfKind(k)
}

func (s *changelogPostgres) Open(ctx context.Context, info stream.SubtaskInfo) (stream.SinkWriter[row.Row], error) {
	w, err := s.inner.Open(ctx, info)
	if err != nil {
		return nil, err
	}
	return &changelogWriter{inner: w}, nil
}

type changelogWriter struct {
	inner stream.SinkWriter[exec.Change]
	buf   []exec.Change
}

var opByName = map[string]exec.Op{"+I": exec.Insert, "-U": exec.UpdateBefore, "+U": exec.UpdateAfter, "-D": exec.Delete}

func (w *changelogWriter) Write(ctx context.Context, rows []row.Row) error {
	w.buf = w.buf[:0]
	for _, r := range rows {
		op, ok := opByName[r.Get(0).AsString()]
		if !ok {
			return fmt.Errorf("postgres: a row without a change in its %s field", sqlOpField)
		}
		w.buf = append(w.buf, exec.Change{Op: op, Vals: r.Vals[1:]})
	}
	err := w.inner.Write(ctx, w.buf)
	clear(w.buf)
	return err
}

func (w *changelogWriter) Close(ctx context.Context) error { return w.inner.Close(ctx) }

// checkChangelogSinks refuses sinks that cannot take an updating sql
// step's result.
func checkChangelogSinks(e *errs, spec *Spec, stage, why string) {
	for _, sk := range spec.Sinks {
		switch c := sk.cfg.(type) {
		case nil:
		case *postgresConfig:
			if len(c.cfg.Key) == 0 {
				e.list = append(e.list, sk.Pos.errorf("the result of %s is updating (%s): postgres needs key: the result columns that identify a row (for a GROUP BY, its columns), so that updates replace rows and deletions remove them", stage, why))
			}
		default:
			if !c.bytes() {
				e.list = append(e.list, sk.Pos.errorf("the result of %s is updating (%s), which %s cannot apply; write it to postgres with key (upserts and deletes), to a byte sink (stdout, file, kafka, log: one record per change, with its %s field +I, -U, +U or -D), or make the query append-only (a window aggregation)", stage, why, sk.Connector, sqlOpField))
			}
		}
	}
}
