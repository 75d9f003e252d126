package ast

// Expr is a scalar expression.
type Expr interface {
	Node
	expr()
}

// ColumnRef is a possibly qualified name: `a`, `t.a`, `person.id`,
// `t.person.id`. Which parts are a table and which a nested field is the
// planner's decision.
type ColumnRef struct {
	Parts []Ident
	Pos   Pos
}

// NumberLit is a numeric literal as written ("1", "0.908", "1e3").
type NumberLit struct {
	Text string
	Pos  Pos
}

// StringLit is a character string literal, quotes removed and ” undone.
type StringLit struct {
	Value string
	Pos   Pos
}

// BoolLit is TRUE or FALSE.
type BoolLit struct {
	Value bool
	Pos   Pos
}

// NullLit is NULL.
type NullLit struct{ Pos Pos }

// IntervalLit is INTERVAL [-]'value' unit [TO unit]: Value is the string
// as written ("4", "1 12:00:00"), Unit and ToUnit upper case (SECOND,
// MINUTE, HOUR, DAY, MONTH, YEAR; ToUnit empty when absent).
type IntervalLit struct {
	Value    string
	Negative bool
	Unit     string
	ToUnit   string
	Pos      Pos
}

// TypedLit is TIMESTAMP '...', DATE '...', TIME '...'.
type TypedLit struct {
	Type  string // TIMESTAMP, DATE, TIME
	Value string
	Pos   Pos
}

// Unary is -x, +x or NOT x.
type Unary struct {
	Op  string // "-", "+", "NOT"
	X   Expr
	Pos Pos
}

// Binary is l op r for op in + - * / % || = <> < <= > >= AND OR.
// `!=` is normalised to "<>".
type Binary struct {
	Op   string
	L, R Expr
	Pos  Pos
}

// Like is x [NOT] LIKE|SIMILAR TO pattern [ESCAPE e].
type Like struct {
	X, Pattern Expr
	Escape     Expr
	Not        bool
	Similar    bool
	Pos        Pos
}

// Between is x [NOT] BETWEEN [SYMMETRIC] lo AND hi.
type Between struct {
	X, Lo, Hi Expr
	Not       bool
	Symmetric bool
	Pos       Pos
}

// In is x [NOT] IN (list) or x [NOT] IN (query).
type In struct {
	X     Expr
	List  []Expr
	Query Query
	Not   bool
	Pos   Pos
}

// Is is x IS [NOT] NULL|TRUE|FALSE|UNKNOWN; What is upper case.
type Is struct {
	X    Expr
	What string
	Not  bool
	Pos  Pos
}

// IsDistinct is x IS [NOT] DISTINCT FROM y.
type IsDistinct struct {
	L, R Expr
	Not  bool
	Pos  Pos
}

// Exists is [NOT] EXISTS (query).
type Exists struct {
	Query Query
	Not   bool
	Pos   Pos
}

// Subquery is a scalar subquery (query) in an expression.
type Subquery struct {
	Query Query
	Pos   Pos
}

// When is one WHEN cond THEN result of CASE.
type When struct {
	Cond, Result Expr
}

// Case is CASE [operand] WHEN ... THEN ... [ELSE ...] END.
type Case struct {
	Operand Expr
	Whens   []When
	Else    Expr
	Pos     Pos
}

// Cast is CAST(x AS type), TRY_CAST(x AS type), or x::type is not
// supported.
type Cast struct {
	X   Expr
	To  *TypeName
	Try bool
	Pos Pos
}

// Extract is EXTRACT(unit FROM x); Unit upper case.
type Extract struct {
	Unit string
	X    Expr
	Pos  Pos
}

// Call is a function call name(args). Name is upper-cased for lookup by
// the planner (Ident keeps the text as written). COUNT(*) has Star set and
// no Args. Distinct is COUNT(DISTINCT x). Filter is FILTER (WHERE cond).
// Over is set for a window function call (ROW_NUMBER() OVER (...)).
// The special forms SUBSTRING(s FROM a FOR b), TRIM([BOTH|LEADING|
// TRAILING] [c] FROM s), POSITION(a IN b), OVERLAY(...) are parsed into
// plain argument lists: SUBSTRING(s, a[, b]), TRIM(s, mode, c) with mode a
// StringLit "BOTH"/"LEADING"/"TRAILING" and c a StringLit (" " when
// absent), POSITION(a, b). The legacy group window functions
// TUMBLE/HOP/SESSION (in GROUP BY) and TUMBLE_START/... (in SELECT) are
// Calls too.
type Call struct {
	Name     Ident
	Args     []Expr
	Star     bool
	Distinct bool
	Filter   Expr
	Over     *WindowSpec
	Pos      Pos
}

// FrameBound is one bound of a window frame.
type FrameBound struct {
	Kind   string // UNBOUNDED PRECEDING, PRECEDING, CURRENT ROW, FOLLOWING, UNBOUNDED FOLLOWING
	Offset Expr   // for PRECEDING/FOLLOWING: a number (ROWS) or an interval (RANGE)
}

// Frame is ROWS|RANGE BETWEEN start AND end (or a single start bound,
// with End the CURRENT ROW).
type Frame struct {
	Rows       bool // ROWS; false: RANGE
	Start, End FrameBound
}

// WindowSpec is the OVER (...) of a window function call.
type WindowSpec struct {
	PartitionBy []Expr
	OrderBy     []OrderItem
	Frame       *Frame
	Pos         Pos
}

// TableArg is `TABLE name` as an argument of a table-valued function.
type TableArg struct {
	Name []Ident
	Pos  Pos
}

// Descriptor is DESCRIPTOR(col, ...) as an argument of a table-valued
// function.
type Descriptor struct {
	Columns []Ident
	Pos     Pos
}

// NamedArg is `name => value` in a table-valued function's arguments.
type NamedArg struct {
	Name  Ident
	Value Expr
	Pos   Pos
}

// FieldAccess is (x).field.
type FieldAccess struct {
	X     Expr
	Field Ident
	Pos   Pos
}

// Index is x[i] (arrays are 1-based, maps by key).
type Index struct {
	X, Index Expr
	Pos      Pos
}

// RowExpr is ROW(a, b) or (a, b).
type RowExpr struct {
	Items []Expr
	Pos   Pos
}

// ArrayExpr is ARRAY[a, b].
type ArrayExpr struct {
	Items []Expr
	Pos   Pos
}

func (e *ColumnRef) Start() Pos   { return e.Pos }
func (e *NumberLit) Start() Pos   { return e.Pos }
func (e *StringLit) Start() Pos   { return e.Pos }
func (e *BoolLit) Start() Pos     { return e.Pos }
func (e *NullLit) Start() Pos     { return e.Pos }
func (e *IntervalLit) Start() Pos { return e.Pos }
func (e *TypedLit) Start() Pos    { return e.Pos }
func (e *Unary) Start() Pos       { return e.Pos }
func (e *Binary) Start() Pos      { return e.Pos }
func (e *Like) Start() Pos        { return e.Pos }
func (e *Between) Start() Pos     { return e.Pos }
func (e *In) Start() Pos          { return e.Pos }
func (e *Is) Start() Pos          { return e.Pos }
func (e *IsDistinct) Start() Pos  { return e.Pos }
func (e *Exists) Start() Pos      { return e.Pos }
func (e *Subquery) Start() Pos    { return e.Pos }
func (e *Case) Start() Pos        { return e.Pos }
func (e *Cast) Start() Pos        { return e.Pos }
func (e *Extract) Start() Pos     { return e.Pos }
func (e *Call) Start() Pos        { return e.Pos }
func (e *TableArg) Start() Pos    { return e.Pos }
func (e *Descriptor) Start() Pos  { return e.Pos }
func (e *NamedArg) Start() Pos    { return e.Pos }
func (e *FieldAccess) Start() Pos { return e.Pos }
func (e *Index) Start() Pos       { return e.Pos }
func (e *RowExpr) Start() Pos     { return e.Pos }
func (e *ArrayExpr) Start() Pos   { return e.Pos }

func (*ColumnRef) expr()   {}
func (*NumberLit) expr()   {}
func (*StringLit) expr()   {}
func (*BoolLit) expr()     {}
func (*NullLit) expr()     {}
func (*IntervalLit) expr() {}
func (*TypedLit) expr()    {}
func (*Unary) expr()       {}
func (*Binary) expr()      {}
func (*Like) expr()        {}
func (*Between) expr()     {}
func (*In) expr()          {}
func (*Is) expr()          {}
func (*IsDistinct) expr()  {}
func (*Exists) expr()      {}
func (*Subquery) expr()    {}
func (*Case) expr()        {}
func (*Cast) expr()        {}
func (*Extract) expr()     {}
func (*Call) expr()        {}
func (*TableArg) expr()    {}
func (*Descriptor) expr()  {}
func (*NamedArg) expr()    {}
func (*FieldAccess) expr() {}
func (*Index) expr()       {}
func (*RowExpr) expr()     {}
func (*ArrayExpr) expr()   {}
