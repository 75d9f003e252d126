package sql

import (
	"context"
	"fmt"

	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/connect"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/parser"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/sluicehq/sluice/stream"
)

// BoundColumn is a column of a bound table (BindTable).
type BoundColumn struct {
	Name string
	// Type is the column's SQL type; values must be stored as
	// Type.Storage() says (or be null). A TIMESTAMP(3) column whose
	// Time is types.RowTime is the table's event-time attribute: its
	// value must be the stream record's timestamp, and the stream must
	// carry watermarks for it.
	Type types.Type
	// Hidden columns are not expanded by SELECT * (a pseudo-column such
	// as a pipeline's rowtime); they can still be named.
	Hidden bool
}

// BindTable adds to the session a table named name whose rows are a
// stream the caller supplies when a query over it is built
// (BoundQuery.Build), rather than a connector: this is how a YAML
// pipeline's `sql:` step queries the rows of the step before it. Its
// rows must be appended (exec.Insert).
func (s *Session) BindTable(name string, cols []BoundColumn) error {
	if s.exists(name) {
		return fmt.Errorf("table or view %s already exists", name)
	}
	if len(cols) == 0 {
		return fmt.Errorf("table %s has no columns", name)
	}
	t := &table{name: name, rowtime: -1, options: connect.Options{"connector": "bound"}}
	seen := map[string]bool{}
	for i, c := range cols {
		k := lookupKey(c.Name)
		if seen[k] {
			return fmt.Errorf("table %s: column %s is declared twice", name, c.Name)
		}
		seen[k] = true
		if c.Type.Time == types.RowTime {
			if t.rowtime >= 0 {
				return fmt.Errorf("table %s: two rowtime columns (%s and %s)", name, t.cols[t.rowtime].name, c.Name)
			}
			if !c.Type.IsTimestamp() {
				return fmt.Errorf("table %s: the rowtime column %s is %s; it must be a TIMESTAMP(3)", name, c.Name, c.Type)
			}
			t.rowtime = i
		}
		t.physical = append(t.physical, connect.Column{Name: c.Name, Type: c.Type})
		t.cols = append(t.cols, column{name: c.Name, qual: name, path: []string{c.Name}, typ: c.Type, hidden: c.Hidden})
	}
	s.tables[lookupKey(name)] = t
	return nil
}

// BindChangelogTable is BindTable for a table whose stream carries
// changes (exec.Insert, UpdateBefore, UpdateAfter, Delete) rather than
// inserts only, such as the rows of a change-data-capture source: queries
// over it are updating, aggregations retract, and window aggregations
// (TUMBLE, HOP, CUMULATE on event time) take each row, a retraction too,
// into the windows of its time attribute.
func (s *Session) BindChangelogTable(name string, cols []BoundColumn) error {
	if err := s.BindTable(name, cols); err != nil {
		return err
	}
	s.tables[lookupKey(name)].changelog = true
	return nil
}

// BoundQuery is a query planned over bound tables; Build adds it to a
// dataflow any number of times.
type BoundQuery struct {
	s    *Session
	n    node
	cols []Column
}

// PlanBound parses and plans a SELECT query (not an INSERT) over the
// session's tables, bound ones included.
func (s *Session) PlanBound(query string) (*BoundQuery, error) {
	q, err := parser.ParseQuery(query)
	if err != nil {
		return nil, err
	}
	return s.planBound(q)
}

func (s *Session) planBound(q ast.Query) (*BoundQuery, error) {
	p := s.newPlanner()
	n, err := p.planQuery(q)
	if err != nil {
		return nil, err
	}
	if err := p.finish(q.Start()); err != nil {
		return nil, err
	}
	pruneRowNumbers(n)
	cs := n.cols()
	out := make([]Column, len(cs))
	for i, c := range cs {
		out[i] = Column{Name: c.name, Type: c.typ}
	}
	return &BoundQuery{s: s, n: n, cols: out}, nil
}

// Columns returns the columns of the query's result.
func (q *BoundQuery) Columns() []Column { return append([]Column(nil), q.cols...) }

// Updating reports a result with updates or deletions (-U, +U, -D rows):
// an aggregation without a window, a regular outer join, a top-N.
func (q *BoundQuery) Updating() bool { return q.n.updating() }

// WhyUpdating names what makes the result updating ("" when it is
// append-only), for messages.
func (q *BoundQuery) WhyUpdating() string {
	if !q.n.updating() {
		return ""
	}
	return whyUpdating(q.n)
}

// WindowsUpdating reports a window aggregation over an updating input in
// the query (such as a changelog table's rows windowed): it needs every
// retraction to carry the time attribute of the row it withdraws.
func (q *BoundQuery) WindowsUpdating() bool {
	var found func(n node) bool
	found = func(n node) bool {
		if w, ok := unwrapRenamed(n).(*windowAgg); ok && w.stamp >= 0 {
			return true
		}
		for _, in := range unwrapRenamed(n).inputs() {
			if found(in) {
				return true
			}
		}
		return false
	}
	return found(q.n)
}

// Explain returns the query's plan, as EXPLAIN prints it.
func (q *BoundQuery) Explain() string { return q.s.explainNodes([]node{q.n}) }

// Build adds the query to the dataflow of its inputs: inputs gives the
// stream of every bound table the query reads, by table name (all in one
// stream.Env). The result's Vals follow Columns().
func (q *BoundQuery) Build(ctx context.Context, inputs map[string]stream.Stream[exec.Change]) (stream.Stream[exec.Change], error) {
	var env *stream.Env
	for _, st := range inputs {
		if env != nil && st.Env() != env {
			return stream.Stream[exec.Change]{}, fmt.Errorf("the inputs of a bound query must be in one dataflow")
		}
		env = st.Env()
	}
	if env == nil {
		return stream.Stream[exec.Change]{}, fmt.Errorf("a bound query needs the streams of its tables")
	}
	b := q.s.newBuilder(ctx, env)
	// The caller runs the dataflow: its context ending releases what
	// the build holds (live lookup tables' connections).
	context.AfterFunc(ctx, b.closeAll)
	for name, st := range inputs {
		t, ok := q.s.tables[lookupKey(name)]
		if !ok || t.options["connector"] != "bound" {
			return stream.Stream[exec.Change]{}, fmt.Errorf("%s is not a bound table of the session", name)
		}
		// buildScan returns a table's stream from here instead of
		// opening a connector.
		b.scans[t] = st
	}
	var missing error
	walkNodes(q.n, func(n node) {
		if sc, ok := n.(*scan); ok && sc.table.options["connector"] == "bound" {
			if _, ok := b.scans[sc.table]; !ok && missing == nil {
				missing = fmt.Errorf("no stream given for bound table %s", sc.table.name)
			}
		}
	})
	if missing != nil {
		return stream.Stream[exec.Change]{}, missing
	}
	return b.build(q.n)
}

func walkNodes(n node, f func(node)) {
	if r, ok := n.(*renamed); ok {
		walkNodes(r.node, f)
		return
	}
	f(n)
	for _, in := range n.inputs() {
		walkNodes(in, f)
	}
}
