package ast

// Query is a query expression: a SELECT block, a set operation, VALUES,
// or a query with a WITH clause.
type Query interface {
	Node
	query()
}

// SelectItem is one item of a SELECT list: an expression with an optional
// alias, or a star (`*`, or `t.*` with Qualifier set).
type SelectItem struct {
	Expr      Expr // nil for a star
	Alias     *Ident
	Star      bool
	Qualifier []Ident // t.* → [t]
	Pos       Pos
}

// OrderItem is one key of ORDER BY.
type OrderItem struct {
	Expr Expr
	Desc bool
	// NullsFirst is nil when NULLS FIRST/LAST is not written.
	NullsFirst *bool
}

// Select is one SELECT block.
type Select struct {
	Distinct bool
	Items    []SelectItem
	From     TableRef // nil: SELECT without FROM (one row)
	Where    Expr
	GroupBy  []Expr // may hold *Call nodes TUMBLE/HOP/SESSION (legacy group windows)
	Having   Expr
	OrderBy  []OrderItem
	Limit    Expr // LIMIT n or FETCH FIRST n ROWS ONLY
	Offset   Expr
	Pos      Pos
}

// SetOp is left UNION|INTERSECT|EXCEPT [ALL] right, with the ORDER BY and
// LIMIT written after the last operand applying to the whole.
type SetOp struct {
	Op      string // UNION, INTERSECT, EXCEPT
	All     bool
	Left    Query
	Right   Query
	OrderBy []OrderItem
	Limit   Expr
	Pos     Pos
}

// Values is VALUES (e, ...), (e, ...).
type Values struct {
	Rows [][]Expr
	Pos  Pos
}

// CTE is one `name [(cols)] AS (query)` of a WITH clause.
type CTE struct {
	Name    Ident
	Columns []Ident
	Query   Query
}

// With is WITH cte, ... query.
type With struct {
	CTEs  []CTE
	Query Query
	Pos   Pos
}

func (q *Select) Start() Pos { return q.Pos }
func (q *SetOp) Start() Pos  { return q.Pos }
func (q *Values) Start() Pos { return q.Pos }
func (q *With) Start() Pos   { return q.Pos }

func (*Select) query() {}
func (*SetOp) query()  {}
func (*Values) query() {}
func (*With) query()   {}

// TableRef is an item of FROM.
type TableRef interface {
	Node
	tableRef()
}

// Alias is `[AS] name [(col, ...)]` after a table reference.
type Alias struct {
	Name    Ident
	Columns []Ident
}

// TableName is a named table or view. ForSystemTime is set for a lookup
// join's `FOR SYSTEM_TIME AS OF expr`.
type TableName struct {
	Name          []Ident
	Alias         *Alias
	ForSystemTime Expr
	Pos           Pos
}

// SubqueryRef is `(query) [AS] alias`, or `LATERAL (query)`.
type SubqueryRef struct {
	Query   Query
	Alias   *Alias
	Lateral bool
	Pos     Pos
}

// TableFunction is `TABLE(name(args...)) [AS] alias` — the windowing
// table-valued functions TUMBLE, HOP, CUMULATE, SESSION — or
// `LATERAL TABLE(f(args))`. Args may hold *TableArg, *Descriptor and
// *NamedArg nodes.
type TableFunction struct {
	Name    Ident
	Args    []Expr
	Alias   *Alias
	Lateral bool
	Pos     Pos
}

// JoinKind is the kind of a join.
type JoinKind string

// The join kinds. JoinComma is `FROM a, b` (a cross join whose condition
// is in WHERE).
const (
	JoinInner JoinKind = "INNER"
	JoinLeft  JoinKind = "LEFT"
	JoinRight JoinKind = "RIGHT"
	JoinFull  JoinKind = "FULL"
	JoinCross JoinKind = "CROSS"
	JoinComma JoinKind = ","
)

// Join is left [kind] JOIN right [ON cond | USING (cols)].
type Join struct {
	Kind  JoinKind
	Left  TableRef
	Right TableRef
	On    Expr
	Using []Ident
	Pos   Pos
}

func (t *TableName) Start() Pos     { return t.Pos }
func (t *SubqueryRef) Start() Pos   { return t.Pos }
func (t *TableFunction) Start() Pos { return t.Pos }
func (t *Join) Start() Pos          { return t.Pos }

func (*TableName) tableRef()     {}
func (*SubqueryRef) tableRef()   {}
func (*TableFunction) tableRef() {}
func (*Join) tableRef()          {}
