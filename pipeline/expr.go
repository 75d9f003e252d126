package pipeline

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/sluicehq/sluice/row"
)

// Expressions are written in the expr language (github.com/expr-lang/expr)
// and compiled once, when the pipeline is planned, against the positions
// of the fields they name. Two evaluators exist:
//
//   - a closure compiler for the common subset (field references,
//     literals, arithmetic, comparisons, boolean logic, ?: and ??), which
//     works directly on row.Values without allocating;
//   - the expr virtual machine for everything else (builtins such as
//     upper() or len(), member access, arrays, ...), fed a map of the
//     referenced fields.
//
// Both follow expr's semantics; a property test checks the first against
// the second on random rows.

// ErrEval is wrapped by every expression evaluation error.
var ErrEval = errors.New("expression failed")

// fieldResolver maps a name an expression uses to a field position. It
// returns ok == false for a name that is not a field (the caller then
// reports an error).
type fieldResolver func(name string) (int, bool)

// expression is a compiled expression.
type expression struct {
	src    string
	fields []int    // positions referenced
	names  []string // their names
	fast   evalFn   // nil when the VM is needed
	prog   *vm.Program
	pool   sync.Pool // of *vmEnv
}

type evalFn func(vals []row.Value) (row.Value, error)

type vmEnv struct {
	m map[string]any
}

// compileExpr compiles src. resolve gives positions of the names used.
func compileExpr(src string, resolve fieldResolver) (*expression, error) {
	return compileExprMode(src, resolve, true)
}

// compileExprMode compiles src, with the closure compiler only if fast.
func compileExprMode(src string, resolve fieldResolver, fast bool) (*expression, error) {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("expression %q: %s", src, oneLine(err.Error()))
	}
	x := &expression{src: src}
	idx := map[string]int{}
	names, env := identifiers(tree.Node)
	if env {
		// The environment holds only the fields the expression names,
		// so $env.x would be null whatever the record holds.
		return nil, fmt.Errorf("expression %q: $env is not available: name the fields directly", src)
	}
	var unknown []string
	for _, name := range names {
		if _, dup := idx[name]; dup {
			continue
		}
		p, ok := resolve(name)
		if !ok {
			unknown = append(unknown, name)
			continue
		}
		idx[name] = p
		x.fields = append(x.fields, p)
		x.names = append(x.names, name)
	}
	if len(unknown) > 0 {
		return nil, &unknownFieldsError{names: unknown}
	}
	if fast {
		x.fast = compileFast(tree.Node, idx)
	}
	if x.fast == nil {
		var opts []expr.Option
		if !fast {
			// The oracle of the tests: no constant folding, which can
			// skip evaluating (and failing on) a subexpression.
			opts = append(opts, expr.Optimize(false))
		}
		prog, err := expr.Compile(src, opts...)
		if err != nil {
			return nil, fmt.Errorf("expression %q: %s", src, oneLine(err.Error()))
		}
		x.prog = prog
		x.pool.New = func() any { return &vmEnv{m: make(map[string]any, len(x.names))} }
	}
	return x, nil
}

type unknownFieldsError struct{ names []string }

func (e *unknownFieldsError) Error() string {
	return fmt.Sprintf("unknown field %s", strings.Join(e.names, ", "))
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// identifiers returns the names an expression reads from its environment,
// in order of appearance: identifiers that are not function names,
// predicate pointers or let-bound variables; and whether it uses $env.
func identifiers(n ast.Node) ([]string, bool) {
	c := &identCollector{bound: map[string]bool{}}
	ast.Walk(&n, c)
	return c.names, c.env
}

type identCollector struct {
	names   []string
	callees map[ast.Node]bool
	bound   map[string]bool
	env     bool
}

func (c *identCollector) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.CallNode:
		if c.callees == nil {
			c.callees = map[ast.Node]bool{}
		}
		c.callees[n.Callee] = true
	case *ast.VariableDeclaratorNode:
		c.bound[n.Name] = true
	case *ast.IdentifierNode:
		if n.Value == "$env" {
			c.env = true
			return
		}
		if c.callees[n] || c.bound[n.Value] {
			return
		}
		c.names = append(c.names, n.Value)
	}
}

// eval evaluates the expression on a row.
func (x *expression) eval(vals []row.Value) (row.Value, error) {
	if x.fast != nil {
		return x.fast(vals)
	}
	env := x.pool.Get().(*vmEnv)
	for i, p := range x.fields {
		env.m[x.names[i]] = vals[p].Any()
	}
	out, err := vm.Run(x.prog, env.m)
	x.pool.Put(env)
	if err != nil {
		return row.Value{}, fmt.Errorf("%w: %s: %s", ErrEval, x.src, oneLine(err.Error()))
	}
	v, err := row.FromAny(out)
	if err != nil {
		return row.Value{}, fmt.Errorf("%w: %s: result %v: %w", ErrEval, x.src, out, err)
	}
	return v, nil
}

// evalBool evaluates a predicate: true keeps the record; null counts as
// false; any other non-bool result is an error.
func (x *expression) evalBool(vals []row.Value) (bool, error) {
	v, err := x.eval(vals)
	if err != nil {
		return false, err
	}
	switch v.Kind() {
	case row.KindBool:
		return v.AsBool(), nil
	case row.KindNull:
		return false, nil
	}
	return false, fmt.Errorf("%w: %s: result %s is a %s, not a bool", ErrEval, x.src, v, v.Kind())
}

// --- the closure compiler ---

// compileFast compiles n to a closure, or returns nil if n uses anything
// outside the supported subset.
func compileFast(n ast.Node, idx map[string]int) evalFn {
	switch n := n.(type) {
	case *ast.IdentifierNode:
		p, ok := idx[n.Value]
		if !ok {
			return nil
		}
		return func(vals []row.Value) (row.Value, error) { return vals[p], nil }
	case *ast.NilNode:
		return constFn(row.Null())
	case *ast.BoolNode:
		return constFn(row.Bool(n.Value))
	case *ast.IntegerNode:
		return constFn(row.Int(int64(n.Value)))
	case *ast.FloatNode:
		return constFn(row.Float(n.Value))
	case *ast.StringNode:
		return constFn(row.String(n.Value))
	case *ast.UnaryNode:
		in := compileFast(n.Node, idx)
		if in == nil {
			return nil
		}
		return unaryFn(n.Operator, in)
	case *ast.BinaryNode:
		l, r := compileFast(n.Left, idx), compileFast(n.Right, idx)
		if l == nil || r == nil {
			return nil
		}
		return binaryFn(n.Operator, l, r)
	case *ast.ConditionalNode:
		c, a, b := compileFast(n.Cond, idx), compileFast(n.Exp1, idx), compileFast(n.Exp2, idx)
		if c == nil || a == nil || b == nil {
			return nil
		}
		return func(vals []row.Value) (row.Value, error) {
			cv, err := c(vals)
			if err != nil {
				return cv, err
			}
			if cv.Kind() != row.KindBool {
				return row.Value{}, typeErr("?:", cv, cv)
			}
			if cv.AsBool() {
				return a(vals)
			}
			return b(vals)
		}
	}
	return nil
}

func constFn(v row.Value) evalFn {
	return func([]row.Value) (row.Value, error) { return v, nil }
}

func typeErr(op string, a, b row.Value) error {
	return fmt.Errorf("%w: invalid operation: %s %s %s", ErrEval, a.Kind(), op, b.Kind())
}

func unaryFn(op string, in evalFn) evalFn {
	switch op {
	case "!", "not":
		return func(vals []row.Value) (row.Value, error) {
			v, err := in(vals)
			if err != nil {
				return v, err
			}
			if v.Kind() != row.KindBool {
				return row.Value{}, fmt.Errorf("%w: invalid operation: %s %s", ErrEval, op, v.Kind())
			}
			return row.Bool(!v.AsBool()), nil
		}
	case "-":
		return func(vals []row.Value) (row.Value, error) {
			v, err := in(vals)
			if err != nil {
				return v, err
			}
			switch v.Kind() {
			case row.KindInt:
				return row.Int(-v.AsInt()), nil
			case row.KindFloat:
				return row.Float(-v.AsFloat()), nil
			}
			return row.Value{}, fmt.Errorf("%w: invalid operation: - %s", ErrEval, v.Kind())
		}
	case "+":
		return func(vals []row.Value) (row.Value, error) {
			v, err := in(vals)
			if err != nil {
				return v, err
			}
			if !v.IsNumber() {
				return row.Value{}, fmt.Errorf("%w: invalid operation: + %s", ErrEval, v.Kind())
			}
			return v, nil
		}
	}
	return nil
}

func binaryFn(op string, l, r evalFn) evalFn {
	switch op {
	case "and", "&&":
		return func(vals []row.Value) (row.Value, error) {
			a, err := l(vals)
			if err != nil {
				return a, err
			}
			if a.Kind() != row.KindBool {
				return row.Value{}, typeErr(op, a, a)
			}
			if !a.AsBool() {
				return a, nil
			}
			// Like expr, the right operand is the result as it is.
			return r(vals)
		}
	case "or", "||":
		return func(vals []row.Value) (row.Value, error) {
			a, err := l(vals)
			if err != nil {
				return a, err
			}
			if a.Kind() != row.KindBool {
				return row.Value{}, typeErr(op, a, a)
			}
			if a.AsBool() {
				return a, nil
			}
			return r(vals)
		}
	case "??":
		return func(vals []row.Value) (row.Value, error) {
			a, err := l(vals)
			if err != nil || !a.IsNull() {
				return a, err
			}
			return r(vals)
		}
	}
	f := binaryOp(op)
	if f == nil {
		return nil
	}
	return func(vals []row.Value) (row.Value, error) {
		a, err := l(vals)
		if err != nil {
			return a, err
		}
		b, err := r(vals)
		if err != nil {
			return b, err
		}
		return f(a, b)
	}
}

func binaryOp(op string) func(a, b row.Value) (row.Value, error) {
	switch op {
	case "==":
		return func(a, b row.Value) (row.Value, error) { return row.Bool(equalExpr(a, b)), nil }
	case "!=":
		return func(a, b row.Value) (row.Value, error) { return row.Bool(!equalExpr(a, b)), nil }
	case "<", "<=", ">", ">=":
		return func(a, b row.Value) (row.Value, error) {
			c, ok := orderExpr(a, b)
			if !ok {
				return row.Value{}, typeErr(op, a, b)
			}
			if c == nanOrder {
				return row.Bool(false), nil // NaN is not ordered
			}
			switch op {
			case "<":
				return row.Bool(c < 0), nil
			case "<=":
				return row.Bool(c <= 0), nil
			case ">":
				return row.Bool(c > 0), nil
			}
			return row.Bool(c >= 0), nil
		}
	case "+":
		return func(a, b row.Value) (row.Value, error) {
			if a.Kind() == row.KindString && b.Kind() == row.KindString {
				return row.String(a.AsString() + b.AsString()), nil
			}
			return arith(op, a, b)
		}
	case "-", "*":
		return func(a, b row.Value) (row.Value, error) { return arith(op, a, b) }
	case "/":
		return func(a, b row.Value) (row.Value, error) {
			if !a.IsNumber() || !b.IsNumber() {
				return row.Value{}, typeErr(op, a, b)
			}
			return row.Float(a.AsFloat() / b.AsFloat()), nil
		}
	case "%":
		return func(a, b row.Value) (row.Value, error) {
			if a.Kind() != row.KindInt || b.Kind() != row.KindInt {
				return row.Value{}, typeErr(op, a, b)
			}
			if b.AsInt() == 0 {
				return row.Value{}, fmt.Errorf("%w: integer divide by zero", ErrEval)
			}
			return row.Int(a.AsInt() % b.AsInt()), nil
		}
	}
	return nil
}

func arith(op string, a, b row.Value) (row.Value, error) {
	if a.Kind() == row.KindInt && b.Kind() == row.KindInt {
		x, y := a.AsInt(), b.AsInt()
		switch op {
		case "+":
			return row.Int(x + y), nil
		case "-":
			return row.Int(x - y), nil
		}
		return row.Int(x * y), nil
	}
	if !a.IsNumber() || !b.IsNumber() {
		return row.Value{}, typeErr(op, a, b)
	}
	x, y := a.AsFloat(), b.AsFloat()
	switch op {
	case "+":
		return row.Float(x + y), nil
	case "-":
		return row.Float(x - y), nil
	}
	return row.Float(x * y), nil
}

// equalExpr is expr's ==: numbers compare by value across int and float,
// other values only equal values of their kind; null equals only null.
func equalExpr(a, b row.Value) bool {
	if a.IsNumber() && b.IsNumber() {
		if a.Kind() == row.KindInt && b.Kind() == row.KindInt {
			return a.AsInt() == b.AsInt()
		}
		return a.AsFloat() == b.AsFloat()
	}
	if a.Kind() != b.Kind() {
		return false
	}
	switch a.Kind() {
	case row.KindNull:
		return true
	case row.KindBool:
		return a.AsBool() == b.AsBool()
	case row.KindTimestamp:
		return a.AsInt() == b.AsInt()
	}
	return a.AsString() == b.AsString()
}

// orderExpr orders numbers, strings and timestamps; other pairs are not
// ordered (an error in expr).
func orderExpr(a, b row.Value) (int, bool) {
	switch {
	case a.IsNumber() && b.IsNumber():
		if a.Kind() == row.KindInt && b.Kind() == row.KindInt {
			return cmpInt(a.AsInt(), b.AsInt()), true
		}
		x, y := a.AsFloat(), b.AsFloat()
		switch {
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		case x == y:
			return 0, true
		}
		return nanOrder, true
	case a.Kind() == row.KindString && b.Kind() == row.KindString:
		return strings.Compare(a.AsString(), b.AsString()), true
	case a.Kind() == row.KindTimestamp && b.Kind() == row.KindTimestamp:
		return cmpInt(a.AsInt(), b.AsInt()), true
	}
	return 0, false
}

// nanOrder is orderExpr's result when a NaN is involved: every ordering
// comparison is then false.
const nanOrder = math.MinInt32

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
