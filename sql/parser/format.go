package parser

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/sql/ast"
)

// Format prints a node back as SQL, canonically: keywords upper case,
// single spaces, parentheses only where precedence needs them, every
// alias with AS, SET values quoted. Parsing the result gives the same
// tree (positions aside). Nodes: any ast.Statement, ast.Query, ast.Expr,
// ast.TableRef or *ast.TypeName.
func Format(n ast.Node) string {
	var f printer
	f.node(n)
	return f.String()
}

// FormatScript prints every statement of a script, each ending in ";\n".
func FormatScript(s *ast.Script) string {
	var f printer
	for _, st := range s.Statements {
		f.stmt(st)
		f.WriteString(";\n")
	}
	return f.String()
}

type printer struct{ strings.Builder }

func (f *printer) node(n ast.Node) {
	switch n := n.(type) {
	case ast.Statement:
		f.stmt(n)
	case ast.Query:
		f.query(n)
	case ast.Expr:
		f.expr(n, 0)
	case ast.TableRef:
		f.tableRef(n)
	case *ast.TypeName:
		f.typ(n)
	case nil:
	default:
		fmt.Fprintf(f, "<unknown node %T>", n)
	}
}

// quoteString is s as a SQL string literal.
func quoteString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// quoteIdent is s as a backquoted identifier.
func quoteIdent(s string) string {
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}

func (f *printer) ident(id ast.Ident) {
	if id.Quoted {
		f.WriteString(quoteIdent(id.Name))
	} else {
		f.WriteString(id.Name)
	}
}

func (f *printer) name(ids []ast.Ident) {
	for i, id := range ids {
		if i > 0 {
			f.WriteByte('.')
		}
		f.ident(id)
	}
}

// formatName prints a qualified name for a message.
func formatName(ids []ast.Ident) string {
	var f printer
	f.name(ids)
	return f.String()
}

func (f *printer) idents(ids []ast.Ident) {
	f.WriteByte('(')
	for i, id := range ids {
		if i > 0 {
			f.WriteString(", ")
		}
		f.ident(id)
	}
	f.WriteByte(')')
}

// ----------------------------------------------------------- statements

func (f *printer) stmt(s ast.Statement) {
	switch s := s.(type) {
	case *ast.CreateTable:
		f.WriteString("CREATE TABLE ")
		if s.IfNotExists {
			f.WriteString("IF NOT EXISTS ")
		}
		f.name(s.Name)
		f.WriteString(" (")
		sep := "\n  "
		for _, e := range s.Elements {
			f.WriteString(sep)
			sep = ",\n  "
			if c := e.Column; c != nil {
				f.columnDef(*c)
				if c.Metadata != "" || c.Virtual {
					f.WriteString(" METADATA FROM ")
					f.WriteString(quoteString(c.Metadata))
					if c.Virtual {
						f.WriteString(" VIRTUAL")
					}
				}
			} else if c := e.Computed; c != nil {
				f.ident(c.Name)
				f.WriteString(" AS ")
				f.expr(c.Expr, 0)
			}
		}
		if w := s.Watermark; w != nil {
			f.WriteString(sep)
			sep = ",\n  "
			f.WriteString("WATERMARK FOR ")
			f.ident(w.Column)
			f.WriteString(" AS ")
			f.expr(w.Expr, 0)
		}
		if s.PrimaryKey != nil {
			f.WriteString(sep)
			f.WriteString("PRIMARY KEY ")
			f.idents(s.PrimaryKey)
			f.WriteString(" NOT ENFORCED")
		}
		f.WriteString("\n)")
		if s.PartitionBy != nil {
			f.WriteString(" PARTITIONED BY ")
			f.idents(s.PartitionBy)
		}
		if s.Options != nil {
			f.WriteString(" WITH (")
			for i, o := range s.Options {
				if i > 0 {
					f.WriteByte(',')
				}
				f.WriteString("\n  ")
				f.WriteString(quoteString(o.Key))
				f.WriteString(" = ")
				f.WriteString(quoteString(o.Value))
			}
			if len(s.Options) > 0 {
				f.WriteString("\n")
			}
			f.WriteString(")")
		}
	case *ast.CreateView:
		f.WriteString("CREATE VIEW ")
		if s.IfNotExists {
			f.WriteString("IF NOT EXISTS ")
		}
		f.name(s.Name)
		if s.Columns != nil {
			f.WriteByte(' ')
			f.idents(s.Columns)
		}
		f.WriteString(" AS ")
		f.query(s.Query)
	case *ast.CreateFunction:
		f.WriteString("CREATE FUNCTION ")
		if s.IfNotExists {
			f.WriteString("IF NOT EXISTS ")
		}
		f.name(s.Name)
		f.WriteString(" AS ")
		f.WriteString(quoteString(s.Identifier))
		if s.Language != "" {
			f.WriteString(" LANGUAGE ")
			f.WriteString(s.Language)
		}
	case *ast.Drop:
		f.WriteString("DROP ")
		f.WriteString(s.Kind)
		if s.IfExists {
			f.WriteString(" IF EXISTS")
		}
		f.WriteByte(' ')
		f.name(s.Name)
	case *ast.Set:
		f.WriteString("SET")
		if s.Key != "" || s.Value != "" {
			f.WriteString(" " + quoteString(s.Key) + " = " + quoteString(s.Value))
		}
	case *ast.Reset:
		f.WriteString("RESET")
		if s.Key != "" {
			f.WriteString(" " + quoteString(s.Key))
		}
	case *ast.Insert:
		f.insert(s)
	case *ast.StatementSet:
		f.WriteString("EXECUTE STATEMENT SET BEGIN\n")
		for _, ins := range s.Inserts {
			f.insert(ins)
			f.WriteString(";\n")
		}
		f.WriteString("END")
	case *ast.QueryStatement:
		f.query(s.Query)
	case *ast.Explain:
		f.WriteString("EXPLAIN ")
		f.stmt(s.Stmt)
	case *ast.Show:
		f.WriteString("SHOW " + s.What)
	case *ast.Describe:
		f.WriteString("DESCRIBE ")
		f.name(s.Name)
	default:
		fmt.Fprintf(f, "<unknown statement %T>", s)
	}
}

func (f *printer) columnDef(c ast.ColumnDef) {
	f.ident(c.Name)
	f.WriteByte(' ')
	f.typ(c.Type)
	if c.Comment != "" {
		f.WriteString(" COMMENT ")
		f.WriteString(quoteString(c.Comment))
	}
}

func (f *printer) insert(s *ast.Insert) {
	if s.Overwrite {
		f.WriteString("INSERT OVERWRITE ")
	} else {
		f.WriteString("INSERT INTO ")
	}
	f.name(s.Table)
	if s.Columns != nil {
		f.WriteByte(' ')
		f.idents(s.Columns)
	}
	f.WriteByte('\n')
	f.query(s.Query)
}

// ---------------------------------------------------------------- types

func (f *printer) typ(t *ast.TypeName) {
	if t == nil {
		f.WriteString("<nil type>")
		return
	}
	f.WriteString(t.Name)
	switch t.Name {
	case "ROW":
		f.WriteByte('<')
		for i, c := range t.Fields {
			if i > 0 {
				f.WriteString(", ")
			}
			f.ident(c.Name)
			f.WriteByte(' ')
			f.typ(c.Type)
			if c.Comment != "" {
				f.WriteString(" " + quoteString(c.Comment))
			}
		}
		f.WriteByte('>')
	case "ARRAY", "MULTISET":
		f.WriteByte('<')
		f.typ(t.Elem)
		f.WriteByte('>')
	case "MAP":
		f.WriteByte('<')
		for i, c := range t.Fields {
			if i > 0 {
				f.WriteString(", ")
			}
			f.typ(c.Type)
		}
		f.WriteByte('>')
	default:
		if t.Params != nil {
			f.WriteByte('(')
			for i, n := range t.Params {
				if i > 0 {
					f.WriteString(", ")
				}
				f.WriteString(strconv.Itoa(n))
			}
			f.WriteByte(')')
		}
	}
	if t.NotNull {
		f.WriteString(" NOT NULL")
	}
}

// -------------------------------------------------------------- queries

func (f *printer) query(q ast.Query) {
	switch q := q.(type) {
	case *ast.Select:
		f.selectBlock(q)
	case *ast.SetOp:
		// Left-associative: a left operand needs parentheses only when it
		// binds looser (UNION under INTERSECT) or carries its own ORDER
		// BY/LIMIT; a right operand that is a set operation always does.
		f.operand(q.Left, q.Op == "INTERSECT" && isUnionLike(q.Left))
		f.WriteString("\n" + q.Op)
		if q.All {
			f.WriteString(" ALL")
		}
		f.WriteByte('\n')
		_, rightSet := q.Right.(*ast.SetOp)
		f.operand(q.Right, rightSet)
		f.orderLimit(q.OrderBy, q.Limit, nil)
	case *ast.Values:
		f.WriteString("VALUES ")
		for i, row := range q.Rows {
			if i > 0 {
				f.WriteString(", ")
			}
			f.WriteByte('(')
			f.exprs(row)
			f.WriteByte(')')
		}
	case *ast.With:
		f.WriteString("WITH ")
		for i, c := range q.CTEs {
			if i > 0 {
				f.WriteString(", ")
			}
			f.ident(c.Name)
			if c.Columns != nil {
				f.WriteByte(' ')
				f.idents(c.Columns)
			}
			f.WriteString(" AS (")
			f.query(c.Query)
			f.WriteString(")")
		}
		f.WriteByte('\n')
		if _, inner := q.Query.(*ast.With); inner {
			f.operand(q.Query, true)
		} else {
			f.query(q.Query)
		}
	case nil:
		f.WriteString("<nil query>")
	default:
		fmt.Fprintf(f, "<unknown query %T>", q)
	}
}

func isUnionLike(q ast.Query) bool {
	s, ok := q.(*ast.SetOp)
	return ok && s.Op != "INTERSECT"
}

// operand prints a query that is an operand of a set operation or the
// body of WITH, in parentheses when forced or when it carries its own
// ORDER BY, LIMIT or OFFSET or is a WITH.
func (f *printer) operand(q ast.Query, force bool) {
	switch q := q.(type) {
	case *ast.Select:
		force = force || q.OrderBy != nil || q.Limit != nil || q.Offset != nil
	case *ast.SetOp:
		force = force || q.OrderBy != nil || q.Limit != nil
	case *ast.With:
		force = true
	}
	if force {
		f.WriteByte('(')
		f.query(q)
		f.WriteByte(')')
		return
	}
	f.query(q)
}

func (f *printer) selectBlock(s *ast.Select) {
	f.WriteString("SELECT ")
	if s.Distinct {
		f.WriteString("DISTINCT ")
	}
	for i, it := range s.Items {
		if i > 0 {
			f.WriteString(", ")
		}
		if it.Star {
			for _, q := range it.Qualifier {
				f.ident(q)
				f.WriteByte('.')
			}
			f.WriteByte('*')
			continue
		}
		f.expr(it.Expr, 0)
		if it.Alias != nil {
			f.WriteString(" AS ")
			f.ident(*it.Alias)
		}
	}
	if s.From != nil {
		f.WriteString("\nFROM ")
		f.tableRef(s.From)
	}
	if s.Where != nil {
		f.WriteString("\nWHERE ")
		f.expr(s.Where, 0)
	}
	if s.GroupBy != nil {
		f.WriteString("\nGROUP BY ")
		f.exprs(s.GroupBy)
	}
	if s.Having != nil {
		f.WriteString("\nHAVING ")
		f.expr(s.Having, 0)
	}
	f.orderLimit(s.OrderBy, s.Limit, s.Offset)
}

func (f *printer) orderLimit(order []ast.OrderItem, limit, offset ast.Expr) {
	if order != nil {
		f.WriteString("\nORDER BY ")
		f.orderItems(order)
	}
	if limit != nil {
		f.WriteString("\nLIMIT ")
		f.expr(limit, 0)
	}
	if offset != nil {
		f.WriteString("\nOFFSET ")
		f.expr(offset, 0)
	}
}

func (f *printer) orderItems(items []ast.OrderItem) {
	for i, o := range items {
		if i > 0 {
			f.WriteString(", ")
		}
		f.expr(o.Expr, 0)
		if o.Desc {
			f.WriteString(" DESC")
		}
		if o.NullsFirst != nil {
			if *o.NullsFirst {
				f.WriteString(" NULLS FIRST")
			} else {
				f.WriteString(" NULLS LAST")
			}
		}
	}
}

func (f *printer) alias(a *ast.Alias) {
	if a == nil {
		return
	}
	f.WriteString(" AS ")
	f.ident(a.Name)
	if a.Columns != nil {
		f.idents(a.Columns)
	}
}

func (f *printer) tableRef(t ast.TableRef) {
	switch t := t.(type) {
	case *ast.TableName:
		f.name(t.Name)
		if t.ForSystemTime != nil {
			f.WriteString(" FOR SYSTEM_TIME AS OF ")
			f.expr(t.ForSystemTime, 0)
		}
		f.alias(t.Alias)
	case *ast.SubqueryRef:
		if t.Lateral {
			f.WriteString("LATERAL ")
		}
		f.WriteByte('(')
		f.query(t.Query)
		f.WriteByte(')')
		f.alias(t.Alias)
	case *ast.TableFunction:
		if t.Lateral {
			f.WriteString("LATERAL ")
		}
		f.WriteString("TABLE(")
		f.ident(t.Name)
		f.WriteByte('(')
		f.exprs(t.Args)
		f.WriteString("))")
		f.alias(t.Alias)
	case *ast.Join:
		// A comma join left of a JOIN needs parentheses: JOIN binds
		// tighter than the comma.
		if l, ok := t.Left.(*ast.Join); ok && l.Kind == ast.JoinComma && t.Kind != ast.JoinComma {
			f.WriteByte('(')
			f.tableRef(t.Left)
			f.WriteByte(')')
		} else {
			f.tableRef(t.Left)
		}
		if t.Kind == ast.JoinComma {
			f.WriteString(", ")
		} else {
			f.WriteString("\n" + string(t.Kind) + " JOIN ")
		}
		// Joins are left-deep; a join on the right needs parentheses,
		// except a JOIN right of a comma (JOIN binds tighter).
		if r, ok := t.Right.(*ast.Join); ok && (t.Kind != ast.JoinComma || r.Kind == ast.JoinComma) {
			f.WriteByte('(')
			f.tableRef(t.Right)
			f.WriteByte(')')
		} else {
			f.tableRef(t.Right)
		}
		if t.On != nil {
			f.WriteString(" ON ")
			f.expr(t.On, 0)
		}
		if t.Using != nil {
			f.WriteString(" USING ")
			f.idents(t.Using)
		}
	case nil:
		f.WriteString("<nil table>")
	default:
		fmt.Fprintf(f, "<unknown table %T>", t)
	}
}

// ---------------------------------------------------------- expressions

// Precedence levels, as the parser reads them.
const (
	precOr = 1 + iota
	precAnd
	precNot
	precCmp
	precAdd
	precMul
	precUnary
	precPrimary
)

var binaryPrec = map[string]int{
	"OR": precOr, "AND": precAnd,
	"=": precCmp, "<>": precCmp, "<": precCmp, "<=": precCmp, ">": precCmp, ">=": precCmp,
	"+": precAdd, "-": precAdd, "||": precAdd,
	"*": precMul, "/": precMul, "%": precMul,
}

func exprPrec(e ast.Expr) int {
	switch e := e.(type) {
	case *ast.Binary:
		return binaryPrec[e.Op]
	case *ast.Unary:
		if e.Op == "NOT" {
			return precNot
		}
		return precUnary
	case *ast.Exists:
		if e.Not {
			return precNot
		}
	case *ast.Like, *ast.Between, *ast.In, *ast.Is, *ast.IsDistinct:
		return precCmp
	}
	return precPrimary
}

func (f *printer) exprs(es []ast.Expr) {
	for i, e := range es {
		if i > 0 {
			f.WriteString(", ")
		}
		f.expr(e, 0)
	}
}

// expr prints e, in parentheses when it binds looser than min.
func (f *printer) expr(e ast.Expr, min int) {
	if exprPrec(e) < min {
		f.WriteByte('(')
		f.expr(e, 0)
		f.WriteByte(')')
		return
	}
	switch e := e.(type) {
	case *ast.ColumnRef:
		f.name(e.Parts)
	case *ast.NumberLit:
		f.WriteString(e.Text)
	case *ast.StringLit:
		f.WriteString(quoteString(e.Value))
	case *ast.BoolLit:
		if e.Value {
			f.WriteString("TRUE")
		} else {
			f.WriteString("FALSE")
		}
	case *ast.NullLit:
		f.WriteString("NULL")
	case *ast.IntervalLit:
		f.WriteString("INTERVAL ")
		if e.Negative {
			f.WriteByte('-')
		}
		f.WriteString(quoteString(e.Value) + " " + e.Unit)
		if e.ToUnit != "" {
			f.WriteString(" TO " + e.ToUnit)
		}
	case *ast.TypedLit:
		f.WriteString(e.Type + " " + quoteString(e.Value))
	case *ast.Unary:
		if e.Op == "NOT" {
			f.WriteString("NOT ")
			// NOT (EXISTS ...) must not print as NOT EXISTS, which is
			// Exists{Not: true}.
			if x, ok := e.X.(*ast.Exists); ok && !x.Not {
				f.WriteByte('(')
				f.expr(e.X, 0)
				f.WriteByte(')')
			} else {
				f.expr(e.X, precNot)
			}
			return
		}
		f.WriteString(e.Op)
		if _, ok := e.X.(*ast.Unary); ok {
			f.WriteByte('(')
			f.expr(e.X, 0)
			f.WriteByte(')')
		} else {
			f.expr(e.X, precUnary)
		}
	case *ast.Binary:
		p := binaryPrec[e.Op]
		f.expr(e.L, p)
		f.WriteString(" " + e.Op + " ")
		f.expr(e.R, p+1)
	case *ast.Like:
		f.expr(e.X, precCmp)
		if e.Not {
			f.WriteString(" NOT")
		}
		if e.Similar {
			f.WriteString(" SIMILAR TO ")
		} else {
			f.WriteString(" LIKE ")
		}
		f.expr(e.Pattern, precAdd)
		if e.Escape != nil {
			f.WriteString(" ESCAPE ")
			f.expr(e.Escape, precAdd)
		}
	case *ast.Between:
		f.expr(e.X, precCmp)
		if e.Not {
			f.WriteString(" NOT")
		}
		f.WriteString(" BETWEEN ")
		if e.Symmetric {
			f.WriteString("SYMMETRIC ")
		}
		f.expr(e.Lo, precAdd)
		f.WriteString(" AND ")
		f.expr(e.Hi, precAdd)
	case *ast.In:
		f.expr(e.X, precCmp)
		if e.Not {
			f.WriteString(" NOT")
		}
		f.WriteString(" IN (")
		if e.Query != nil {
			f.query(e.Query)
		} else {
			f.exprs(e.List)
		}
		f.WriteByte(')')
	case *ast.Is:
		f.expr(e.X, precCmp)
		f.WriteString(" IS ")
		if e.Not {
			f.WriteString("NOT ")
		}
		f.WriteString(e.What)
	case *ast.IsDistinct:
		f.expr(e.L, precCmp)
		f.WriteString(" IS ")
		if e.Not {
			f.WriteString("NOT ")
		}
		f.WriteString("DISTINCT FROM ")
		f.expr(e.R, precAdd)
	case *ast.Exists:
		if e.Not {
			f.WriteString("NOT ")
		}
		f.WriteString("EXISTS (")
		f.query(e.Query)
		f.WriteByte(')')
	case *ast.Subquery:
		f.WriteByte('(')
		f.query(e.Query)
		f.WriteByte(')')
	case *ast.Case:
		f.WriteString("CASE")
		if e.Operand != nil {
			f.WriteByte(' ')
			f.expr(e.Operand, 0)
		}
		for _, w := range e.Whens {
			f.WriteString(" WHEN ")
			f.expr(w.Cond, 0)
			f.WriteString(" THEN ")
			f.expr(w.Result, 0)
		}
		if e.Else != nil {
			f.WriteString(" ELSE ")
			f.expr(e.Else, 0)
		}
		f.WriteString(" END")
	case *ast.Cast:
		if e.Try {
			f.WriteString("TRY_CAST(")
		} else {
			f.WriteString("CAST(")
		}
		f.expr(e.X, 0)
		f.WriteString(" AS ")
		f.typ(e.To)
		f.WriteByte(')')
	case *ast.Extract:
		f.WriteString("EXTRACT(" + e.Unit + " FROM ")
		f.expr(e.X, 0)
		f.WriteByte(')')
	case *ast.Call:
		f.call(e)
	case *ast.TableArg:
		f.WriteString("TABLE ")
		f.name(e.Name)
	case *ast.Descriptor:
		f.WriteString("DESCRIPTOR")
		f.idents(e.Columns)
	case *ast.NamedArg:
		f.ident(e.Name)
		f.WriteString(" => ")
		f.expr(e.Value, 0)
	case *ast.FieldAccess:
		switch e.X.(type) {
		case *ast.Call, *ast.Index, *ast.FieldAccess:
			f.expr(e.X, precPrimary)
		default:
			f.WriteByte('(')
			f.expr(e.X, 0)
			f.WriteByte(')')
		}
		f.WriteByte('.')
		f.ident(e.Field)
	case *ast.Index:
		f.expr(e.X, precPrimary)
		f.WriteByte('[')
		f.expr(e.Index, 0)
		f.WriteByte(']')
	case *ast.RowExpr:
		f.WriteString("ROW(")
		f.exprs(e.Items)
		f.WriteByte(')')
	case *ast.ArrayExpr:
		f.WriteString("ARRAY[")
		f.exprs(e.Items)
		f.WriteByte(']')
	case nil:
		f.WriteString("<nil expr>")
	default:
		fmt.Fprintf(f, "<unknown expr %T>", e)
	}
}

func (f *printer) call(c *ast.Call) {
	up := upperASCII(c.Name.Name)
	if !c.Name.Quoted && niladic[up] && len(c.Args) == 0 && !c.Star && !c.Distinct && c.Filter == nil && c.Over == nil {
		f.WriteString(c.Name.Name)
		return
	}
	f.ident(c.Name)
	f.WriteByte('(')
	switch {
	case c.Star:
		f.WriteByte('*')
	case !c.Name.Quoted && up == "TRIM" && len(c.Args) == 3 && isTrimMode(c.Args[1]) && !c.Distinct:
		f.WriteString(c.Args[1].(*ast.StringLit).Value + " ")
		f.expr(c.Args[2], 0)
		f.WriteString(" FROM ")
		f.expr(c.Args[0], 0)
	case !c.Name.Quoted && up == "SUBSTRING" && (len(c.Args) == 2 || len(c.Args) == 3) && !c.Distinct:
		f.expr(c.Args[0], 0)
		f.WriteString(" FROM ")
		f.expr(c.Args[1], 0)
		if len(c.Args) == 3 {
			f.WriteString(" FOR ")
			f.expr(c.Args[2], 0)
		}
	case !c.Name.Quoted && (up == "FLOOR" || up == "CEIL" || up == "CEILING") && len(c.Args) == 2 && isTimeUnit(c.Args[1]) && !c.Distinct:
		f.expr(c.Args[0], 0)
		f.WriteString(" TO ")
		f.WriteString(c.Args[1].(*ast.ColumnRef).Parts[0].Name)
	case !c.Name.Quoted && up == "POSITION" && len(c.Args) == 2 && !c.Distinct:
		f.expr(c.Args[0], precAdd)
		f.WriteString(" IN ")
		f.expr(c.Args[1], 0)
	case !c.Name.Quoted && up == "OVERLAY" && (len(c.Args) == 3 || len(c.Args) == 4) && !c.Distinct:
		f.expr(c.Args[0], 0)
		f.WriteString(" PLACING ")
		f.expr(c.Args[1], 0)
		f.WriteString(" FROM ")
		f.expr(c.Args[2], 0)
		if len(c.Args) == 4 {
			f.WriteString(" FOR ")
			f.expr(c.Args[3], 0)
		}
	default:
		if c.Distinct {
			f.WriteString("DISTINCT ")
		}
		if !c.Name.Quoted && up == "POSITION" {
			// A comparison-level argument would read as POSITION(a IN b).
			for i, a := range c.Args {
				if i > 0 {
					f.WriteString(", ")
				}
				f.expr(a, precAdd)
			}
		} else {
			f.exprs(c.Args)
		}
	}
	f.WriteByte(')')
	if c.Filter != nil {
		f.WriteString(" FILTER (WHERE ")
		f.expr(c.Filter, 0)
		f.WriteByte(')')
	}
	if w := c.Over; w != nil {
		f.WriteString(" OVER (")
		sep := ""
		if w.PartitionBy != nil {
			f.WriteString("PARTITION BY ")
			f.exprs(w.PartitionBy)
			sep = " "
		}
		if w.OrderBy != nil {
			f.WriteString(sep + "ORDER BY ")
			f.orderItems(w.OrderBy)
			sep = " "
		}
		if fr := w.Frame; fr != nil {
			f.WriteString(sep)
			if fr.Rows {
				f.WriteString("ROWS")
			} else {
				f.WriteString("RANGE")
			}
			f.WriteString(" BETWEEN ")
			f.frameBound(fr.Start)
			f.WriteString(" AND ")
			f.frameBound(fr.End)
		}
		f.WriteByte(')')
	}
}

func isTrimMode(e ast.Expr) bool {
	s, ok := e.(*ast.StringLit)
	return ok && trimModes[s.Value]
}

func (f *printer) frameBound(b ast.FrameBound) {
	if b.Offset != nil {
		f.expr(b.Offset, precAdd)
		f.WriteByte(' ')
	}
	f.WriteString(b.Kind)
}

// timeUnits are the units of FLOOR/CEIL(x TO unit).
var timeUnits = map[string]bool{"MILLISECOND": true, "SECOND": true, "MINUTE": true, "HOUR": true, "DAY": true, "WEEK": true, "MONTH": true, "QUARTER": true, "YEAR": true}

// isTimeUnit reports whether e is a time unit written as a one-part
// unquoted name, which FLOOR/CEIL print as "x TO unit".
func isTimeUnit(e ast.Expr) bool {
	r, ok := e.(*ast.ColumnRef)
	return ok && len(r.Parts) == 1 && !r.Parts[0].Quoted && timeUnits[upperASCII(r.Parts[0].Name)]
}
