package parser

import (
	"strconv"

	"github.com/sluicehq/sluice/sql/ast"
)

// typeNames maps every accepted spelling of a type's first word to its
// canonical name (the one sql/types.FromAST switches on). Multi-word
// spellings (DOUBLE PRECISION, CHARACTER VARYING, TIMESTAMP WITH LOCAL
// TIME ZONE) are folded in typeName.
var typeNames = map[string]string{
	"BOOLEAN": "BOOLEAN", "BOOL": "BOOLEAN",
	"TINYINT": "TINYINT", "SMALLINT": "SMALLINT",
	"INT": "INT", "INTEGER": "INT", "BIGINT": "BIGINT",
	"FLOAT": "FLOAT", "REAL": "FLOAT", "DOUBLE": "DOUBLE",
	"DECIMAL": "DECIMAL", "DEC": "DECIMAL", "NUMERIC": "DECIMAL",
	"CHAR": "CHAR", "CHARACTER": "CHAR", "VARCHAR": "VARCHAR", "STRING": "STRING",
	"BINARY": "BINARY", "VARBINARY": "VARBINARY", "BYTES": "BYTES",
	"DATE": "DATE", "TIME": "TIME", "TIMESTAMP": "TIMESTAMP", "TIMESTAMP_LTZ": "TIMESTAMP_LTZ",
	"ROW": "ROW", "ARRAY": "ARRAY", "MAP": "MAP", "MULTISET": "MULTISET",
}

func (p *parser) startsType() bool {
	t := p.peek()
	return t.kind == tWord && typeNames[t.upper] != ""
}

// typeName parses a column type. MAP<K, V> is TypeName{Name: "MAP",
// Fields: [{Name: key, Type: K}, {Name: value, Type: V}]}; MULTISET<T>
// is like ARRAY<T> (Elem). NOT NULL sets NotNull.
func (p *parser) typeName() *ast.TypeName {
	p.enter()
	defer p.leave()
	t := p.peek()
	if t.kind != tWord || typeNames[t.upper] == "" {
		p.failExpected("a type (BOOLEAN, INT, BIGINT, DOUBLE, DECIMAL(p, s), VARCHAR(n), STRING, DATE, TIMESTAMP(p), ROW<...>, ARRAY<...>, MAP<...>)",
			"BOOLEAN", "INT", "BIGINT", "DOUBLE", "DECIMAL", "VARCHAR", "STRING", "DATE", "TIMESTAMP", "ARRAY", "INTEGER", "TINYINT", "SMALLINT", "FLOAT")
	}
	p.i++
	tn := &ast.TypeName{Name: typeNames[t.upper], Pos: t.pos}
	switch tn.Name {
	case "DOUBLE":
		p.acceptKw("PRECISION")
	case "CHAR":
		if t.upper == "CHARACTER" && p.acceptKw("VARYING") {
			tn.Name = "VARCHAR"
		}
		tn.Params = p.typeParams(1, 1)
	case "VARCHAR", "BINARY", "VARBINARY":
		tn.Params = p.typeParams(1, 1)
	case "DECIMAL":
		tn.Params = p.typeParams(1, 2)
	case "TIME":
		tn.Params = p.typeParams(1, 1)
		p.acceptKws("WITHOUT", "TIME", "ZONE")
	case "TIMESTAMP":
		tn.Params = p.typeParams(1, 1)
		switch {
		case p.acceptKws("WITHOUT", "TIME", "ZONE"):
		case p.acceptKws("WITH", "LOCAL", "TIME", "ZONE"):
			tn.Name = "TIMESTAMP_LTZ"
		case p.isKw("WITH") && p.isKwAt(1, "TIME"):
			p.failAt(p.peek(), "TIMESTAMP WITH TIME ZONE is not supported; use TIMESTAMP_LTZ or TIMESTAMP WITH LOCAL TIME ZONE")
		}
	case "TIMESTAMP_LTZ":
		tn.Params = p.typeParams(1, 1)
	case "ROW":
		var close string
		switch {
		case p.acceptOp("<"):
			close = ">"
		case p.acceptOp("("):
			close = ")"
		default:
			p.failExpected("'<' or '(' after ROW (ROW<name TYPE, ...>)")
		}
		if !p.acceptOp(close) {
			for {
				f := ast.ColumnDef{Name: p.ident("a field name in ROW")}
				f.Type = p.typeName()
				if p.peek().kind == tString {
					f.Comment = p.next().text
				}
				tn.Fields = append(tn.Fields, f)
				if p.acceptOp(close) {
					break
				}
				if !p.acceptOp(",") {
					p.failExpected("a comma or '" + close + "' in ROW" + map[string]string{">": "<...>", ")": "(...)"}[close])
				}
			}
		}
	case "ARRAY", "MULTISET":
		p.expectOp("<", " after "+tn.Name+" ("+tn.Name+"<type>)")
		tn.Elem = p.typeName()
		p.closeAngle(tn.Name)
	case "MAP":
		p.expectOp("<", " after MAP (MAP<key type, value type>)")
		k := p.typeName()
		p.expectOp(",", " between MAP's key and value types")
		v := p.typeName()
		p.closeAngle("MAP")
		tn.Fields = []ast.ColumnDef{{Name: ast.Ident{Name: "key", Pos: k.Pos}, Type: k}, {Name: ast.Ident{Name: "value", Pos: v.Pos}, Type: v}}
	}
	if p.acceptKws("NOT", "NULL") {
		tn.NotNull = true
	} else if p.isKw("NULL") {
		p.i++
	}
	return tn
}

// closeAngle expects '>' closing NAME<...>. The lexer reads ">=" and "<>"
// as operators, which never occur here, so '>' is a token of its own.
func (p *parser) closeAngle(name string) {
	p.expectOp(">", " closing "+name+"<...>")
}

// typeParams parses an optional (n [, m]) of min..max integers.
func (p *parser) typeParams(minN, maxN int) []int {
	if !p.isOp("(") {
		return nil
	}
	p.i++
	var out []int
	for {
		t := p.peek()
		if t.kind != tNumber {
			p.failExpected("an integer type parameter")
		}
		n, err := strconv.Atoi(t.text)
		if err != nil || n < 0 {
			p.failAt(t, "type parameter %s is not a non-negative integer", quote(t.text))
		}
		p.i++
		out = append(out, n)
		if p.acceptOp(")") {
			break
		}
		if len(out) == maxN {
			p.failExpected("')' after the type parameters")
		}
		p.expectOp(",", " between type parameters")
	}
	if len(out) < minN {
		p.failAt(p.peek(), "too few type parameters")
	}
	return out
}
