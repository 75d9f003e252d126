package sql

import (
	"context"
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/connect"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/expr"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/sluicehq/sluice/stream"
)

// planInsert plans INSERT INTO table query: the query's columns cast
// by position to the table's.
func (s *Session) planInsert(ins *ast.Insert) (*sinkNode, error) {
	name := nameOf(ins.Table)
	t, ok := s.tables[lookupKey(name)]
	if !ok {
		if _, isView := s.views[lookupKey(name)]; isView {
			return nil, fmt.Errorf("%s: cannot INSERT INTO view %s; insert into a table", ins.Pos, name)
		}
		return nil, fmt.Errorf("%s: INSERT INTO %s: table not found%s", ins.Pos, name, s.suggestObject(name))
	}
	if ins.Overwrite {
		return nil, fmt.Errorf("%s: INSERT OVERWRITE is not supported on streams; use INSERT INTO", ins.Pos)
	}
	if len(t.computed) > 0 {
		return nil, fmt.Errorf("%s: table %s has computed columns and cannot be written; declare a sink table with physical columns only", ins.Pos, t.name)
	}
	var p *planner
	var q node
	err := s.planPruned(func(pp *planner) error {
		n, err := pp.planQuery(ins.Query)
		if err != nil {
			return err
		}
		p, q = pp, n
		return pp.finish(ins.Pos)
	})
	if err != nil {
		return nil, err
	}
	target := make([]column, len(t.physical))
	for i, c := range t.physical {
		target[i] = column{name: c.Name, typ: c.Type}
	}
	qc := q.cols()
	// src names the query column written to each table column, srcAt is
	// its position in the select list.
	src := names(qc)
	srcAt := make([]int, len(qc))
	for i := range srcAt {
		srcAt[i] = i
	}
	if len(ins.Columns) > 0 {
		// INSERT INTO t (a, b): the other columns get NULL.
		idx := make([]int, len(ins.Columns))
		sc := &scope{cols: t.cols}
		for i, c := range ins.Columns {
			j, err := sc.find([]ast.Ident{c}, c.Pos)
			if err != nil {
				return nil, fmt.Errorf("INSERT INTO %s: %w", t.name, err)
			}
			idx[i] = j
		}
		if len(qc) != len(idx) {
			return nil, fmt.Errorf("%s: INSERT INTO %s names %d columns but the query has %d", ins.Pos, t.name, len(idx), len(qc))
		}
		c := &calc{in: q}
		at := make([]int, len(target))
		for j := range target {
			c.out = append(c.out, target[j])
			c.pass = append(c.pass, -1)
			c.exprs = append(c.exprs, nullOf(target[j].typ))
			c.exprText = append(c.exprText, "NULL")
			for k, ix := range idx {
				if ix == j {
					at[j] = k
					// The query's type, checked and cast below like a
					// column written by position.
					c.out[j].typ = qc[k].typ
					c.pass[j] = k
					c.exprText[j] = qc[k].name
				}
			}
		}
		q = c
		qc = q.cols()
		src, srcAt = c.exprText, at
	}
	if len(qc) != len(target) {
		return nil, fmt.Errorf("%s: INSERT INTO %s: the query has %d columns (%s) but the table has %d (%s); columns are matched by position", ins.Pos, t.name, len(qc), colNames(qc), len(target), colNames(target))
	}
	// Columns are written with Flink's implicit casts for INSERT (a wider
	// number, CHAR/VARCHAR, TIMESTAMP precisions); others need a CAST.
	assign := func(x expr.Compiled, to types.Type) (expr.Compiled, error) {
		return p.comp.AssignAt(ast.Pos{}, x, to)
	}
	for i := range qc {
		if !types.Equal(qc[i].typ, target[i].typ) {
			if _, err := assign(expr.Compiled{Type: qc[i].typ, Eval: fieldEval(i)}, target[i].typ); err != nil {
				what := src[i]
				if strings.HasPrefix(what, "EXPR$") || strings.HasPrefix(what, "\x00") {
					what = "..."
				}
				return nil, fmt.Errorf("%s: INSERT INTO %s: select item %d (%s) is %s, which is not written to column %s %s implicitly (only a wider number, CHAR/VARCHAR to a string and a TIMESTAMP to a TIMESTAMP are); CAST it explicitly: CAST(%s AS %s)", ins.Pos, t.name, srcAt[i]+1, src[i], qc[i].typ.Plain().WithNull(false), target[i].name, target[i].typ, what, target[i].typ.Plain().WithNull(false))
			}
		}
	}
	q, err = p.coerceWith(q, target, assign)
	if err != nil {
		return nil, fmt.Errorf("INSERT INTO %s: %w", t.name, err)
	}
	if q.updating() {
		var ok bool
		var err error
		if sc, custom := s.sinks[strings.ToLower(t.options["connector"])]; custom {
			ok = sc.AcceptsUpdates
		} else if ok, err = connect.AcceptsUpdates(t.options, t.pk); err != nil {
			return nil, fmt.Errorf("table %s: %w", t.name, err)
		}
		if !ok {
			return nil, fmt.Errorf("%s: table %s (connector '%s') is append-only but the query produces updates (%s); write it to a table that accepts updates: 'postgres' with a PRIMARY KEY, 'upsert-kafka' with a PRIMARY KEY, 'print' or 'stdout'", ins.Pos, t.name, t.options["connector"], whyUpdating(q))
		}
	}
	pruneRowNumbers(q)
	return &sinkNode{in: q, table: t, cols: t.physical}, nil
}

// whyUpdating names the first node that makes a plan updating.
func whyUpdating(n node) string {
	for _, in := range n.inputs() {
		if in.updating() {
			return whyUpdating(in)
		}
	}
	switch x := unwrapRenamed(n).(type) {
	case *groupAgg:
		return "a GROUP BY without a window"
	case *join:
		return "a regular join; window or interval joins are append-only"
	case *rank:
		_ = x
		return "a ROW_NUMBER top-N"
	}
	return "an updating input"
}

func nullOf(t types.Type) expr.Compiled {
	c, err := expr.Coerce(expr.Compiled{Type: types.TNull, Eval: nullEval, Const: true}, t)
	if err != nil {
		return expr.Compiled{Type: t, Eval: nullEval, Const: true}
	}
	return c
}

// runInserts runs the INSERTs as one job until it ends.
func (s *Session) runInserts(ctx context.Context, inserts []*ast.Insert) error {
	var sinks []*sinkNode
	for _, ins := range inserts {
		sn, err := s.planInsert(ins)
		if err != nil {
			return err
		}
		sinks = append(sinks, sn)
	}
	info := &jobInfo{}
	opts, err := s.jobOptions(info)
	if err != nil {
		return err
	}
	env := stream.New(opts...)
	b := s.newBuilder(ctx, env)
	defer b.closeAll()
	var names []string
	for _, sn := range sinks {
		st, err := b.build(sn.in)
		if err != nil {
			return err
		}
		st2 := connect.SinkTable{Name: sn.table.name, Columns: sn.cols, Options: sn.table.options,
			PrimaryKey: sn.table.pk, Updating: sn.in.updating()}
		var sink stream.Sink[exec.Change]
		if sc, custom := s.sinks[strings.ToLower(sn.table.options["connector"])]; custom {
			if sink, err = sc.Open(st2); err != nil {
				return fmt.Errorf("table %s: %w", sn.table.name, err)
			}
		} else if sink, err = connect.OpenSink(st2, s.connectEnv()); err != nil {
			return err // connect.OpenSink names the table already
		}
		stream.To(st, sink, stream.Name("sink-"+sn.table.name))
		names = append(names, sn.table.name)
	}
	name := s.settings["pipeline.name"]
	if name == "" {
		name = "insert-into_" + strings.Join(names, "_")
	}
	info.name, info.plan = name, s.explainNodes(sinkInputs(sinks))
	return env.Execute(ctx)
}

func sinkInputs(ss []*sinkNode) []node {
	var ns []node
	for _, s := range ss {
		ns = append(ns, s.in)
	}
	return ns
}

// Explain returns the plan of a query, an INSERT or a statement set:
// the SQL plan (operators with their changelog mode) and the dataflow
// the engine runs (operators, exchanges, chaining, parallelism).
func (s *Session) Explain(st ast.Statement) (string, error) {
	var roots []node
	switch st := st.(type) {
	case *ast.QueryStatement:
		var n node
		err := s.planPruned(func(p *planner) error {
			var err error
			if n, err = p.planQuery(st.Query); err != nil {
				return err
			}
			return p.finish(st.Pos)
		})
		if err != nil {
			return "", err
		}
		pruneRowNumbers(n)
		roots = append(roots, n)
	case *ast.Insert:
		sn, err := s.planInsert(st)
		if err != nil {
			return "", err
		}
		roots = append(roots, sn.in)
	case *ast.StatementSet:
		for _, ins := range st.Inserts {
			sn, err := s.planInsert(ins)
			if err != nil {
				return "", err
			}
			roots = append(roots, sn.in)
		}
	default:
		return "", fmt.Errorf("%s: EXPLAIN takes a query, an INSERT or a statement set", st.Start())
	}
	text := s.explainNodes(roots)
	if phys, err := s.physicalPlan(roots); err == nil {
		text += "\n" + phys
	} else {
		text += "\n(no physical plan: " + err.Error() + ")\n"
	}
	return text, nil
}

// physicalPlan builds the dataflow of roots in an Env that is never
// started (sinks replaced by no-op sinks, lookup tables not read) and
// prints the engine's plan: operators, chains, exchanges, parallelism.
func (s *Session) physicalPlan(roots []node) (string, error) {
	opts, err := s.jobOptions(&jobInfo{})
	if err != nil {
		return "", err
	}
	env := stream.New(opts...)
	b := s.newBuilder(context.Background(), env)
	b.explain = true
	for i, n := range roots {
		st, err := b.build(n)
		if err != nil {
			return "", err
		}
		stream.To(st, stream.SinkFunc[exec.Change](func(context.Context, []exec.Change) error { return nil }), stream.Name(fmt.Sprintf("sink-%d", i+1)))
	}
	return env.Plan().Text(), nil
}

func (s *Session) explainNodes(roots []node) string {
	var b strings.Builder
	b.WriteString("== Plan ==\n")
	for _, n := range roots {
		explainTree(&b, n, 0)
	}
	return b.String()
}
