package sql

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/types"
)

// colsOf plans a FROM item only to learn its columns (for deciding
// which side a condition belongs to).
func (p *planner) colsOf(ref ast.TableRef) ([]column, error) {
	saved := p.pendingRanks
	p.pendingRanks = map[*rank]bool{}
	n, _, err := p.planRef(ref, nil)
	p.pendingRanks = saved
	if err != nil {
		return nil, err
	}
	return n.cols(), nil
}

// planJoin plans a join. For inner and comma joins the WHERE conjuncts
// take part: those of one side are pushed into it, equalities between
// the sides become the join key, the rest a condition on matching pairs.
func (p *planner) planJoin(j *ast.Join, conjs []ast.Expr) (node, []ast.Expr, error) {
	if tn, ok := j.Right.(*ast.TableName); ok && tn.ForSystemTime != nil {
		return p.planLookupJoin(j, tn, conjs)
	}
	var kind exec.JoinKind
	switch j.Kind {
	case ast.JoinInner, ast.JoinComma, ast.JoinCross:
		kind = exec.JoinInner
	case ast.JoinLeft:
		kind = exec.JoinLeft
	case ast.JoinRight:
		kind = exec.JoinRight
	case ast.JoinFull:
		kind = exec.JoinFull
	default:
		return nil, nil, fmt.Errorf("%s: unsupported join %s", j.Pos, j.Kind)
	}
	if len(j.Using) > 0 {
		return nil, nil, fmt.Errorf("%s: JOIN ... USING is not supported; write ON a.col = b.col", j.Pos)
	}
	lcols, err := p.colsOf(j.Left)
	if err != nil {
		return nil, nil, err
	}
	rcols, err := p.colsOf(j.Right)
	if err != nil {
		return nil, nil, err
	}
	ls, rs := &scope{cols: lcols}, &scope{cols: rcols}
	both := &scope{cols: append(append([]column(nil), lcols...), rcols...)}
	on := splitAnd(j.On)
	var cands, rest []ast.Expr
	if kind == exec.JoinInner {
		cands = append(append(cands, on...), conjs...)
	} else {
		cands = on
		rest = conjs
	}
	var toLeft, toRight, pair []ast.Expr
	for _, c := range cands {
		switch {
		case kind == exec.JoinInner && resolves(c, ls) && !resolves(c, rs):
			toLeft = append(toLeft, c)
		case kind == exec.JoinInner && resolves(c, rs) && !resolves(c, ls):
			toRight = append(toRight, c)
		case kind == exec.JoinLeft && resolves(c, rs) && !resolves(c, ls):
			// ON conditions on the inner side of an outer join filter it.
			toRight = append(toRight, c)
		case kind == exec.JoinRight && resolves(c, ls) && !resolves(c, rs):
			toLeft = append(toLeft, c)
		case resolves(c, both):
			pair = append(pair, c)
		default:
			if kind == exec.JoinInner && containsOf(conjs, c) {
				rest = append(rest, c) // belongs to an enclosing FROM item
				continue
			}
			// Let the compiler report what does not resolve.
			if _, err := p.comp.Predicate(c, both); err != nil {
				return nil, nil, err
			}
			pair = append(pair, c)
		}
	}
	left, leftRest, err := p.planRef(j.Left, toLeft)
	if err != nil {
		return nil, nil, err
	}
	if left, err = p.filterTVFAware(left, leftRest); err != nil {
		return nil, nil, err
	}
	right, rightRest, err := p.planRef(j.Right, toRight)
	if err != nil {
		return nil, nil, err
	}
	if right, err = p.filterTVFAware(right, rightRest); err != nil {
		return nil, nil, err
	}
	lcols, rcols = left.cols(), right.cols()
	jn := &join{left: left, right: right, kind: kind, leftWidth: len(lcols), rightWid: len(rcols)}
	jn.out = append(append([]column(nil), lcols...), rcols...)
	ls, rs = &scope{cols: lcols}, &scope{cols: rcols}
	var residual []ast.Expr
	for _, c := range pair {
		if l, r, ok := equiColumns(c, ls, rs); ok {
			if !comparableKeys(lcols[l].typ, rcols[r].typ) {
				return nil, nil, fmt.Errorf("%s: join condition %s compares %s with %s; CAST one side", c.Start(), exprText(c), lcols[l].typ, rcols[r].typ)
			}
			jn.leftKey = append(jn.leftKey, l)
			jn.rightKey = append(jn.rightKey, r)
			continue
		}
		residual = append(residual, c)
	}
	p.chooseJoinStrategy(jn, &residual)
	if len(residual) > 0 {
		e := andAll(residual)
		pred, err := p.comp.Predicate(e, &scope{cols: jn.out})
		if err != nil {
			return nil, nil, err
		}
		lw := len(lcols)
		jn.pred = pred
		jn.cond = func(l, r []row.Value) bool {
			vals := make([]row.Value, lw+len(r))
			copy(vals, l)
			copy(vals[lw:], r)
			return pred(vals)
		}
		jn.condText = exprText(e)
	}
	if kind != exec.JoinInner && jn.strategy == joinRegular {
		// The outer side's columns may be null.
		nullable(jn.out[:len(lcols)], kind == exec.JoinRight || kind == exec.JoinFull)
		nullable(jn.out[len(lcols):], kind == exec.JoinLeft || kind == exec.JoinFull)
	}
	if jn.strategy == joinRegular {
		// A regular join's output has no time attribute: rows come out
		// in any order of time.
		for i := range jn.out {
			jn.out[i].typ = jn.out[i].typ.Plain()
			jn.out[i].win = winNone
		}
	}
	return jn, rest, nil
}

func nullable(cs []column, yes bool) {
	if !yes {
		return
	}
	for i := range cs {
		cs[i].typ.NotNull = false
	}
}

func containsOf(es []ast.Expr, e ast.Expr) bool {
	for _, x := range es {
		if x == e {
			return true
		}
	}
	return false
}

func comparableKeys(a, b types.Type) bool {
	if a.IsNumeric() && b.IsNumeric() {
		return a.Storage() == b.Storage() && (a.Kind == types.Decimal) == (b.Kind == types.Decimal) && a.Scale == b.Scale
	}
	return a.Storage() == b.Storage()
}

// equiColumns recognises `l = r` between a column of each side.
func equiColumns(e ast.Expr, ls, rs *scope) (int, int, bool) {
	b, ok := e.(*ast.Binary)
	if !ok || b.Op != "=" {
		return 0, 0, false
	}
	lr, ok1 := b.L.(*ast.ColumnRef)
	rr, ok2 := b.R.(*ast.ColumnRef)
	if !ok1 || !ok2 {
		return 0, 0, false
	}
	if l, err := ls.find(lr.Parts, lr.Pos); err == nil {
		if r, err := rs.find(rr.Parts, rr.Pos); err == nil {
			if _, err := rs.find(lr.Parts, lr.Pos); err != nil {
				return l, r, true
			}
		}
	}
	if l, err := ls.find(rr.Parts, rr.Pos); err == nil {
		if r, err := rs.find(lr.Parts, lr.Pos); err == nil {
			if _, err := rs.find(rr.Parts, rr.Pos); err != nil {
				return l, r, true
			}
		}
	}
	return 0, 0, false
}

// chooseJoinStrategy picks a window join when both inputs are window
// aggregations joined on their window_start and window_end, and an
// interval join when a residual condition bounds one side's rowtime by
// the other's; the rest is a regular join.
func (p *planner) chooseJoinStrategy(jn *join, residual *[]ast.Expr) {
	lc, rc := jn.left.cols(), jn.right.cols()
	if !jn.left.updating() && !jn.right.updating() {
		ws, we := [2]int{-1, -1}, [2]int{-1, -1}
		var key [2][]int
		for i := range jn.leftKey {
			l, r := jn.leftKey[i], jn.rightKey[i]
			switch {
			case lc[l].win == winStart && rc[r].win == winStart:
				ws = [2]int{l, r}
			case lc[l].win == winEnd && rc[r].win == winEnd:
				we = [2]int{l, r}
			default:
				key[0] = append(key[0], l)
				key[1] = append(key[1], r)
			}
		}
		if ws[0] >= 0 && we[0] >= 0 {
			jn.strategy = joinWindow
			jn.leftWin = [2]int{ws[0], we[0]}
			jn.rightWin = [2]int{ws[1], we[1]}
			jn.leftKey, jn.rightKey = key[0], key[1]
			return
		}
		// Interval join: a BETWEEN on the two rowtimes. Not over a side
		// whose rowtimes its records do not carry (the output of another
		// interval or window join): the join bounds its records' times,
		// so there it stays a regular join.
		if hasStaleRowtime(jn.left) || hasStaleRowtime(jn.right) {
			return
		}
		for i, c := range *residual {
			lo, hi, ok := p.intervalBounds(c, lc, rc)
			if !ok {
				continue
			}
			jn.strategy = joinInterval
			jn.lower, jn.upper = lo, hi
			*residual = append((*residual)[:i:i], (*residual)[i+1:]...)
			return
		}
	}
}

// intervalBounds recognises `r.rt BETWEEN l.rt + a AND l.rt + b` and
// `l.rt BETWEEN r.rt + a AND r.rt + b` (a, b interval offsets, either
// may be absent), returning the bounds of r.rt - l.rt.
func (p *planner) intervalBounds(e ast.Expr, lc, rc []column) (time.Duration, time.Duration, bool) {
	bt, ok := e.(*ast.Between)
	if !ok || bt.Not || bt.Symmetric {
		return 0, 0, false
	}
	ls, rs := &scope{cols: lc}, &scope{cols: rc}
	// rowtimeOf recognises a column that is the row's event time, or
	// the window_end of a window aggregation's row (whose event time is
	// window_time, 1 ms before): a bound on it is a bound on the time.
	rowtimeOf := func(x ast.Expr, sc *scope) (time.Duration, bool) {
		r, ok := x.(*ast.ColumnRef)
		if !ok {
			return 0, false
		}
		i, err := sc.find(r.Parts, r.Pos)
		if err != nil {
			return 0, false
		}
		switch c := sc.cols[i]; {
		case c.typ.Time == types.RowTime:
			return 0, true
		case c.win == winEnd && c.tvf == nil:
			return time.Millisecond, true
		}
		return 0, false
	}
	// offset splits `col [+|- INTERVAL]` into the column and the offset.
	offset := func(x ast.Expr, sc *scope) (time.Duration, bool) {
		if d, ok := rowtimeOf(x, sc); ok {
			return d, true
		}
		b, ok := x.(*ast.Binary)
		if !ok || (b.Op != "+" && b.Op != "-") {
			return 0, false
		}
		base, ok := rowtimeOf(b.L, sc)
		if !ok {
			return 0, false
		}
		iv, ok := b.R.(*ast.IntervalLit)
		if !ok {
			return 0, false
		}
		d, err := intervalDuration(iv)
		if err != nil {
			return 0, false
		}
		if b.Op == "-" {
			d = -d
		}
		return base + d, true
	}
	isTime := func(x ast.Expr, sc *scope) bool {
		d, ok := rowtimeOf(x, sc)
		return ok && d == 0 // the tested side: a true rowtime
	}
	if isTime(bt.X, rs) {
		lo, ok1 := offset(bt.Lo, ls)
		hi, ok2 := offset(bt.Hi, ls)
		if ok1 && ok2 && lo <= hi {
			return lo, hi, true
		}
	}
	if isTime(bt.X, ls) {
		// l.rt in [r.rt + a, r.rt + b]  ⇔  r.rt - l.rt in [-b, -a]
		lo, ok1 := offset(bt.Lo, rs)
		hi, ok2 := offset(bt.Hi, rs)
		if ok1 && ok2 && lo <= hi {
			return -hi, -lo, true
		}
	}
	return 0, 0, false
}

// hasStaleRowtime reports whether a rowtime column of n may hold another
// time than its rows' records carry (notRecordTime).
func hasStaleRowtime(n node) bool {
	for i, c := range n.cols() {
		if c.typ.Time == types.RowTime && notRecordTime(n, i) {
			return true
		}
	}
	return false
}
