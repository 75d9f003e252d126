package expr

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/types"
)

// ScalarFunc is a scalar function: the Go API for user-defined functions
// (CREATE FUNCTION name AS 'identifier' names one registered here).
// Check returns the result type for the argument types, or an error
// saying what it expects; Eval computes a result from the argument
// values (NULLs included: a function that wants NULL in, NULL out checks
// itself). Eval must not keep args, and must be safe for concurrent use.
// Deterministic functions over constant arguments are evaluated once at
// compile time.
type ScalarFunc struct {
	Name          string
	Check         func(args []types.Type) (types.Type, error)
	Eval          func(args []row.Value) row.Value
	Deterministic bool
}

// builtin compiles a call of a built-in function.
type builtin struct {
	compile       func(b *call) (Compiled, error)
	raw           bool // compile sees the arguments unevaluated (units)
	deterministic bool
}

// Registry holds the functions known by name (upper case). It is safe
// for concurrent use.
type Registry struct {
	mu       sync.RWMutex
	builtins map[string]builtin
	udfs     map[string]ScalarFunc
}

// defaultRegistry is shared by compilers that name no registry.
var (
	defaultOnce sync.Once
	defaultReg  *Registry
)

func defaultRegistry() *Registry {
	defaultOnce.Do(func() { defaultReg = NewRegistry() })
	return defaultReg
}

// NewRegistry returns a registry of all built-in functions.
func NewRegistry() *Registry {
	r := &Registry{builtins: map[string]builtin{}, udfs: map[string]ScalarFunc{}}
	registerMath(r)
	registerStrings(r)
	registerTime(r)
	registerMisc(r)
	return r
}

func (r *Registry) add(name string, b builtin) {
	r.builtins[name] = b
}

func (r *Registry) det(name string, f func(b *call) (Compiled, error)) {
	r.builtins[name] = builtin{compile: f, deterministic: true}
}

// RegisterScalar adds a user-defined function. Its name may not shadow a
// built-in function, an aggregate or another registered function.
func (r *Registry) RegisterScalar(name string, f ScalarFunc) error {
	name = strings.ToUpper(strings.TrimSpace(name))
	if name == "" {
		return fmt.Errorf("a function needs a name")
	}
	if f.Check == nil || f.Eval == nil {
		return fmt.Errorf("function %s: Check and Eval are both required", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.builtins[name]; ok || IsAggregate(name) || IsWindowFunc(name) {
		return fmt.Errorf("function %s is built in; register the function under another name", name)
	}
	if _, ok := r.udfs[name]; ok {
		return fmt.Errorf("function %s is already registered", name)
	}
	f.Name = name
	r.udfs[name] = f
	return nil
}

// Lookup returns the function named name. For a built-in function Check
// type-checks as a call would and Eval is nil: built-ins are compiled by
// the Compiler, specialised to their argument types.
func (r *Registry) Lookup(name string) (ScalarFunc, bool) {
	name = strings.ToUpper(name)
	r.mu.RLock()
	defer r.mu.RUnlock()
	if f, ok := r.udfs[name]; ok {
		return f, true
	}
	b, ok := r.builtins[name]
	if !ok {
		return ScalarFunc{}, false
	}
	if b.raw {
		return ScalarFunc{Name: name, Deterministic: b.deterministic, Check: func([]types.Type) (types.Type, error) {
			return types.Type{}, fmt.Errorf("%s takes a time unit argument and is checked only in a call", name)
		}}, true
	}
	return ScalarFunc{Name: name, Deterministic: b.deterministic, Check: func(ts []types.Type) (types.Type, error) {
		args := make([]Compiled, len(ts))
		for i, t := range ts {
			args[i] = Compiled{Type: t, Eval: func([]row.Value) row.Value { return null }}
		}
		node := &ast.Call{Name: ast.Ident{Name: name}, Args: make([]ast.Expr, len(ts))}
		for i := range node.Args {
			node.Args[i] = &ast.NullLit{}
		}
		out, err := b.compile(&call{c: &Compiler{Funcs: r}, node: node, name: name, args: args})
		if err != nil {
			return types.Type{}, errors.New(strings.TrimPrefix(err.Error(), ast.Pos{}.String()+": "))
		}
		return out.Type, nil
	}}, true
}

// Names returns the names of all scalar functions, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.builtins)+len(r.udfs))
	for n := range r.builtins {
		out = append(out, n)
	}
	for n := range r.udfs {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

var aggregates = map[string]bool{
	"COUNT": true, "SUM": true, "SUM0": true, "AVG": true, "MIN": true, "MAX": true,
	"STDDEV_POP": true, "STDDEV_SAMP": true, "VAR_POP": true, "VAR_SAMP": true, "STDDEV": true, "VARIANCE": true,
	"COLLECT": true, "LISTAGG": true, "FIRST_VALUE": true, "LAST_VALUE": true, "ARRAY_AGG": true,
	"BOOL_AND": true, "BOOL_OR": true,
}

// unplannedAggregates are Flink's aggregate functions the planner does
// not compile yet: a call of one is refused as unsupported, not as an
// aggregate in the wrong place.
var unplannedAggregates = map[string]bool{
	"STDDEV_POP": true, "STDDEV_SAMP": true, "VAR_POP": true, "VAR_SAMP": true, "STDDEV": true, "VARIANCE": true,
	"COLLECT": true, "LISTAGG": true, "ARRAY_AGG": true, "BOOL_AND": true, "BOOL_OR": true,
}

var windowFuncs = map[string]bool{
	"ROW_NUMBER": true, "RANK": true, "DENSE_RANK": true, "PERCENT_RANK": true, "CUME_DIST": true,
	"NTILE": true, "LAG": true, "LEAD": true,
}

// IsAggregate reports an aggregate function (COUNT, SUM, AVG, MIN, MAX,
// ...): the planner compiles these, not this package.
func IsAggregate(name string) bool { return aggregates[strings.ToUpper(name)] }

// IsWindowFunc reports a function only valid with OVER (ROW_NUMBER,
// RANK, DENSE_RANK, LAG, LEAD, ...). Aggregates are window functions too
// when called with OVER; IsWindowFunc reports only the ranking and
// offset ones.
func IsWindowFunc(name string) bool { return windowFuncs[strings.ToUpper(name)] }

// call is the context of compiling one call of a built-in function.
type call struct {
	c    *Compiler
	node *ast.Call
	s    Scope
	name string
	args []Compiled
}

func (b *call) pos() ast.Pos { return b.node.Pos }

func (b *call) errorf(format string, args ...any) error {
	return errorf(b.node.Pos, "%s: %s", b.name, fmt.Sprintf(format, args...))
}

// argc checks the number of arguments.
func (b *call) argc(lo, hi int) error {
	n := len(b.args)
	if n >= lo && n <= hi {
		return nil
	}
	switch {
	case lo == hi:
		return b.errorf("expects %d argument%s, got %d", lo, plural(lo), n)
	case hi > 100:
		return b.errorf("expects at least %d argument%s, got %d", lo, plural(lo), n)
	}
	return b.errorf("expects %d to %d arguments, got %d", lo, hi, n)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func ordinal(i int) string {
	return [...]string{"first", "second", "third", "fourth", "fifth", "sixth"}[min(i, 5)]
}

// want checks argument i against a predicate and returns a clear error.
func (b *call) want(i int, what string, ok func(types.Type) bool) error {
	t := b.args[i].Type
	if t.Kind == types.Null || ok(t) {
		return nil
	}
	return errorf(b.node.Args[min(i, len(b.node.Args)-1)].Start(), "%s expects %s as its %s argument, got %s", b.name, what, ordinal(i), typeName(t))
}

func (b *call) wantString(i int) error {
	return b.want(i, "a string", types.Type.IsString)
}

func (b *call) wantInteger(i int) error {
	return b.want(i, "an integer", types.Type.IsInteger)
}

func (b *call) wantNumeric(i int) error {
	return b.want(i, "a number", types.Type.IsNumeric)
}

func (b *call) wantTime(i int) error {
	return b.want(i, "a TIMESTAMP or DATE", func(t types.Type) bool { return t.IsTimestamp() || t.Kind == types.Date })
}

// constString returns argument i's value when it is a constant string.
func (b *call) constString(i int) (string, bool, bool) {
	if i >= len(b.args) || !b.args[i].Const {
		return "", false, false
	}
	v := b.args[i].Eval(nil)
	if v.IsNull() {
		return "", true, true
	}
	return v.AsString(), false, true
}

// result wraps an evaluator with the result type; Const is decided by
// the caller of compile.
func (b *call) result(t types.Type, f EvalFunc) (Compiled, error) {
	return Compiled{Type: t, Eval: f}, nil
}

// ------------------------------------------------------------- calling

func (c *Compiler) call(n *ast.Call, s Scope) (Compiled, error) {
	name := strings.ToUpper(n.Name.Name)
	if n.Over != nil {
		return Compiled{}, errorf(n.Pos, "window function %s ... OVER is not allowed here; it is planned as an OVER aggregation", name)
	}
	if unplannedAggregates[name] {
		return Compiled{}, errorf(n.Pos, "aggregate function %s is not supported yet (COUNT, SUM, SUM0, AVG, MIN, MAX, FIRST_VALUE, LAST_VALUE and aggregates registered through the Go API are)", name)
	}
	if IsAggregate(name) {
		return Compiled{}, errorf(n.Pos, "aggregate %s is not allowed here", name)
	}
	if IsWindowFunc(name) {
		return Compiled{}, errorf(n.Pos, "window function %s needs OVER (...) and is not allowed here", name)
	}
	if n.Star {
		return Compiled{}, errorf(n.Pos, "%s(*) is not a scalar function call", name)
	}
	if n.Distinct || n.Filter != nil {
		return Compiled{}, errorf(n.Pos, "DISTINCT and FILTER apply to aggregates only, not %s", name)
	}
	reg := c.registry()
	reg.mu.RLock()
	bi, isBuiltin := reg.builtins[name]
	udf, isUDF := reg.udfs[name]
	reg.mu.RUnlock()
	if !isBuiltin && !isUDF {
		candidates := reg.Names()
		for a := range aggregates {
			candidates = append(candidates, a)
		}
		slices.Sort(candidates) // ties go to the first name alphabetically
		return Compiled{}, errorf(n.Pos, "unknown function %s%s", n.Name.Name, suggest(name, candidates))
	}
	b := &call{c: c, node: n, s: s, name: name}
	if !isBuiltin || !bi.raw {
		b.args = make([]Compiled, len(n.Args))
		for i, a := range n.Args {
			x, err := c.compile(a, s)
			if err != nil {
				return Compiled{}, err
			}
			b.args[i] = x
		}
	}
	if isUDF {
		return c.callUDF(b, udf)
	}
	out, err := bi.compile(b)
	if err != nil {
		return Compiled{}, err
	}
	if !bi.raw {
		out.Const = bi.deterministic && allConst(b.args)
	}
	return fold(out), nil
}

func (c *Compiler) callUDF(b *call, f ScalarFunc) (Compiled, error) {
	ts := make([]types.Type, len(b.args))
	for i, a := range b.args {
		ts[i] = a.Type
	}
	t, err := f.Check(ts)
	if err != nil {
		return Compiled{}, b.errorf("%v", err)
	}
	evals := make([]EvalFunc, len(b.args))
	for i, a := range b.args {
		evals[i] = a.Eval
	}
	fn := f.Eval
	out := Compiled{Type: t, Const: f.Deterministic && allConst(b.args), Eval: func(v []row.Value) row.Value {
		args := make([]row.Value, len(evals))
		for i, e := range evals {
			args[i] = e(v)
		}
		return fn(args)
	}}
	return fold(out), nil
}

// suggest returns "; did you mean X?" for the nearest known name.
func suggest(name string, names []string) string {
	best, bestD := "", 1<<30
	for _, n := range names {
		if d := editDistance(name, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" || bestD > max(2, len(name)/3) {
		return ""
	}
	return "; did you mean " + best + "?"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// unitArg reads a time unit written as a bare word (HOUR), which the
// parser gives as a one-part column reference, or as a string literal.
func unitArg(e ast.Expr) (string, bool) {
	switch u := e.(type) {
	case *ast.ColumnRef:
		if len(u.Parts) == 1 && !u.Parts[0].Quoted {
			return strings.ToUpper(u.Parts[0].Name), true
		}
	case *ast.StringLit:
		return strings.ToUpper(u.Value), true
	}
	return "", false
}
