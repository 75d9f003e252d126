package lookup

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

var (
	paramRe  = regexp.MustCompile(`\$([0-9]+)`)
	selectRe = regexp.MustCompile(`(?is)^\s*select\s+(.+?)\s+from\s+(.+?)\s*;?\s*$`)
	// eqParamRe finds `column = $1`: a plain or qualified column name.
	eqParamRe = regexp.MustCompile(`(?i)((?:(?:[A-Za-z_][A-Za-z0-9_]*|"[^"]+")\.)?(?:[A-Za-z_][A-Za-z0-9_]*|"[^"]+"))\s*=\s*\$1\b`)
	// notBatchable are words that make `= ANY($1)` mean something else
	// than one query per key: the rows of one key could depend on the
	// others (LIMIT, DISTINCT, GROUP BY, OR, subqueries, set operations).
	notBatchable = regexp.MustCompile(`(?i)\b(limit|offset|fetch|distinct|group|having|or|union|intersect|except|select|window)\b`)
	identRe      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	quotedRe     = regexp.MustCompile(`^"([^"]+)"$`)
)

// Params returns the number of parameters ($1 .. $n) of query: the
// highest n used. It fails when one of $1 .. $n is missing.
func Params(query string) (int, error) {
	used := map[int]bool{}
	n := 0
	for _, m := range paramRe.FindAllStringSubmatch(stripLiterals(query), -1) {
		i, err := strconv.Atoi(m[1])
		if err != nil || i < 1 {
			return 0, fmt.Errorf("parameter $%s: parameters are $1, $2, ...", m[1])
		}
		used[i] = true
		n = max(n, i)
	}
	for i := 1; i <= n; i++ {
		if !used[i] {
			return 0, fmt.Errorf("the query uses $%d but not $%d: number the parameters from $1, one per key field", n, i)
		}
	}
	return n, nil
}

// stripLiterals blanks the contents of string literals ('...') and
// quoted identifiers' dollars are kept: $n inside a literal is not a
// parameter.
func stripLiterals(q string) string {
	b := []byte(q)
	in := false
	for i, c := range b {
		if c == '\'' {
			in = !in
			continue
		}
		if in {
			b[i] = ' '
		}
	}
	return string(b)
}

// BatchQuery rewrites a one-parameter query of the shape `SELECT list
// FROM ... WHERE col = $1 ...` into `SELECT col, list FROM ... WHERE col =
// ANY($1) ...`, which answers many keys at once, the key first in each
// row. ok is false when the query has another shape (or words such as
// LIMIT, DISTINCT, GROUP BY or OR that make the rewrite answer something
// else); such queries run once per key.
func BatchQuery(query string) (string, bool) {
	if n, err := Params(query); err != nil || n != 1 {
		return "", false
	}
	plain := stripLiterals(query)
	if len(paramRe.FindAllString(plain, -1)) != 1 {
		return "", false
	}
	m := selectRe.FindStringSubmatchIndex(plain)
	if m == nil {
		return "", false
	}
	list, rest := plain[m[2]:m[3]], plain[m[4]:m[5]]
	if notBatchable.MatchString(list) || notBatchable.MatchString(rest) {
		return "", false
	}
	eq := eqParamRe.FindStringSubmatchIndex(rest)
	if eq == nil {
		return "", false
	}
	restQ := query[m[4]:m[5]]
	col := restQ[eq[2]:eq[3]]
	rewritten := restQ[:eq[0]] + col + " = ANY($1)" + restQ[eq[1]:]
	return "SELECT " + col + ", " + query[m[2]:m[3]] + " FROM " + rewritten, true
}

// QueryColumns returns the names of the columns a `SELECT a, b AS c, t.d
// FROM ...` query returns, for planning without a connection. ok is false
// when an item is neither a column nor `expression AS name` (SELECT *, or
// an unnamed expression).
func QueryColumns(query string) ([]string, bool) {
	m := selectRe.FindStringSubmatch(stripLiterals(query))
	if m == nil {
		return nil, false
	}
	orig := selectRe.FindStringSubmatch(query)
	var out []string
	for _, item := range splitTop(orig[1]) {
		item = strings.TrimSpace(item)
		name := item
		if i := lastAs(item); i >= 0 {
			name = strings.TrimSpace(item[i+4:])
		} else if j := strings.LastIndexByte(item, '.'); j >= 0 {
			name = item[j+1:]
		}
		if q := quotedRe.FindStringSubmatch(name); q != nil {
			name = q[1]
		} else if identRe.MatchString(name) {
			name = strings.ToLower(name) // PostgreSQL folds unquoted names
		} else {
			return nil, false
		}
		out = append(out, name)
	}
	return out, len(out) > 0
}

// splitTop splits a select list at the commas outside parentheses and
// literals.
func splitTop(s string) []string {
	var out []string
	depth, in, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'':
			in = !in
		case in:
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ',' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// lastAs finds " AS " (any case) at the top level of item, or -1.
func lastAs(item string) int {
	u := strings.ToUpper(item)
	i := strings.LastIndex(u, " AS ")
	if i < 0 || strings.Count(item[i:], ")") > strings.Count(item[i:], "(") {
		return -1
	}
	return i
}
