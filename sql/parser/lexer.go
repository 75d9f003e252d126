package parser

import (
	"strings"

	"github.com/sluicehq/sluice/sql/ast"
)

// tokKind is the kind of a token.
type tokKind uint8

const (
	tEOF       tokKind = iota
	tWord              // an unquoted word: a keyword or an identifier
	tQIdent            // a `backquoted` identifier; text is the name, `` undone
	tNumber            // 1, 0.5, 1e3, .5
	tString            // 'text'; text is the value, '' undone
	tOp                // punctuation: ( ) [ ] , ; . * + - / % || = <> != < <= > >= => ? ::
	tBadNumber         // a number run into letters or dots: 10s, 1.2.3, 1e
)

// token is one lexical token. For tWord, upper is the text upper-cased
// (keywords are compared against it); raw is the source text of the token.
type token struct {
	kind  tokKind
	text  string
	upper string
	pos   ast.Pos
	end   int // byte offset just past the token
}

// lex splits src into tokens, ending with one tEOF token. It reports the
// first malformed token (unterminated string, quoted identifier or
// comment, stray character).
func lex(src string) ([]token, *Error) {
	toks := make([]token, 0, len(src)/5+16)
	// Every word's upper-case form is a slice of one upper-cased copy of
	// the source, so that keyword tests allocate nothing per token.
	up := upperASCII(src)
	line, lineStart := 1, 0
	pos := func(off int) ast.Pos { return ast.Pos{Line: line, Col: off - lineStart + 1, Offset: off} }
	i := 0
	n := len(src)
	for {
		// Skip white space and comments.
		for i < n {
			c := src[i]
			if c == '\n' {
				i++
				line, lineStart = line+1, i
			} else if c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' {
				i++
			} else if c == '-' && i+1 < n && src[i+1] == '-' {
				for i < n && src[i] != '\n' {
					i++
				}
			} else if c == '/' && i+1 < n && src[i+1] == '*' {
				start := pos(i)
				i += 2
				closed := false
				for i < n {
					if src[i] == '*' && i+1 < n && src[i+1] == '/' {
						i += 2
						closed = true
						break
					}
					if src[i] == '\n' {
						line, lineStart = line+1, i+1
					}
					i++
				}
				if !closed {
					return nil, &Error{Pos: start, Msg: "unterminated comment: a /* comment needs a closing */", Near: near(src, start.Offset)}
				}
			} else {
				break
			}
		}
		if i >= n {
			toks = append(toks, token{kind: tEOF, pos: pos(n), end: n})
			return toks, nil
		}
		start := i
		p := pos(i)
		c := src[i]
		switch {
		case isIdentStart(c):
			for i < n && isIdentPart(src[i]) {
				i++
			}
			w := src[start:i]
			toks = append(toks, token{kind: tWord, text: w, upper: up[start:i], pos: p, end: i})
		case c >= '0' && c <= '9' || c == '.' && i+1 < n && src[i+1] >= '0' && src[i+1] <= '9':
			for i < n && src[i] >= '0' && src[i] <= '9' {
				i++
			}
			if i < n && src[i] == '.' {
				i++
				for i < n && src[i] >= '0' && src[i] <= '9' {
					i++
				}
			}
			if i < n && (src[i] == 'e' || src[i] == 'E') {
				j := i + 1
				if j < n && (src[j] == '+' || src[j] == '-') {
					j++
				}
				if j < n && src[j] >= '0' && src[j] <= '9' {
					i = j
					for i < n && src[i] >= '0' && src[i] <= '9' {
						i++
					}
				}
			}
			if i < n && (isIdentPart(src[i]) || src[i] == '.') {
				j := i
				for j < n && (isIdentPart(src[j]) || src[j] == '.') {
					j++
				}
				// A malformed number, kept as one token: SET's unquoted
				// values (SET k = 10s) use the raw text; anywhere else the
				// parser reports it.
				i = j
				toks = append(toks, token{kind: tBadNumber, text: src[start:i], pos: p, end: i})
				continue
			}
			toks = append(toks, token{kind: tNumber, text: src[start:i], pos: p, end: i})
		case c == '\'' || c == '`':
			q := c
			i++
			var b strings.Builder
			closed := false
			from := i
			for i < n {
				if src[i] == q {
					if i+1 < n && src[i+1] == q {
						b.WriteString(src[from : i+1])
						i += 2
						from = i
						continue
					}
					b.WriteString(src[from:i])
					i++
					closed = true
					break
				}
				if src[i] == '\n' {
					line, lineStart = line+1, i+1
				}
				i++
			}
			if !closed {
				what := "string literal: a string started with ' needs a closing '"
				if q == '`' {
					what = "quoted identifier: an identifier started with ` needs a closing `"
				}
				return nil, &Error{Pos: p, Msg: "unterminated " + what, Near: near(src, start)}
			}
			k := tString
			if q == '`' {
				k = tQIdent
				if b.Len() == 0 {
					return nil, &Error{Pos: p, Msg: "empty quoted identifier ``", Near: near(src, start)}
				}
			}
			toks = append(toks, token{kind: k, text: b.String(), pos: p, end: i})
		default:
			op := ""
			two := ""
			if i+1 < n {
				two = src[i : i+2]
			}
			switch two {
			case "||", "<>", "!=", "<=", ">=", "=>", "::":
				op = two
			default:
				switch c {
				case '(', ')', '[', ']', ',', ';', '.', '*', '+', '-', '/', '%', '=', '<', '>', '?':
					op = src[i : i+1]
				}
			}
			if op == "" {
				msg := "unexpected character " + quote(src[i:i+1])
				if c == '"' {
					msg += ": Flink SQL quotes strings with ' and identifiers with `"
				}
				return nil, &Error{Pos: p, Msg: msg, Near: near(src, start)}
			}
			i += len(op)
			toks = append(toks, token{kind: tOp, text: op, pos: p, end: i})
		}
	}
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentPart(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9' || c == '$'
}

// upperASCII upper-cases ASCII letters only, without allocating when the
// word is already upper case.
func upperASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'a' && c <= 'z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'a' && b[j] <= 'z' {
					b[j] -= 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// near is the source text from off to the end of its line, at most 30
// bytes (cut on a character boundary).
func near(src string, off int) string {
	if off >= len(src) {
		return ""
	}
	s := src[off:]
	if j := strings.IndexByte(s, '\n'); j >= 0 {
		s = s[:j]
	}
	s = strings.TrimRight(s, " \t\r")
	if len(s) > 30 {
		j := 30
		for j > 0 && s[j]&0xC0 == 0x80 {
			j--
		}
		s = s[:j] + "…"
	}
	return s
}
