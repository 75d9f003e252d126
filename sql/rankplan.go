package sql

import (
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/types"
)

// planRank plans ROW_NUMBER() OVER (PARTITION BY ... ORDER BY ...) over
// in. Its limit comes later, from the enclosing query's filter on the
// row number (takeRankLimits).
func (p *planner) planRank(in node, call *ast.Call) (*rank, error) {
	name := strings.ToUpper(call.Name.Name)
	if name != "ROW_NUMBER" {
		return nil, fmt.Errorf("%s: %s() OVER is not supported; ROW_NUMBER() OVER (PARTITION BY ... ORDER BY ...) is (top-N and deduplication)", call.Pos, name)
	}
	if len(call.Args) > 0 || call.Over.Frame != nil {
		return nil, fmt.Errorf("%s: ROW_NUMBER() takes no arguments and no frame", call.Pos)
	}
	if len(call.Over.OrderBy) == 0 {
		return nil, fmt.Errorf("%s: ROW_NUMBER() OVER needs an ORDER BY", call.Pos)
	}
	sc := &scope{cols: in.cols()}
	r := &rank{in: in, limit: -1, rowNumber: true}
	var pnames []string
	for _, e := range call.Over.PartitionBy {
		ref, ok := e.(*ast.ColumnRef)
		if !ok {
			return nil, fmt.Errorf("%s: PARTITION BY takes columns; compute %s in a subquery first", e.Start(), exprText(e))
		}
		i, err := sc.find(ref.Parts, ref.Pos)
		if err != nil {
			return nil, err
		}
		r.partition = append(r.partition, i)
		pnames = append(pnames, sc.cols[i].name)
	}
	// PARTITION BY window_start, window_end, ... of an append-only
	// windowed input is a window top-N (see rank.mode).
	keys, err := p.asOrderKeys(in, call.Over.OrderBy)
	if err != nil {
		return nil, err
	}
	r.order = keys
	r.text = fmt.Sprintf("partitionBy=[%s], orderBy=[%s]", strings.Join(pnames, ", "), orderText(in, keys))
	bt := types.TBigInt
	bt.NotNull = true
	r.out = append(append([]column(nil), in.cols()...), column{name: "\x00rownum", typ: bt})
	for i := range r.out[:len(r.out)-1] {
		// A ranking's rows can be retracted: time attributes do not
		// survive it (except deduplication keeping the first row).
		r.out[i].win = winNone
	}
	p.pendingRanks[r] = true
	return r, nil
}

// takeRankLimits finds, among conjs, a filter on the row number of a
// ranking directly below (through projections): rownum <= N, rownum < N,
// rownum = N, N >= rownum, rownum BETWEEN M AND N. It sets the ranking's
// limit and returns the other conjuncts, and the filter itself when it
// has a lower end. When the row number is not used otherwise, the
// ranking does not output it (fewer updates).
func (p *planner) takeRankLimits(in node, conjs []ast.Expr) []ast.Expr {
	col, r := rankColumn(in)
	if r == nil {
		return conjs
	}
	sc := &scope{cols: in.cols()}
	var rest []ast.Expr
	for _, c := range conjs {
		if n, keep, ok := rowNumberBound(c, sc, col); ok && r.limit < 0 {
			r.limit = n
			delete(p.pendingRanks, r)
			if !keep {
				continue
			}
		}
		rest = append(rest, c)
	}
	return rest
}

// rankColumn returns the column of in that is the row number of a rank
// below it (through renamings and pass-through projections), and the
// rank; -1 and nil when there is none.
func rankColumn(in node) (int, *rank) {
	switch n := in.(type) {
	case *renamed:
		return rankColumn(n.node)
	case *rank:
		if n.limit < 0 {
			return len(n.out) - 1, n
		}
	case *calc:
		below, r := rankColumn(n.in)
		if r == nil {
			return -1, nil
		}
		for i, pj := range n.pass {
			if pj == below {
				return i, r
			}
		}
	}
	return -1, nil
}

// rowNumberBound recognises a bound on column col: the limit it gives,
// and whether the bound must still filter the ranking's rows (it also
// has a lower end: rownum = N for N > 1, rownum BETWEEN M AND N, as
// Flink's rank ranges).
func rowNumberBound(e ast.Expr, sc *scope, col int) (limit int64, keep, ok bool) {
	isCol := func(x ast.Expr) bool {
		r, ok := x.(*ast.ColumnRef)
		if !ok {
			return false
		}
		i, err := sc.find(r.Parts, r.Pos)
		return err == nil && i == col
	}
	num := func(x ast.Expr) (int64, bool) {
		n, ok := x.(*ast.NumberLit)
		if !ok {
			return 0, false
		}
		var v int64
		if _, err := fmt.Sscanf(n.Text, "%d", &v); err != nil || fmt.Sprint(v) != n.Text {
			return 0, false
		}
		return v, true
	}
	if bt, ok := e.(*ast.Between); ok {
		lo, okLo := num(bt.Lo)
		hi, okHi := num(bt.Hi)
		if !isCol(bt.X) || bt.Not || bt.Symmetric || !okLo || !okHi || hi < 1 || lo > hi {
			return 0, false, false
		}
		return hi, lo > 1, true
	}
	b, ok := e.(*ast.Binary)
	if !ok {
		return 0, false, false
	}
	op := b.Op
	var n int64
	switch {
	case isCol(b.L):
		v, ok := num(b.R)
		if !ok {
			return 0, false, false
		}
		n = v
	case isCol(b.R):
		v, ok := num(b.L)
		if !ok {
			return 0, false, false
		}
		n = v
		op = map[string]string{"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}[op]
	default:
		return 0, false, false
	}
	switch op {
	case "<=":
		return n, false, n >= 1
	case "<":
		return n - 1, false, n >= 2
	case "=":
		return n, n > 1, n >= 1
	}
	return 0, false, false
}

// pruneRowNumbers drops the row number output of rankings whose row
// number nothing reads after the limit was taken from it. It runs on the
// final plan; used reports the columns of each node that are read.
func pruneRowNumbers(root node) {
	var visit func(n node, used func(int) bool)
	visit = func(n node, used func(int) bool) {
		switch x := n.(type) {
		case *renamed:
			visit(x.node, used)
		case *rank:
			if x.rowNumber && x.limit >= 0 && !used(len(x.out)-1) {
				x.rowNumber = false
			}
			visit(x.in, func(int) bool { return true })
		case *calc:
			visit(x.in, func(i int) bool {
				for k, pj := range x.pass {
					if pj == i && used(k) {
						return true
					}
				}
				for k, pj := range x.pass {
					if pj < 0 && used(k) {
						return true // computed expressions may read anything
					}
				}
				return x.filter != nil
			})
		default:
			for _, in := range n.inputs() {
				visit(in, func(int) bool { return true })
			}
		}
	}
	visit(root, func(int) bool { return true })
}
