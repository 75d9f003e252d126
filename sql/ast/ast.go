package ast

import "fmt"

// Pos is a position in the source text: 1-based line and column (in
// bytes), and the byte offset.
type Pos struct {
	Line, Col, Offset int
}

// String returns "line L, column C".
func (p Pos) String() string { return fmt.Sprintf("line %d, column %d", p.Line, p.Col) }

// Ident is an identifier as written: Quoted when it was `backquoted`
// (then Name keeps its case and any characters). Unquoted identifiers
// keep their case too; name lookup is case-insensitive, as in Flink's
// default configuration.
type Ident struct {
	Name   string
	Quoted bool
	Pos    Pos
}

// Node is any node of the tree.
type Node interface {
	Start() Pos
}

// ---------------------------------------------------------------- types

// TypeName is a column type as written: Name is upper case ("BIGINT",
// "VARCHAR", "DECIMAL", "TIMESTAMP", "ROW", "ARRAY", ...); Params are the
// numbers in parentheses (DECIMAL(23, 3) → [23 3], TIMESTAMP(3) → [3],
// VARCHAR(10) → [10]); Fields are a ROW's fields; Elem is an ARRAY's
// element type. NotNull is set by NOT NULL.
type TypeName struct {
	Name    string
	Params  []int
	Fields  []ColumnDef // ROW<name type, ...> or ROW(name type, ...)
	Elem    *TypeName   // ARRAY<type>
	NotNull bool
	Pos     Pos
}

// Start implements Node.
func (t *TypeName) Start() Pos { return t.Pos }

// ------------------------------------------------------------ statements

// Statement is one statement of a script.
type Statement interface {
	Node
	stmt()
}

// Script is a parsed file: its statements in order.
type Script struct {
	Statements []Statement
}

// ColumnDef is a physical column of CREATE TABLE, or a field of a ROW type.
type ColumnDef struct {
	Name Ident
	Type *TypeName
	// Metadata is set for `col TYPE METADATA [FROM 'key'] [VIRTUAL]`
	// (Kafka timestamp, headers...): the key, or the column name when
	// FROM is absent.
	Metadata string
	Virtual  bool
	Comment  string
}

// ComputedColumn is `name AS expr` in CREATE TABLE.
type ComputedColumn struct {
	Name Ident
	Expr Expr
}

// TableElement is one element of CREATE TABLE's column list: exactly one
// field is set.
type TableElement struct {
	Column   *ColumnDef
	Computed *ComputedColumn
}

// Watermark is `WATERMARK FOR column AS expr`.
type Watermark struct {
	Column Ident
	Expr   Expr
	Pos    Pos
}

// Option is one `'key' = 'value'` pair of WITH (...) or SET.
type Option struct {
	Key, Value string
	Pos        Pos
}

// CreateTable is CREATE [TEMPORARY] TABLE [IF NOT EXISTS] name (...)
// [COMMENT '...'] [PARTITIONED BY (...)] WITH (...) [LIKE ...is not
// supported].
type CreateTable struct {
	Name        []Ident // possibly qualified: catalog.db.name
	IfNotExists bool
	Elements    []TableElement // in the order written
	Watermark   *Watermark
	PrimaryKey  []Ident // PRIMARY KEY (a, b) NOT ENFORCED
	PartitionBy []Ident
	Options     []Option
	Pos         Pos
}

// CreateView is CREATE [TEMPORARY] VIEW [IF NOT EXISTS] name [(cols)] AS query.
type CreateView struct {
	Name        []Ident
	IfNotExists bool
	Columns     []Ident
	Query       Query
	Pos         Pos
}

// CreateFunction is CREATE [TEMPORARY] [SYSTEM] FUNCTION [IF NOT EXISTS]
// name AS 'identifier' [LANGUAGE JAVA|SCALA|PYTHON|GO]. The identifier
// names a function registered through the Go API.
type CreateFunction struct {
	Name        []Ident
	IfNotExists bool
	Identifier  string
	Language    string
	Pos         Pos
}

// Drop is DROP TABLE|VIEW|FUNCTION [IF EXISTS] name.
type Drop struct {
	Kind     string // TABLE, VIEW, FUNCTION
	Name     []Ident
	IfExists bool
	Pos      Pos
}

// Set is SET 'key' = 'value', or SET alone (Key empty: list settings).
type Set struct {
	Key, Value string
	Pos        Pos
}

// Reset is RESET ['key'].
type Reset struct {
	Key string
	Pos Pos
}

// Insert is INSERT INTO|OVERWRITE table [(cols)] query.
type Insert struct {
	Table     []Ident
	Columns   []Ident
	Overwrite bool
	Query     Query
	Pos       Pos
}

// StatementSet is EXECUTE STATEMENT SET BEGIN insert; ... END; (or
// BEGIN STATEMENT SET; ... END;): its inserts run as one job.
type StatementSet struct {
	Inserts []*Insert
	Pos     Pos
}

// QueryStatement is a query run for its results (SELECT ... printed).
type QueryStatement struct {
	Query Query
	Pos   Pos
}

// Explain is EXPLAIN [PLAN FOR] statement (a query, an INSERT or a
// statement set).
type Explain struct {
	Stmt Statement
	Pos  Pos
}

// Show is SHOW TABLES|VIEWS|FUNCTIONS.
type Show struct {
	What string
	Pos  Pos
}

// Describe is DESCRIBE|DESC name.
type Describe struct {
	Name []Ident
	Pos  Pos
}

func (s *CreateTable) Start() Pos    { return s.Pos }
func (s *CreateView) Start() Pos     { return s.Pos }
func (s *CreateFunction) Start() Pos { return s.Pos }
func (s *Drop) Start() Pos           { return s.Pos }
func (s *Set) Start() Pos            { return s.Pos }
func (s *Reset) Start() Pos          { return s.Pos }
func (s *Insert) Start() Pos         { return s.Pos }
func (s *StatementSet) Start() Pos   { return s.Pos }
func (s *QueryStatement) Start() Pos { return s.Pos }
func (s *Explain) Start() Pos        { return s.Pos }
func (s *Show) Start() Pos           { return s.Pos }
func (s *Describe) Start() Pos       { return s.Pos }

func (*CreateTable) stmt()    {}
func (*CreateView) stmt()     {}
func (*CreateFunction) stmt() {}
func (*Drop) stmt()           {}
func (*Set) stmt()            {}
func (*Reset) stmt()          {}
func (*Insert) stmt()         {}
func (*StatementSet) stmt()   {}
func (*QueryStatement) stmt() {}
func (*Explain) stmt()        {}
func (*Show) stmt()           {}
func (*Describe) stmt()       {}
