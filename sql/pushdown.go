package sql

import (
	"strings"

	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/connect"
)

// Projection pushdown: a query is planned once to learn which columns of
// each table it reads (every name resolved to a scan column marks it),
// then again over tables cut down to those columns, so that a source
// that reads columns by name (the nexmark generator, JSON) builds only
// what the query reads: Flink's projection pushdown.

// markUse records that a scan column was resolved.
func markUse(c column) {
	if c.used != nil {
		*c.used = true
	}
}

// scanColumns returns t's columns for one scan, wired to record their
// use when the planner is collecting it.
func (p *planner) scanColumns(t *table) []column {
	if p.usage == nil {
		return t.cols
	}
	u, ok := p.usage[t]
	if !ok {
		u = make([]bool, len(t.cols))
		p.usage[t] = u
	}
	out := make([]column, len(t.cols))
	copy(out, t.cols)
	for i := range out {
		out[i].used = &u[i]
	}
	return out
}

// tableFor returns the table a scan of t reads in this planning pass.
func (p *planner) tableFor(t *table) *table {
	if pt, ok := p.pruned[t]; ok {
		return pt
	}
	return t
}

// pushdownCapable reports a source that fills columns by name, so that
// it can be given a subset of them.
func pushdownCapable(o connect.Options) bool {
	switch strings.ToLower(o["connector"]) {
	case "nexmark", "datagen":
		return true
	case "filesystem", "file", "kafka", "sluice", "log":
		f := strings.ToLower(o["format"])
		return f == "json" || f == "" && strings.ToLower(o["value.format"]) == "json"
	}
	return false
}

// planPruned plans up to three times. The first pass finds the columns
// of each table that names resolve to, and the output columns of each
// derived select (a view's or a FROM subquery's projection) that the
// query above reads. When some derived select has unread columns, a
// second pass plans without them (see prunedItems) and finds the table
// columns still read. The last pass plans over tables cut down to
// those columns.
func (s *Session) planPruned(plan func(p *planner) error) error {
	p := s.newPlanner()
	p.usage = map[*table][]bool{}
	p.itemUse = map[*ast.Select]map[string]*bool{}
	if err := plan(p); err != nil {
		return err
	}
	var need map[*ast.Select]map[string]bool
	for sel, use := range p.itemUse {
		for _, u := range use {
			if !*u {
				if need == nil {
					need = map[*ast.Select]map[string]bool{}
				}
				m := map[string]bool{}
				for name, u := range use {
					m[name] = *u
				}
				need[sel] = m
				break
			}
		}
	}
	usage := p.usage
	if need != nil {
		p = s.newPlanner()
		p.usage = map[*table][]bool{}
		p.itemNeed = need
		if err := plan(p); err != nil {
			return err
		}
		usage = p.usage
	}
	pruned := map[*table]*table{}
	for t, used := range usage {
		if !pushdownCapable(t.options) || len(t.physical) < 2 {
			continue
		}
		if pt := s.pruneTable(t, used); pt != nil {
			pruned[t] = pt
		}
	}
	if len(pruned) == 0 {
		return nil
	}
	p2 := s.newPlanner()
	p2.pruned = pruned
	p2.itemNeed = need
	return plan(p2)
}

// derivedSelect returns q as a select whose output columns the query
// above reads by name only (no column list renames them by position),
// so that those it never reads may be left out; nil otherwise.
func derivedSelect(q ast.Query, renames bool) *ast.Select {
	sel, ok := q.(*ast.Select)
	if !ok || renames {
		return nil
	}
	return sel
}

// prunable reports whether sel's select list may lose the items the
// query above does not read: a plain projection (no aggregation,
// DISTINCT, ORDER BY, LIMIT or OVER), planned as a FROM item.
func (p *planner) prunable(sel *ast.Select, derived bool, aggs int) bool {
	if !derived || len(sel.GroupBy) > 0 || aggs > 0 || sel.Distinct || sel.Having != nil || len(sel.OrderBy) > 0 || sel.Limit != nil {
		return false
	}
	for _, it := range sel.Items {
		if it.Star {
			continue
		}
		over := false
		walk(it.Expr, func(x ast.Expr) bool {
			if c, ok := x.(*ast.Call); ok && c.Over != nil {
				over = true
			}
			return !over
		})
		if over {
			return false
		}
	}
	return true
}

// markItems (first pass) wires the output columns of a prunable select
// to record whether a name above resolves to them.
func (p *planner) markItems(sel *ast.Select, out node) {
	if p.itemUse == nil {
		return
	}
	use := p.itemUse[sel]
	if use == nil {
		use = map[string]*bool{}
		p.itemUse[sel] = use
	}
	cols := out.cols() // the node's own slice: mark in place
	for i := range cols {
		u, ok := use[cols[i].name]
		if !ok {
			u = new(bool)
			use[cols[i].name] = u
		}
		cols[i].used = u
	}
}

// prunedItems (later passes) keeps the items of a prunable select that
// the first pass saw read (at least one).
func (p *planner) prunedItems(sel *ast.Select, items []ast.SelectItem) []ast.SelectItem {
	need, ok := p.itemNeed[sel]
	if !ok {
		return items
	}
	var out []ast.SelectItem
	for i, it := range items {
		if need[outputName(it, i)] {
			if it.Alias == nil {
				// Keep the name it had at its original position.
				a := ast.Ident{Name: outputName(it, i), Pos: it.Pos}
				it.Alias = &a
			}
			out = append(out, it)
		}
	}
	if len(out) == 0 {
		return items[:1]
	}
	return out
}

// pruneTable returns t with only the physical columns used (directly or
// by a used computed column, or the watermark), or nil when every column
// is used.
func (s *Session) pruneTable(t *table, used []bool) *table {
	np := len(t.physical)
	need := make([]bool, len(t.cols))
	copy(need, used)
	if t.rowtime >= 0 {
		need[t.rowtime] = true
	}
	// Computed columns need their inputs (and are kept whole: they are
	// cheap and may read each other).
	for k := len(t.computed) - 1; k >= 0; k-- { // later ones may read earlier ones
		if need[np+k] {
			for _, d := range t.computed[k].deps {
				need[d] = true
			}
		}
	}
	keep := 0
	for i := 0; i < np; i++ {
		if need[i] {
			keep++
		}
	}
	if keep == np {
		return nil
	}
	// A DDL with only the needed physical columns, planned as a table.
	ct := *t.ddl
	ct.Elements = nil
	ct.Watermark = t.ddl.Watermark
	ct.PrimaryKey = nil
	// Physical columns are flattened: rebuild ROW columns with only the
	// needed fields.
	for _, el := range t.ddl.Elements {
		if el.Column == nil {
			ct.Elements = append(ct.Elements, el)
			continue
		}
		if tn := pruneType(el.Column.Type, []string{el.Column.Name.Name}, t, need); tn != nil {
			c := *el.Column
			c.Type = tn
			ct.Elements = append(ct.Elements, ast.TableElement{Column: &c})
		}
	}
	pt, err := s.createTable(&ct)
	if err != nil {
		return nil // keep the whole table: pruning is only an optimisation
	}
	return pt
}

// pruneType keeps the needed leaves of a column's type; nil when none.
func pruneType(tn *ast.TypeName, path []string, t *table, need []bool) *ast.TypeName {
	if !strings.EqualFold(tn.Name, "ROW") {
		for i, c := range t.cols[:len(t.physical)] {
			if need[i] && samePath(c.pathOrName(), path) {
				return tn
			}
		}
		return nil
	}
	out := *tn
	out.Fields = nil
	for _, f := range tn.Fields {
		if ft := pruneType(f.Type, append(append([]string(nil), path...), f.Name.Name), t, need); ft != nil {
			g := f
			g.Type = ft
			out.Fields = append(out.Fields, g)
		}
	}
	if len(out.Fields) == 0 {
		return nil
	}
	return &out
}

func samePath(a, b []string) bool {
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
