package parser

import (
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/sql/ast"
)

// maxDepth bounds the nesting of expressions, queries and types, so that
// hostile input fails with an error instead of exhausting the stack.
const maxDepth = 400

type parser struct {
	src   string
	toks  []token
	i     int
	depth int
}

// bailout carries a syntax error up the recursive descent; the API
// functions recover it and return it. Any other panic is a bug and is not
// recovered.
type bailout struct{ err *Error }

func newParser(src string) (*parser, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	return &parser{src: src, toks: toks}, nil
}

func (p *parser) run(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			b, ok := r.(bailout)
			if !ok {
				panic(r)
			}
			err = b.err
		}
	}()
	f()
	return nil
}

// ParseScript parses statements separated by ';' (a final ';' is
// optional). Comments are `-- to the end of the line` and `/* ... */`.
func ParseScript(src string) (*ast.Script, error) {
	p, err := newParser(src)
	if err != nil {
		return nil, err
	}
	s := &ast.Script{}
	err = p.run(func() {
		for {
			for p.acceptOp(";") {
			}
			if p.peek().kind == tEOF {
				return
			}
			s.Statements = append(s.Statements, p.statement())
			if !p.acceptOp(";") && p.peek().kind != tEOF {
				p.failExpected("';' or the end of the input after the statement")
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ParseStatement parses one statement; a final ';' is optional.
func ParseStatement(src string) (ast.Statement, error) {
	p, err := newParser(src)
	if err != nil {
		return nil, err
	}
	var st ast.Statement
	err = p.run(func() {
		st = p.statement()
		p.acceptOp(";")
		p.expectEOF("the end of the input after the statement (one statement only; use ParseScript for several)")
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// ParseQuery parses one query (SELECT, VALUES, WITH ..., set
// operations); a final ';' is optional.
func ParseQuery(src string) (ast.Query, error) {
	p, err := newParser(src)
	if err != nil {
		return nil, err
	}
	var q ast.Query
	err = p.run(func() {
		if !p.startsQuery() {
			p.failExpected("a query (SELECT, VALUES or WITH)")
		}
		q = p.query()
		p.acceptOp(";")
		p.expectEOF("the end of the query")
	})
	if err != nil {
		return nil, err
	}
	return q, nil
}

// ParseExpr parses one scalar expression.
func ParseExpr(src string) (ast.Expr, error) {
	p, err := newParser(src)
	if err != nil {
		return nil, err
	}
	var e ast.Expr
	err = p.run(func() {
		e = p.expr()
		p.expectEOF("an operator or the end of the expression")
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// ------------------------------------------------------------ helpers

func (p *parser) peek() *token { return &p.toks[p.i] }

func (p *parser) peekAt(k int) *token {
	if p.i+k < len(p.toks) {
		return &p.toks[p.i+k]
	}
	return &p.toks[len(p.toks)-1]
}

func (p *parser) next() *token {
	t := &p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) isKw(kw string) bool {
	t := &p.toks[p.i]
	return t.kind == tWord && t.upper == kw
}

func (p *parser) isKwAt(k int, kw string) bool {
	t := p.peekAt(k)
	return t.kind == tWord && t.upper == kw
}

func (p *parser) acceptKw(kw string) bool {
	if p.isKw(kw) {
		p.i++
		return true
	}
	return false
}

// acceptKws accepts a sequence of keywords, all or none.
func (p *parser) acceptKws(kws ...string) bool {
	for k, kw := range kws {
		if !p.isKwAt(k, kw) {
			return false
		}
	}
	p.i += len(kws)
	return true
}

func (p *parser) expectKw(kw, context string) *token {
	if !p.isKw(kw) {
		p.failExpected(kw+context, kw)
	}
	return p.next()
}

func (p *parser) isOp(op string) bool {
	t := &p.toks[p.i]
	return t.kind == tOp && t.text == op
}

func (p *parser) acceptOp(op string) bool {
	if p.isOp(op) {
		p.i++
		return true
	}
	return false
}

func (p *parser) expectOp(op, context string) *token {
	if !p.isOp(op) {
		p.failExpected("'" + op + "'" + context)
	}
	return p.next()
}

func (p *parser) expectEOF(what string) {
	if p.peek().kind != tEOF {
		p.failExpected(what)
	}
}

func (p *parser) failAt(t *token, format string, args ...any) {
	panic(bailout{&Error{Pos: t.pos, Msg: fmt.Sprintf(format, args...), Near: near(p.src, t.pos.Offset)}})
}

// failExpected reports "expected WHAT, found TOKEN" at the current token,
// suggesting the nearest of kws when the token is a misspelled keyword.
func (p *parser) failExpected(what string, kws ...string) {
	t := p.peek()
	msg := "expected " + what + ", found " + describe(t)
	if t.kind == tWord && len(kws) > 0 {
		msg += suggest(t.text, kws...)
	}
	p.failAt(t, "%s", msg)
}

func (p *parser) enter() {
	p.depth++
	if p.depth > maxDepth {
		p.failAt(p.peek(), "nesting too deep (more than %d levels)", maxDepth)
	}
}

func (p *parser) leave() { p.depth-- }

// reserved are the words that end an expression or a list and so are
// never read as a bare identifier or alias (write them `backquoted`).
var reserved = map[string]bool{
	"SELECT": true, "FROM": true, "WHERE": true, "GROUP": true, "HAVING": true,
	"ORDER": true, "BY": true, "LIMIT": true, "OFFSET": true, "FETCH": true,
	"UNION": true, "INTERSECT": true, "EXCEPT": true, "MINUS": true,
	"JOIN": true, "INNER": true, "LEFT": true, "RIGHT": true, "FULL": true,
	"CROSS": true, "OUTER": true, "NATURAL": true, "ON": true, "USING": true,
	"AS": true, "AND": true, "OR": true, "NOT": true, "IS": true, "IN": true,
	"LIKE": true, "BETWEEN": true, "SIMILAR": true, "ESCAPE": true,
	"CASE": true, "WHEN": true, "THEN": true, "ELSE": true, "END": true,
	"WITH": true, "VALUES": true, "ALL": true, "DISTINCT": true,
	"NULL": true, "TRUE": true, "FALSE": true, "INTERVAL": true,
	"CAST": true, "EXISTS": true, "LATERAL": true, "TABLE": true, "FOR": true,
	"INSERT": true, "INTO": true, "CREATE": true, "DROP": true,
	"WINDOW": true, "OVER": true, "MATCH_RECOGNIZE": true,
}

// isName reports whether the current token can be an identifier.
func (p *parser) isName() bool {
	t := p.peek()
	return t.kind == tQIdent || t.kind == tWord && !reserved[t.upper]
}

func (p *parser) ident(what string) ast.Ident {
	t := p.peek()
	if t.kind == tQIdent {
		p.i++
		return ast.Ident{Name: t.text, Quoted: true, Pos: t.pos}
	}
	if t.kind == tWord && !reserved[t.upper] {
		p.i++
		return ast.Ident{Name: t.text, Pos: t.pos}
	}
	if t.kind == tWord {
		p.failAt(t, "expected %s, found the keyword %s (write `%s` to use it as a name)", what, t.upper, t.text)
	}
	p.failExpected(what)
	return ast.Ident{}
}

// qualifiedName is name(.name)*.
func (p *parser) qualifiedName(what string) []ast.Ident {
	names := []ast.Ident{p.ident(what)}
	for p.isOp(".") {
		p.i++
		names = append(names, p.ident("a name after '.'"))
	}
	return names
}

// identList is ( name, ... ).
func (p *parser) identList(what string) []ast.Ident {
	p.expectOp("(", " before the "+what)
	var out []ast.Ident
	for {
		out = append(out, p.ident("a column name"))
		if p.acceptOp(")") {
			return out
		}
		if !p.acceptOp(",") {
			p.failExpected("a comma or ')' in the " + what)
		}
	}
}

func (p *parser) stringLit(what string) string {
	t := p.peek()
	if t.kind != tString {
		p.failExpected(what)
	}
	p.i++
	return t.text
}

// ---------------------------------------------------------- statements

var statementKeywords = []string{"SELECT", "INSERT", "CREATE", "DROP", "SET", "RESET",
	"EXPLAIN", "SHOW", "DESCRIBE", "DESC", "EXECUTE", "BEGIN", "WITH", "VALUES"}

func (p *parser) statement() ast.Statement {
	t := p.peek()
	if p.startsQuery() {
		return &ast.QueryStatement{Query: p.query(), Pos: t.pos}
	}
	if t.kind == tWord {
		switch t.upper {
		case "CREATE":
			return p.create()
		case "DROP":
			return p.drop()
		case "SET":
			return p.set()
		case "RESET":
			return p.reset()
		case "INSERT":
			return p.insert()
		case "EXECUTE", "BEGIN":
			return p.statementSet()
		case "EXPLAIN":
			p.i++
			if p.acceptKw("PLAN") {
				p.expectKw("FOR", " after EXPLAIN PLAN")
			}
			inner := p.peek()
			var st ast.Statement
			switch {
			case p.startsQuery():
				st = &ast.QueryStatement{Query: p.query(), Pos: inner.pos}
			case p.isKw("INSERT"):
				st = p.insert()
			case p.isKw("EXECUTE") || p.isKw("BEGIN"):
				st = p.statementSet()
			default:
				p.failExpected("a query, an INSERT or a statement set after EXPLAIN")
			}
			return &ast.Explain{Stmt: st, Pos: t.pos}
		case "SHOW":
			p.i++
			w := p.peek()
			if w.kind != tWord || (w.upper != "TABLES" && w.upper != "VIEWS" && w.upper != "FUNCTIONS") {
				p.failExpected("TABLES, VIEWS or FUNCTIONS after SHOW", "TABLES", "VIEWS", "FUNCTIONS")
			}
			p.i++
			return &ast.Show{What: w.upper, Pos: t.pos}
		case "DESCRIBE", "DESC":
			p.i++
			return &ast.Describe{Name: p.qualifiedName("a table or view name"), Pos: t.pos}
		}
	}
	msg := "expected a statement (SELECT, INSERT, CREATE, DROP, SET, RESET, EXPLAIN, SHOW, DESCRIBE, EXECUTE STATEMENT SET), found " + describe(t)
	if t.kind == tWord {
		msg += suggest(t.text, statementKeywords...)
	}
	p.failAt(t, "%s", msg)
	return nil
}

func (p *parser) ifNotExists() bool {
	if p.acceptKws("IF", "NOT", "EXISTS") {
		return true
	}
	if p.isKw("IF") {
		p.i++
		p.failExpected("NOT EXISTS after IF")
	}
	return false
}

func (p *parser) create() ast.Statement {
	start := p.next() // CREATE
	temporary := p.acceptKw("TEMPORARY")
	system := temporary && p.acceptKw("SYSTEM")
	switch {
	case !system && p.acceptKw("TABLE"):
		return p.createTable(start)
	case !system && p.acceptKw("VIEW"):
		v := &ast.CreateView{Pos: start.pos}
		v.IfNotExists = p.ifNotExists()
		v.Name = p.qualifiedName("a view name")
		if p.isOp("(") {
			v.Columns = p.identList("view's column list")
		}
		p.expectKw("AS", " before the view's query")
		if !p.startsQuery() {
			p.failExpected("a query (SELECT, VALUES or WITH) after AS")
		}
		v.Query = p.query()
		return v
	case p.acceptKw("FUNCTION"):
		f := &ast.CreateFunction{Pos: start.pos}
		f.IfNotExists = p.ifNotExists()
		f.Name = p.qualifiedName("a function name")
		p.expectKw("AS", " and the function's identifier in quotes after the function name")
		f.Identifier = p.stringLit("the function's identifier as a string, e.g. 'com.example.MyFunction'")
		if p.acceptKw("LANGUAGE") {
			l := p.peek()
			if l.kind != tWord || (l.upper != "JAVA" && l.upper != "SCALA" && l.upper != "PYTHON" && l.upper != "GO") {
				p.failExpected("JAVA, SCALA, PYTHON or GO after LANGUAGE", "JAVA", "SCALA", "PYTHON")
			}
			p.i++
			f.Language = l.upper
		}
		return f
	}
	if system {
		p.failExpected("FUNCTION after CREATE TEMPORARY SYSTEM", "FUNCTION")
	}
	p.failExpected("TABLE, VIEW or FUNCTION after CREATE", "TABLE", "VIEW", "FUNCTION", "TEMPORARY")
	return nil
}

func (p *parser) createTable(start *token) *ast.CreateTable {
	ct := &ast.CreateTable{Pos: start.pos}
	ct.IfNotExists = p.ifNotExists()
	ct.Name = p.qualifiedName("a table name")
	p.expectOp("(", " and the column list after the table name")
	for {
		p.tableElement(ct)
		if p.acceptOp(")") {
			break
		}
		if !p.acceptOp(",") {
			p.failExpected("a comma or ')' after the column definition")
		}
	}
	if p.acceptKw("COMMENT") {
		p.stringLit("the table's comment as a string")
	}
	if p.acceptKw("PARTITIONED") {
		p.expectKw("BY", " after PARTITIONED")
		ct.PartitionBy = p.identList("PARTITIONED BY column list")
	}
	if p.acceptKw("WITH") {
		ct.Options = p.options()
	}
	if p.isKw("LIKE") {
		p.failAt(p.peek(), "CREATE TABLE ... LIKE is not supported; list the columns and the WITH options")
	}
	return ct
}

func (p *parser) tableElement(ct *ast.CreateTable) {
	t := p.peek()
	switch {
	case p.isKw("WATERMARK") && p.isKwAt(1, "FOR"):
		p.i += 2
		w := &ast.Watermark{Pos: t.pos}
		w.Column = p.ident("the watermark's time column")
		p.expectKw("AS", " and the watermark expression after WATERMARK FOR column")
		w.Expr = p.expr()
		if ct.Watermark != nil {
			p.failAt(t, "a table has at most one WATERMARK (the first is at %s)", ct.Watermark.Pos)
		}
		ct.Watermark = w
		return
	case p.isKw("CONSTRAINT") || p.isKw("PRIMARY") && p.isKwAt(1, "KEY"):
		if p.acceptKw("CONSTRAINT") {
			p.ident("the constraint's name")
		}
		p.expectKw("PRIMARY", " KEY after CONSTRAINT name")
		p.expectKw("KEY", " after PRIMARY")
		cols := p.identList("PRIMARY KEY column list")
		p.notEnforced()
		if ct.PrimaryKey != nil {
			p.failAt(t, "a table has at most one PRIMARY KEY")
		}
		ct.PrimaryKey = cols
		return
	}
	name := p.ident("a column name, WATERMARK FOR or PRIMARY KEY")
	if p.acceptKw("AS") {
		cc := &ast.ComputedColumn{Name: name, Expr: p.expr()}
		if p.acceptKw("COMMENT") {
			p.stringLit("the column's comment as a string")
		}
		ct.Elements = append(ct.Elements, ast.TableElement{Computed: cc})
		return
	}
	if !p.startsType() {
		p.failExpected("a column type or AS after the column name " + quote(name.Name))
	}
	col := &ast.ColumnDef{Name: name, Type: p.typeName()}
	if p.acceptKw("METADATA") {
		col.Metadata = name.Name
		if p.acceptKw("FROM") {
			col.Metadata = p.stringLit("the metadata key as a string after METADATA FROM")
		}
		col.Virtual = p.acceptKw("VIRTUAL")
	}
	if p.isKw("PRIMARY") {
		p.i++
		p.expectKw("KEY", " after PRIMARY")
		p.notEnforced()
		if ct.PrimaryKey != nil {
			p.failAt(t, "a table has at most one PRIMARY KEY")
		}
		ct.PrimaryKey = []ast.Ident{name}
	}
	if p.acceptKw("COMMENT") {
		col.Comment = p.stringLit("the column's comment as a string")
	}
	ct.Elements = append(ct.Elements, ast.TableElement{Column: col})
}

func (p *parser) notEnforced() {
	if !p.acceptKws("NOT", "ENFORCED") {
		p.failExpected("NOT ENFORCED after the primary key (Flink does not enforce primary keys)")
	}
}

// options is ( 'key' = 'value', ... ).
func (p *parser) options() []ast.Option {
	p.expectOp("(", " after WITH")
	var out []ast.Option
	if p.acceptOp(")") {
		return out
	}
	for {
		t := p.peek()
		k := p.stringLit("an option key in quotes, e.g. 'connector'")
		p.expectOp("=", " after the option key")
		v := p.stringLit("the option's value in quotes, e.g. 'kafka'")
		out = append(out, ast.Option{Key: k, Value: v, Pos: t.pos})
		if p.acceptOp(")") {
			return out
		}
		if !p.acceptOp(",") {
			p.failExpected("a comma or ')' after the option")
		}
	}
}

func (p *parser) drop() ast.Statement {
	start := p.next()
	if p.acceptKw("TEMPORARY") {
		p.acceptKw("SYSTEM")
	}
	k := p.peek()
	if k.kind != tWord || (k.upper != "TABLE" && k.upper != "VIEW" && k.upper != "FUNCTION") {
		p.failExpected("TABLE, VIEW or FUNCTION after DROP", "TABLE", "VIEW", "FUNCTION")
	}
	p.i++
	d := &ast.Drop{Kind: k.upper, Pos: start.pos}
	if p.acceptKws("IF", "EXISTS") {
		d.IfExists = true
	}
	d.Name = p.qualifiedName("a name to drop")
	return d
}

// atStatementEnd reports whether the current token ends a statement.
func (p *parser) atStatementEnd() bool {
	t := p.peek()
	return t.kind == tEOF || t.kind == tOp && t.text == ";"
}

// rawUntil returns the trimmed source text from the current token up to
// (not including) the first token for which stop is true, consuming it.
func (p *parser) rawUntil(stop func() bool) string {
	if stop() {
		return ""
	}
	from := p.peek().pos.Offset
	end := from
	for !stop() {
		end = p.next().end
	}
	return strings.TrimSpace(p.src[from:end])
}

// setValue is a quoted string, which must be followed by a token for
// which stop is true (else "expected after"), or the raw text of
// unquoted tokens up to one.
func (p *parser) setValue(stop func() bool, after string) string {
	if p.peek().kind == tString {
		v := p.next().text
		if !stop() {
			p.failExpected(after)
		}
		return v
	}
	return p.rawUntil(stop)
}

func (p *parser) set() ast.Statement {
	start := p.next()
	s := &ast.Set{Pos: start.pos}
	if p.atStatementEnd() {
		return s
	}
	s.Key = p.setValue(func() bool { return p.isOp("=") || p.atStatementEnd() }, "'=' after the key in SET 'key' = 'value'")
	if s.Key == "" {
		p.failExpected("a key before '=' in SET 'key' = 'value'")
	}
	p.expectOp("=", " after the key in SET 'key' = 'value'")
	s.Value = p.setValue(p.atStatementEnd, "';' or the end of the input after the value in SET 'key' = 'value'")
	if s.Value == "" {
		p.failExpected("a value after '=' in SET 'key' = 'value'")
	}
	return s
}

func (p *parser) reset() ast.Statement {
	start := p.next()
	r := &ast.Reset{Pos: start.pos}
	r.Key = p.setValue(p.atStatementEnd, "';' or the end of the input after the key in RESET 'key'")
	return r
}

func (p *parser) insert() *ast.Insert {
	start := p.next() // INSERT
	ins := &ast.Insert{Pos: start.pos}
	switch {
	case p.acceptKw("INTO"):
	case p.acceptKw("OVERWRITE"):
		ins.Overwrite = true
	default:
		p.failExpected("INTO or OVERWRITE after INSERT", "INTO", "OVERWRITE")
	}
	ins.Table = p.qualifiedName("the table to insert into")
	if p.isKw("PARTITION") {
		p.failAt(p.peek(), "INSERT ... PARTITION (...) is not supported")
	}
	if p.isOp("(") && !p.startsQueryAt(1) {
		ins.Columns = p.identList("INSERT column list")
	}
	if !p.startsQuery() {
		p.failExpected("a query (SELECT, VALUES or WITH) after INSERT INTO " + formatName(ins.Table))
	}
	ins.Query = p.query()
	return ins
}

// statementSet is EXECUTE STATEMENT SET BEGIN insert; ... END or
// BEGIN STATEMENT SET; insert; ... END.
func (p *parser) statementSet() *ast.StatementSet {
	start := p.peek()
	ss := &ast.StatementSet{Pos: start.pos}
	if p.acceptKw("EXECUTE") {
		if !p.acceptKws("STATEMENT", "SET") {
			p.failExpected("STATEMENT SET after EXECUTE (EXECUTE STATEMENT SET BEGIN ... END)", "STATEMENT")
		}
		p.expectKw("BEGIN", " after EXECUTE STATEMENT SET")
	} else {
		p.expectKw("BEGIN", "")
		if !p.acceptKws("STATEMENT", "SET") {
			p.failExpected("STATEMENT SET after BEGIN (BEGIN STATEMENT SET; ... END)", "STATEMENT")
		}
	}
	for {
		for p.acceptOp(";") {
		}
		if p.acceptKw("END") {
			break
		}
		if !p.isKw("INSERT") {
			p.failExpected("INSERT or END in the statement set (a statement set holds only INSERT statements)", "INSERT", "END")
		}
		ss.Inserts = append(ss.Inserts, p.insert())
		if !p.isOp(";") && !p.isKw("END") {
			p.failExpected("';' or END after the INSERT in the statement set", "END")
		}
	}
	if len(ss.Inserts) == 0 {
		p.failAt(start, "a statement set needs at least one INSERT")
	}
	return ss
}
