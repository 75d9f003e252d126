package expr

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// fastRegexp finds the leftmost match of a regular expression like
// regexp.Regexp.FindStringSubmatchIndex, faster when the pattern is a
// concatenation with a literal L preceded by parts of bounded width k
// (q21's `(&|^)channel_id=([^&]*)`): a match contains L at most k bytes
// after its start, so the leftmost match starts no earlier than k bytes
// before the first L. The search then runs on that suffix with a variant
// of the pattern where ^ (beginning of text) never matches, which is
// what ^ does at any position past 0 of the whole string. Patterns with
// other position assertions (multi-line ^, \b, \B) run as they are.
type fastRegexp struct {
	re      *regexp.Regexp
	lit     string         // required literal; "" when none is known
	k       int            // bytes before lit, at most; -1 when unbounded
	variant *regexp.Regexp // re with ^ never matching
}

func newFastRegexp(re *regexp.Regexp) *fastRegexp {
	f := &fastRegexp{re: re, k: -1}
	tree, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return f
	}
	tree = tree.Simplify()
	f.lit = mustContain(tree)
	if tree.Op != syntax.OpConcat || hasOtherAssertions(tree) {
		return f
	}
	width := 0
	for _, sub := range tree.Sub {
		if sub.Op == syntax.OpLiteral && sub.Flags&syntax.FoldCase == 0 {
			f.lit, f.k = string(sub.Rune), width
			break
		}
		w := maxWidth(sub)
		if w < 0 {
			return f
		}
		width += w
	}
	if f.k < 0 {
		return f
	}
	variant, err := regexp.Compile(neverBegin(tree).String())
	if err != nil {
		f.k = -1
		return f
	}
	f.variant = variant
	return f
}

// find returns the submatch indexes of the leftmost match, nil if none.
func (f *fastRegexp) find(s string) []int {
	if f.lit == "" {
		return f.re.FindStringSubmatchIndex(s)
	}
	q := strings.Index(s, f.lit)
	if q < 0 {
		return nil
	}
	from := q - f.k
	if f.variant == nil || from <= 0 {
		return f.re.FindStringSubmatchIndex(s)
	}
	m := f.variant.FindStringSubmatchIndex(s[from:])
	for i := range m {
		if m[i] >= 0 {
			m[i] += from
		}
	}
	return m
}

// maxWidth is the most bytes re can match, -1 when unbounded.
func maxWidth(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginText, syntax.OpEndText, syntax.OpBeginLine, syntax.OpEndLine,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary, syntax.OpNoMatch:
		return 0
	case syntax.OpLiteral:
		n := 0
		for _, r := range re.Rune {
			if re.Flags&syntax.FoldCase != 0 {
				n += utf8.UTFMax
			} else {
				n += utf8.RuneLen(r)
			}
		}
		return n
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return utf8.UTFMax
	case syntax.OpCapture, syntax.OpQuest:
		return maxWidth(re.Sub[0])
	case syntax.OpRepeat:
		if re.Max < 0 {
			return -1
		}
		w := maxWidth(re.Sub[0])
		if w < 0 {
			return -1
		}
		return w * re.Max
	case syntax.OpConcat:
		total := 0
		for _, sub := range re.Sub {
			w := maxWidth(sub)
			if w < 0 {
				return -1
			}
			total += w
		}
		return total
	case syntax.OpAlternate:
		best := 0
		for _, sub := range re.Sub {
			w := maxWidth(sub)
			if w < 0 {
				return -1
			}
			best = max(best, w)
		}
		return best
	}
	return -1
}

// hasOtherAssertions reports position assertions other than ^ (begin
// text) and $ (end text), whose truth depends on text before a position.
func hasOtherAssertions(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpBeginLine, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return true
	}
	for _, sub := range re.Sub {
		if hasOtherAssertions(sub) {
			return true
		}
	}
	return false
}

// neverBegin returns a copy of re with ^ (begin text) replaced by a
// never-matching expression.
func neverBegin(re *syntax.Regexp) *syntax.Regexp {
	if re.Op == syntax.OpBeginText {
		return &syntax.Regexp{Op: syntax.OpNoMatch}
	}
	c := *re
	c.Sub = make([]*syntax.Regexp, len(re.Sub))
	for i, sub := range re.Sub {
		c.Sub[i] = neverBegin(sub)
	}
	return &c
}
