package sql

import (
	"fmt"
	"sort"
	"strings"

	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/types"
)

// scope resolves column references against the columns of a plan node
// (for a join, the left's then the right's, each qualified by its table
// alias). It implements expr.Scope.
type scope struct {
	cols []column
}

// Resolve implements expr.Scope.
func (s *scope) Resolve(ref *ast.ColumnRef) (int, types.Type, error) {
	i, err := s.find(ref.Parts, ref.Pos)
	if err != nil {
		return 0, types.Type{}, err
	}
	return i, s.cols[i].typ, nil
}

func partsString(parts []ast.Ident) string {
	ns := make([]string, len(parts))
	for i, p := range parts {
		ns[i] = p.Name
	}
	return strings.Join(ns, ".")
}

func pathMatch(path []string, parts []ast.Ident, fold bool) bool {
	if len(path) != len(parts) {
		return false
	}
	for i := range path {
		if fold {
			if !strings.EqualFold(path[i], parts[i].Name) {
				return false
			}
		} else if path[i] != parts[i].Name {
			return false
		}
	}
	return true
}

// find returns the column named by parts: `col`, `alias.col`,
// `row.field`, `alias.row.field`. Names match exactly first, then
// ignoring case (when that is unambiguous).
func (s *scope) find(parts []ast.Ident, pos ast.Pos) (int, error) {
	for _, fold := range []bool{false, true} {
		var hits []int
		for i, c := range s.cols {
			if c.hidden && c.name == "" {
				continue
			}
			p := c.pathOrName()
			ok := pathMatch(p, parts, fold)
			if !ok && len(parts) > 1 && c.qual != "" {
				q := parts[0].Name
				if q == c.qual || fold && strings.EqualFold(q, c.qual) {
					ok = pathMatch(p, parts[1:], fold)
				}
			}
			if ok {
				hits = append(hits, i)
			}
		}
		if len(hits) == 1 {
			markUse(s.cols[hits[0]])
			return hits[0], nil
		}
		if len(hits) > 1 {
			var quals []string
			for _, h := range hits {
				q := s.cols[h].qual
				if q == "" {
					q = "?"
				}
				quals = append(quals, q+"."+strings.Join(s.cols[h].pathOrName(), "."))
			}
			return 0, fmt.Errorf("%s: column '%s' is ambiguous (%s); qualify it with its table alias", pos, partsString(parts), strings.Join(quals, ", "))
		}
	}
	// A whole ROW column named by its prefix?
	for _, c := range s.cols {
		p := c.pathOrName()
		if len(p) > len(parts) && pathMatch(p[:len(parts)], parts, true) {
			return 0, fmt.Errorf("%s: '%s' is a ROW column; select its fields (%s.%s, ...) rather than the whole row", pos, partsString(parts), partsString(parts), p[len(parts)])
		}
	}
	return 0, fmt.Errorf("%s: column '%s' not found%s", pos, partsString(parts), s.suggest(parts))
}

func (s *scope) suggest(parts []ast.Ident) string {
	want := strings.ToLower(partsString(parts))
	type cand struct {
		name string
		d    int
	}
	var cs []cand
	seen := map[string]bool{}
	for _, c := range s.cols {
		if c.name == "" || strings.HasPrefix(c.name, "\x00") {
			continue
		}
		n := strings.Join(c.pathOrName(), ".")
		if seen[n] {
			continue
		}
		seen[n] = true
		cs = append(cs, cand{n, editDistance(want, strings.ToLower(n))})
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].d < cs[j].d })
	if len(cs) > 0 && cs[0].d <= 2+len(want)/4 {
		return fmt.Sprintf("; did you mean '%s'?", cs[0].name)
	}
	var names []string
	for i, c := range cs {
		if i == 12 {
			names = append(names, "...")
			break
		}
		names = append(names, c.name)
	}
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf(" (available: %s)", strings.Join(names, ", "))
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// nearest returns the candidate closest to name, or "" when none is
// close.
func nearest(name string, cands []string) string {
	best, bd := "", 1<<30
	for _, c := range cands {
		if d := editDistance(strings.ToLower(name), strings.ToLower(c)); d < bd {
			best, bd = c, d
		}
	}
	if bd <= 2+len(name)/4 {
		return best
	}
	return ""
}
