package parser

import (
	"fmt"
	"strconv"

	"github.com/sluicehq/sluice/sql/ast"
)

// Error is a syntax error: where it is, what was expected and what was
// found, and the source text there.
type Error struct {
	Pos  ast.Pos
	Msg  string
	Near string // the source text from the error to the end of its line (≤ 30 bytes)
}

// Error returns `line L, column C: MSG (near "…")`.
func (e *Error) Error() string {
	s := fmt.Sprintf("line %d, column %d: %s", e.Pos.Line, e.Pos.Col, e.Msg)
	if e.Near != "" {
		s += " (near " + strconv.Quote(e.Near) + ")"
	}
	return s
}

// quote puts s in double quotes for a message.
func quote(s string) string { return strconv.Quote(s) }

// describe names a token in a message: "FROM", 'text', `name`, or "the end
// of the input".
func describe(t *token) string {
	switch t.kind {
	case tEOF:
		return "the end of the input"
	case tString:
		return quote(quoteString(t.text))
	case tQIdent:
		return quote(quoteIdent(t.text))
	}
	return quote(t.text)
}

// editDistance is the optimal-string-alignment distance between a and b
// (insertions, deletions, substitutions and swaps of neighbours).
func editDistance(a, b string) int {
	if len(a) > 40 || len(b) > 40 {
		return 99
	}
	var d [41][41]int
	for i := 0; i <= len(a); i++ {
		d[i][0] = i
	}
	for j := 0; j <= len(b); j++ {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// suggest returns "; did you mean K?" for the keyword among kws nearest
// to word, when it is close (one or two edits, fewer than half the
// letters), or "".
func suggest(word string, kws ...string) string {
	w := upperASCII(word)
	best, bestD := "", 3
	for _, k := range kws {
		if k == w {
			return ""
		}
		d := editDistance(w, k)
		if d < bestD && d*2 < len(k) {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return "; did you mean " + best + "?"
}
