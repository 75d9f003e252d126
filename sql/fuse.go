package sql

import (
	"errors"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/expr"
	"github.com/sluicehq/sluice/sql/types"
)

// Projections and filters over a projection that only passes columns
// through (a view's SELECT a, b FROM t WHERE ..., a subquery's select
// list) are planned as one calc over the lower calc's input: the
// references resolve straight to the input's columns, so a row is
// copied once, not once per level.

var errNotFusable = errors.New("not fusable")

// fuseScope resolves names as the columns of calc c's output (seen
// through cols, which may rename them) but answers with c's input
// positions. A reference to a computed column of c is errNotFusable.
type fuseScope struct {
	cols []column
	c    *calc
}

func (s *fuseScope) Resolve(ref *ast.ColumnRef) (int, types.Type, error) {
	sc := &scope{cols: s.cols}
	i, err := sc.find(ref.Parts, ref.Pos)
	if err != nil {
		return 0, types.Type{}, err
	}
	j := s.c.pass[i]
	if j < 0 {
		return 0, types.Type{}, errNotFusable
	}
	return j, s.c.in.cols()[j].typ, nil
}

// fusable returns the calc below in whose output in shows, when in is
// one (through renamings).
func fusable(in node) (*calc, bool) {
	c, ok := unwrapRenamed(in).(*calc)
	return c, ok && len(c.out) == len(in.cols())
}

// projectFused plans a select list over the input of the calc below in;
// nil when a reference reads a computed column of that calc.
func (p *planner) projectFused(in node, items []ast.SelectItem) (*calc, error) {
	below, ok := fusable(in)
	if !ok {
		return nil, nil
	}
	fs := &fuseScope{cols: in.cols(), c: below}
	sc := &scope{cols: in.cols()}
	c := &calc{in: below.in, filter: below.filter, filterText: below.filterText}
	for i, it := range items {
		name := outputName(it, i)
		if r, ok := it.Expr.(*ast.ColumnRef); ok {
			j, err := sc.find(r.Parts, r.Pos)
			if err != nil {
				return nil, err
			}
			if below.pass[j] < 0 {
				return nil, nil
			}
			src := sc.cols[j]
			c.out = append(c.out, column{name: name, typ: src.typ, win: src.win})
			c.pass = append(c.pass, below.pass[j])
			c.exprs = append(c.exprs, expr.Compiled{})
			c.exprText = append(c.exprText, src.name)
			continue
		}
		cc, err := p.comp.Compile(it.Expr, fs)
		if errors.Is(err, errNotFusable) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		c.out = append(c.out, column{name: name, typ: cc.Type})
		c.pass = append(c.pass, -1)
		c.exprs = append(c.exprs, cc)
		c.exprText = append(c.exprText, exprText(it.Expr))
	}
	return c, nil
}

// filterFused adds a condition to the calc below in; nil when the
// condition reads a computed column of that calc.
func (p *planner) filterFused(in node, e ast.Expr) (node, error) {
	below, ok := fusable(in)
	if !ok {
		return nil, nil
	}
	pred, err := p.comp.Predicate(e, &fuseScope{cols: in.cols(), c: below})
	if errors.Is(err, errNotFusable) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c := *below
	if prev := below.filter; prev != nil {
		c.filter = func(v []row.Value) bool { return prev(v) && pred(v) }
		c.filterText = below.filterText + " AND " + exprText(e)
	} else {
		c.filter, c.filterText = pred, exprText(e)
	}
	// Seen with the names the input had.
	out := make([]column, len(in.cols()))
	copy(out, in.cols())
	for i := range out {
		out[i].qual = in.cols()[i].qual
	}
	c.out = out
	return &c, nil
}
