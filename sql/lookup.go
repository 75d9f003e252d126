package sql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/connect"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/expr"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/sluicehq/sluice/stream"
)

// lookupJoin is `left JOIN t FOR SYSTEM_TIME AS OF left.time AS s ON
// expr(left) = s.col ...`: every left row looks up the rows of table t
// with the same key. The table is read whole when the job starts (a
// bounded table: a file, a database query) and kept in memory, like
// Flink's lookup joins against the filesystem connector with a full
// cache; changes to the table after that are not seen. AS OF a rowtime
// against such a table with a PRIMARY KEY and a rowtime column (a
// versioned table) is Flink's event-time temporal join: a left row sees,
// per primary key, only the version with the latest rowtime at or before
// its own time.
type lookupJoin struct {
	left    node
	table   *table
	out     []column
	kind    exec.JoinKind // inner or left
	keyExpr []expr.Compiled
	keyText []string
	keyCols []int // the table's key columns
	cond    func([]row.Value) bool
	text    string
	// asOf is the left row's time of an event-time temporal join
	// against a versioned table; nil otherwise.
	asOf *expr.Compiled
}

func (n *lookupJoin) cols() []column { return n.out }
func (n *lookupJoin) updating() bool { return n.left.updating() }
func (n *lookupJoin) inputs() []node { return []node{n.left} }
func (n *lookupJoin) describe() string {
	var eq []string
	for i, k := range n.keyCols {
		eq = append(eq, fmt.Sprintf("%s = %s", n.keyText[i], n.table.cols[k].name))
	}
	kind := "InnerJoin"
	if n.kind == exec.JoinLeft {
		kind = "LeftOuterJoin"
	}
	w := strings.Join(eq, " AND ")
	if n.text != "" {
		w += " AND " + n.text
	}
	if connect.IsLookup(n.table.options) {
		// Looked up live, per batch of rows, not read at job start.
		return fmt.Sprintf("LookupJoin(table=[%s], joinType=[%s], lookup=[%s], live=[%s])", n.table.name, kind, w, n.table.options["connector"])
	}
	return fmt.Sprintf("LookupJoin(table=[%s], joinType=[%s], lookup=[%s])", n.table.name, kind, w)
}

// planLookupJoin plans a join whose right side is a table FOR
// SYSTEM_TIME AS OF a time attribute of the left side.
func (p *planner) planLookupJoin(j *ast.Join, tn *ast.TableName, conjs []ast.Expr) (node, []ast.Expr, error) {
	var kind exec.JoinKind
	switch j.Kind {
	case ast.JoinInner, ast.JoinComma:
		kind = exec.JoinInner
	case ast.JoinLeft:
		kind = exec.JoinLeft
	default:
		return nil, nil, fmt.Errorf("%s: a lookup join (FOR SYSTEM_TIME AS OF) is an INNER or LEFT join, not %s", j.Pos, j.Kind)
	}
	left, conjs, err := p.planRef(j.Left, conjs)
	if err != nil {
		return nil, nil, err
	}
	ls := &scope{cols: left.cols()}
	tc, err := p.comp.Compile(tn.ForSystemTime, ls)
	if err != nil {
		return nil, nil, fmt.Errorf("FOR SYSTEM_TIME AS OF: %w", err)
	}
	if tc.Type.Time == types.NoTimeAttr {
		return nil, nil, fmt.Errorf("%s: FOR SYSTEM_TIME AS OF takes a time attribute of the left side (PROCTIME() or a rowtime column)", tn.ForSystemTime.Start())
	}
	name := nameOf(tn.Name)
	t, ok := p.s.tables[lookupKey(name)]
	if !ok {
		return nil, nil, fmt.Errorf("%s: lookup join: table '%s' not found%s (a lookup join reads a table, not a view)", tn.Pos, name, p.s.suggestObject(name))
	}
	alias := t.name
	if tn.Alias != nil {
		alias = tn.Alias.Name.Name
	}
	tcols := make([]column, len(t.cols))
	copy(tcols, t.cols)
	for i := range tcols {
		tcols[i].qual = alias
		tcols[i].typ = tcols[i].typ.Plain()
		if kind == exec.JoinLeft {
			tcols[i].typ.NotNull = false
		}
	}
	ts := &scope{cols: tcols}
	n := &lookupJoin{left: left, table: t, kind: kind}
	if tc.Type.Time == types.RowTime && t.rowtime >= 0 && len(t.pk) > 0 {
		n.asOf = &tc
	}
	n.out = append(append([]column(nil), left.cols()...), tcols...)
	var rest []ast.Expr
	for _, c := range splitAnd(j.On) {
		if b, ok := c.(*ast.Binary); ok && b.Op == "=" {
			if l, r, ok := p.lookupKey(b, ls, ts); ok {
				if !comparableKeys(l.Type, tcols[r].typ) {
					return nil, nil, fmt.Errorf("%s: lookup key %s compares %s with %s; CAST one side", c.Start(), exprText(c), l.Type, tcols[r].typ)
				}
				n.keyExpr = append(n.keyExpr, l)
				n.keyCols = append(n.keyCols, r)
				n.keyText = append(n.keyText, exprText(lookupSide(b, ts)))
				continue
			}
		}
		rest = append(rest, c)
	}
	if len(n.keyCols) == 0 {
		return nil, nil, fmt.Errorf("%s: a lookup join needs an equality between the left side and a column of %s in ON", j.Pos, t.name)
	}
	if len(rest) > 0 {
		e := andAll(rest)
		pred, err := p.comp.Predicate(e, &scope{cols: n.out})
		if err != nil {
			return nil, nil, err
		}
		n.cond, n.text = pred, exprText(e)
	}
	return n, conjs, nil
}

// lookupSide returns the side of b that is not the table's column.
func lookupSide(b *ast.Binary, ts *scope) ast.Expr {
	if r, ok := b.R.(*ast.ColumnRef); ok {
		if _, err := ts.find(r.Parts, r.Pos); err == nil {
			return b.L
		}
	}
	return b.R
}

// lookupKey recognises `leftExpr = t.col` (either way round).
func (p *planner) lookupKey(b *ast.Binary, ls, ts *scope) (expr.Compiled, int, bool) {
	try := func(l, r ast.Expr) (expr.Compiled, int, bool) {
		ref, ok := r.(*ast.ColumnRef)
		if !ok {
			return expr.Compiled{}, 0, false
		}
		i, err := ts.find(ref.Parts, ref.Pos)
		if err != nil || !resolves(l, ls) {
			return expr.Compiled{}, 0, false
		}
		c, err := p.comp.Compile(l, ls)
		if err != nil {
			return expr.Compiled{}, 0, false
		}
		return c, i, true
	}
	if c, i, ok := try(b.L, b.R); ok {
		return c, i, true
	}
	return try(b.R, b.L)
}

// buildLookup reads the lookup table and joins each left row with it.
func (b *builder) buildLookup(n *lookupJoin) (stream.Stream[exec.Change], error) {
	in, err := b.build(n.left)
	if err != nil {
		return in, err
	}
	if connect.IsLookup(n.table.options) {
		return b.buildLiveLookup(in, n)
	}
	var rows [][]row.Value
	if !b.explain {
		if rows, err = b.readTable(n.table); err != nil {
			return in, fmt.Errorf("lookup join: %w", err)
		}
	}
	index := map[string][][]row.Value{}
	for _, r := range rows {
		k := exec.Key(r, n.keyCols)
		if hasNull(r, n.keyCols) {
			continue // a null key matches nothing
		}
		index[k] = append(index[k], r)
	}
	keyExpr, cond, kind := n.keyExpr, n.cond, n.kind
	lw, rw := len(n.left.cols()), len(n.table.cols)
	versions := func(_ []row.Value, rs [][]row.Value) [][]row.Value { return rs }
	if n.asOf != nil {
		versions = asOfVersions(n.asOf, n.table.rowtime, n.table.pk)
	}
	return stream.FlatMap(in, func(c exec.Change, out *stream.Emitter[exec.Change]) {
		kv := make([]row.Value, len(keyExpr))
		idx := make([]int, len(keyExpr))
		null := false
		for i, e := range keyExpr {
			kv[i] = e.Eval(c.Vals)
			idx[i] = i
			null = null || kv[i].IsNull()
		}
		matched := false
		if !null {
			for _, r := range versions(c.Vals, index[exec.Key(kv, idx)]) {
				v := make([]row.Value, lw+rw)
				copy(v, c.Vals)
				copy(v[lw:], r)
				if cond != nil && !cond(v) {
					continue
				}
				matched = true
				out.Emit(exec.Change{Op: c.Op, Vals: v})
			}
		}
		if !matched && kind == exec.JoinLeft {
			v := make([]row.Value, lw+rw)
			copy(v, c.Vals)
			out.Emit(exec.Change{Op: c.Op, Vals: v})
		}
	}, stream.Name(b.name("lookup-join-"+n.table.name))), nil
}

// asOfVersions returns the filter of an event-time temporal join: of the
// table rows rs (in the table's order), per primary key pk the one with
// the latest rowtime (column rt) at or before the left row's time asOf;
// of equal rowtimes the later row, which replaced the earlier. Rows
// without a rowtime, and every row when the left row has no time, match
// nothing.
func asOfVersions(asOf *expr.Compiled, rt int, pk []int) func(left []row.Value, rs [][]row.Value) [][]row.Value {
	return func(left []row.Value, rs [][]row.Value) [][]row.Value {
		t := asOf.Eval(left)
		if t.IsNull() || len(rs) == 0 {
			return nil
		}
		var out [][]row.Value
		at := map[string]int{} // primary key -> index in out
		for _, r := range rs {
			if r[rt].IsNull() || row.Compare(r[rt], t) > 0 {
				continue
			}
			k := exec.Key(r, pk)
			i, ok := at[k]
			switch {
			case !ok:
				at[k] = len(out)
				out = append(out, r)
			case row.Compare(r[rt], out[i][rt]) >= 0:
				out[i] = r
			}
		}
		return out
	}
}

func hasNull(v []row.Value, idx []int) bool {
	for _, i := range idx {
		if v[i].IsNull() {
			return true
		}
	}
	return false
}

// readTable reads a bounded table whole, with its computed columns.
func (b *builder) readTable(t *table) ([][]row.Value, error) {
	src, info, err := connect.OpenSource(connect.SourceTable{Name: t.name, Columns: t.physical, Options: t.options}, b.s.connectEnv())
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", t.name, err)
	}
	if !info.Bounded {
		return nil, fmt.Errorf("table %s (connector '%s') is unbounded; a lookup join reads a bounded table (a file, a database table) whole when the job starts", t.name, t.options["connector"])
	}
	ctx := b.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	splits, err := src.Splits(ctx, 1)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", t.name, err)
	}
	var out [][]row.Value
	buf := make([]exec.Change, 256)
	for _, sp := range splits {
		for {
			n, err := sp.Read(ctx, buf)
			for _, c := range buf[:n] {
				v := make([]row.Value, len(t.physical), len(t.cols))
				copy(v, c.Vals)
				for _, cc := range t.computed {
					v = append(v, cc.c.Eval(v))
				}
				out = append(out, v)
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("table %s: %w", t.name, err)
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
		if c, ok := sp.(io.Closer); ok {
			c.Close()
		}
	}
	return out, nil
}

// buildLiveLookup joins each batch of left rows with the rows of their
// keys fetched from PostgreSQL or Redis when the batch arrives (one
// batched query for the keys not in the cache; connect.Lookup), so that
// each row meets the table as it is at processing time, as Flink's
// lookup joins do.
func (b *builder) buildLiveLookup(in stream.Stream[exec.Change], n *lookupJoin) (stream.Stream[exec.Change], error) {
	t := n.table
	for i, k := range n.keyCols {
		if k >= len(t.physical) {
			return in, fmt.Errorf("lookup join: %s = %s: %s is a computed column; a table looked up live (connector '%s') is keyed by its stored columns", n.keyText[i], t.cols[k].name, t.cols[k].name, t.options["connector"])
		}
	}
	var lk *connect.Lookup
	if !b.explain {
		ctx := b.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		var err error
		lk, err = connect.OpenLookup(ctx, connect.LookupTable{Name: t.name, Columns: t.physical, Options: t.options, KeyCols: n.keyCols}, b.s.connectEnv())
		if err != nil {
			return in, fmt.Errorf("lookup join: %w", err)
		}
		b.closers = append(b.closers, lk.Close)
	}
	keyExpr, cond, kind := n.keyExpr, n.cond, n.kind
	computed := t.computed
	lw, rw := len(n.left.cols()), len(t.cols)
	ctx := b.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	return stream.FlatMapBatch(in, func(cs []exec.Change, ts []int64, out *stream.Emitter[exec.Change]) {
		keys := make([][]row.Value, len(cs))
		for i, c := range cs {
			kv := make([]row.Value, len(keyExpr))
			for j, e := range keyExpr {
				kv[j] = e.Eval(c.Vals)
			}
			keys[i] = kv
		}
		res, err := lk.Get(ctx, keys)
		if err != nil {
			panic(err) // fails the job: the runtime names the operator
		}
		for i, c := range cs {
			matched := false
			for _, r := range res[i] {
				v := make([]row.Value, lw, lw+rw)
				copy(v, c.Vals)
				v = append(v, r...)
				for _, cc := range computed {
					v = append(v, cc.c.Eval(v[lw:]))
				}
				if cond != nil && !cond(v) {
					continue
				}
				matched = true
				out.EmitAt(exec.Change{Op: c.Op, Vals: v}, ts[i])
			}
			if !matched && kind == exec.JoinLeft {
				v := make([]row.Value, lw+rw)
				copy(v, c.Vals)
				out.EmitAt(exec.Change{Op: c.Op, Vals: v}, ts[i])
			}
		}
	}, stream.Name(b.name("lookup-join-"+t.name))), nil
}
