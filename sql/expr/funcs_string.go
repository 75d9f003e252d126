package expr

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"math"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/types"
)

var tString = types.TVarchar

// strFunc registers a function of string arguments (checked) with a
// string-valued Go function; NULL in, NULL out.
func strArgs(b *call, lo, hi int) error {
	if err := b.argc(lo, hi); err != nil {
		return err
	}
	for i := range b.args {
		if err := b.wantString(i); err != nil {
			return err
		}
	}
	return nil
}

func registerStrings(r *Registry) {
	s1 := func(fn func(string) string) func(b *call) (Compiled, error) {
		return func(b *call) (Compiled, error) {
			if err := strArgs(b, 1, 1); err != nil {
				return Compiled{}, err
			}
			return b.result(tString, map1(b.args[0].Eval, func(a row.Value) row.Value { return row.String(fn(a.AsString())) }))
		}
	}
	r.det("UPPER", s1(javaUpper))
	r.det("LOWER", s1(javaLower))
	r.det("REVERSE", s1(reverseRunes))
	r.det("INITCAP", s1(initcap))
	r.det("LTRIM", s1(func(s string) string { return strings.TrimLeft(s, " ") }))
	r.det("RTRIM", s1(func(s string) string { return strings.TrimRight(s, " ") }))
	r.det("MD5", s1(func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }))
	r.det("SHA1", s1(func(s string) string { h := sha1.Sum([]byte(s)); return hex.EncodeToString(h[:]) }))
	r.det("SHA256", s1(func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }))
	r.det("SHA512", s1(func(s string) string { h := sha512.Sum512([]byte(s)); return hex.EncodeToString(h[:]) }))
	r.det("TO_BASE64", s1(func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }))
	r.det("FROM_BASE64", func(b *call) (Compiled, error) {
		if err := strArgs(b, 1, 1); err != nil {
			return Compiled{}, err
		}
		return b.result(tString, map1(b.args[0].Eval, func(a row.Value) row.Value {
			d, err := base64.StdEncoding.DecodeString(a.AsString())
			if err != nil {
				return b.c.fail(b.pos(), "FROM_BASE64: %v", err)
			}
			return row.String(string(d))
		}))
	})
	length := func(b *call) (Compiled, error) {
		if err := strArgs(b, 1, 1); err != nil {
			return Compiled{}, err
		}
		return b.result(types.TInt, map1(b.args[0].Eval, func(a row.Value) row.Value {
			return row.Int(int64(utf8.RuneCountInString(a.AsString())))
		}))
	}
	r.det("CHAR_LENGTH", length)
	r.det("CHARACTER_LENGTH", length)
	r.det("HASH_CODE", func(b *call) (Compiled, error) {
		if err := strArgs(b, 1, 1); err != nil {
			return Compiled{}, err
		}
		return b.result(types.TInt, map1(b.args[0].Eval, func(a row.Value) row.Value {
			// Flink's HASH_CODE is Math.abs(String.hashCode()), which
			// leaves Integer.MIN_VALUE negative.
			h := javaHash(a.AsString())
			if h < 0 && h != math.MinInt32 {
				h = -h
			}
			return row.Int(int64(h))
		}))
	})
	r.det("CONCAT", func(b *call) (Compiled, error) {
		if err := strArgs(b, 1, 1<<20); err != nil {
			return Compiled{}, err
		}
		if len(b.args) == 2 {
			return b.c.concatOp(b.pos(), b.args[0], b.args[1])
		}
		return b.result(tString, mapN(b.args, func(vals []row.Value) row.Value {
			var sb strings.Builder
			for _, v := range vals {
				sb.WriteString(v.AsString())
			}
			return row.String(sb.String())
		}))
	})
	r.det("CONCAT_WS", func(b *call) (Compiled, error) {
		if err := strArgs(b, 1, 1<<20); err != nil {
			return Compiled{}, err
		}
		fs := evals(b.args)
		return b.result(tString, func(v []row.Value) row.Value {
			sep := fs[0](v)
			if sep.IsNull() {
				return sep
			}
			var sb strings.Builder
			first := true
			for _, f := range fs[1:] {
				x := f(v)
				if x.IsNull() {
					continue
				}
				if !first {
					sb.WriteString(sep.AsString())
				}
				first = false
				sb.WriteString(x.AsString())
			}
			return row.String(sb.String())
		})
	})
	substr := func(b *call) (Compiled, error) {
		if err := b.argc(2, 3); err != nil {
			return Compiled{}, err
		}
		if err := b.wantString(0); err != nil {
			return Compiled{}, err
		}
		for i := 1; i < len(b.args); i++ {
			if err := b.wantInteger(i); err != nil {
				return Compiled{}, err
			}
		}
		return b.result(tString, mapN(b.args, func(vals []row.Value) row.Value {
			n := int64(-1)
			if len(vals) == 3 {
				n = vals[2].AsInt()
				if n < 0 {
					return b.c.fail(b.pos(), "SUBSTRING: negative length %d", n)
				}
			}
			return row.String(substring(vals[0].AsString(), vals[1].AsInt(), n))
		}))
	}
	r.det("SUBSTRING", substr)
	r.det("SUBSTR", substr)
	r.det("TRIM", func(b *call) (Compiled, error) {
		if err := strArgs(b, 1, 3); err != nil {
			return Compiled{}, err
		}
		mode, chars := "BOTH", " "
		if len(b.args) >= 2 {
			m, isNull, ok := b.constString(1)
			if !ok || isNull {
				return Compiled{}, b.errorf("the trim mode must be BOTH, LEADING or TRAILING")
			}
			mode = strings.ToUpper(m)
		}
		if len(b.args) == 3 {
			ch, isNull, ok := b.constString(2)
			if !ok {
				return trimDynamic(b, mode)
			}
			if isNull {
				return constant(tString, null), nil
			}
			chars = ch
		}
		var fn func(string) string
		switch mode {
		case "BOTH":
			fn = func(s string) string { return strings.Trim(s, chars) }
		case "LEADING":
			fn = func(s string) string { return strings.TrimLeft(s, chars) }
		case "TRAILING":
			fn = func(s string) string { return strings.TrimRight(s, chars) }
		default:
			return Compiled{}, b.errorf("the trim mode must be BOTH, LEADING or TRAILING, not %s", mode)
		}
		return b.result(tString, map1(b.args[0].Eval, func(a row.Value) row.Value { return row.String(fn(a.AsString())) }))
	})
	r.det("REPLACE", func(b *call) (Compiled, error) {
		if err := strArgs(b, 3, 3); err != nil {
			return Compiled{}, err
		}
		return b.result(tString, mapN(b.args, func(vals []row.Value) row.Value {
			return row.String(strings.ReplaceAll(vals[0].AsString(), vals[1].AsString(), vals[2].AsString()))
		}))
	})
	// POSITION(needle IN haystack), LOCATE(needle, haystack[, from]),
	// INSTR(haystack, needle[, from]): 1-based character positions, 0
	// when absent, as Flink's position and instr: an empty needle is at
	// 1; LOCATE searches from the start when from < 1; INSTR gives 0 for
	// from = 0 and searches backwards from the -from'th last character
	// when from < 0.
	position := func(instr bool) func(b *call) (Compiled, error) {
		return func(b *call) (Compiled, error) {
			if err := b.argc(2, 3); err != nil {
				return Compiled{}, err
			}
			for i := range 2 {
				if err := b.wantString(i); err != nil {
					return Compiled{}, err
				}
			}
			if len(b.args) == 3 {
				if err := b.wantInteger(2); err != nil {
					return Compiled{}, err
				}
			}
			return b.result(types.TInt, mapN(b.args, func(vals []row.Value) row.Value {
				needle, hay := vals[0].AsString(), vals[1].AsString()
				if instr {
					needle, hay = hay, needle
				}
				from := int64(1)
				if len(vals) == 3 {
					from = vals[2].AsInt()
				}
				switch {
				case instr && from == 0:
					return row.Int(0)
				case instr && from < 0:
					// As Flink: the position in the reversed strings,
					// mapped back.
					p := indexRunes(reverseRunes(hay), reverseRunes(needle), -max(from, -math.MaxInt64))
					if p == 0 {
						return row.Int(0)
					}
					return row.Int(int64(utf8.RuneCountInString(hay)) + 2 - p - int64(utf8.RuneCountInString(needle)))
				}
				return row.Int(indexRunes(hay, needle, max(from, 1)))
			}))
		}
	}
	r.det("POSITION", position(false))
	r.det("LOCATE", position(false))
	r.det("INSTR", position(true))
	pad := func(left bool) func(b *call) (Compiled, error) {
		return func(b *call) (Compiled, error) {
			if err := b.argc(3, 3); err != nil {
				return Compiled{}, err
			}
			if err := b.wantString(0); err != nil {
				return Compiled{}, err
			}
			if err := b.wantInteger(1); err != nil {
				return Compiled{}, err
			}
			if err := b.wantString(2); err != nil {
				return Compiled{}, err
			}
			return b.result(tString, mapN(b.args, func(vals []row.Value) row.Value {
				n, pad := vals[1].AsInt(), vals[2].AsString()
				if n < 0 || pad == "" {
					return null // as Flink
				}
				r, ok := padString(vals[0].AsString(), n, pad, left)
				if !ok {
					return b.c.fail(b.pos(), "%s: a result of %d characters is longer than the 64 MiB limit; pad to fewer characters", b.name, n)
				}
				return row.String(r)
			}))
		}
	}
	r.det("LPAD", pad(true))
	r.det("RPAD", pad(false))
	r.det("REPEAT", func(b *call) (Compiled, error) {
		if err := b.argc(2, 2); err != nil {
			return Compiled{}, err
		}
		if err := b.wantString(0); err != nil {
			return Compiled{}, err
		}
		if err := b.wantInteger(1); err != nil {
			return Compiled{}, err
		}
		return b.result(tString, mapN(b.args, func(vals []row.Value) row.Value {
			n := vals[1].AsInt()
			if n <= 0 {
				return row.String("")
			}
			s := vals[0].AsString()
			if s == "" {
				return row.String("")
			}
			if n > maxStringResult/int64(len(s)) {
				return b.c.fail(b.pos(), "REPEAT: result longer than 64 MiB; repeat a %d-byte string at most %d times", len(s), maxStringResult/int64(len(s)))
			}
			return row.String(strings.Repeat(s, int(n)))
		}))
	})
	r.det("SPLIT_INDEX", func(b *call) (Compiled, error) {
		if err := b.argc(3, 3); err != nil {
			return Compiled{}, err
		}
		if err := b.wantString(0); err != nil {
			return Compiled{}, err
		}
		if err := b.wantString(1); err != nil {
			return Compiled{}, err
		}
		if err := b.wantInteger(2); err != nil {
			return Compiled{}, err
		}
		return b.result(tString, mapN(b.args, func(vals []row.Value) row.Value {
			s, sep, idx := vals[0].AsString(), vals[1].AsString(), vals[2].AsInt()
			if idx < 0 || s == "" {
				return null // as Flink: an empty string has no parts
			}
			// next is where the next separator starts and ends in s.
			next := func(s string) (int, int) {
				j := strings.Index(s, sep)
				return j, j + len(sep)
			}
			if sep == "" {
				// As Flink (commons-lang's splitByWholeSeparator...): an
				// empty separator splits at each whitespace character.
				next = func(s string) (int, int) {
					j := strings.IndexFunc(s, javaWhitespace)
					if j < 0 {
						return -1, -1
					}
					_, n := utf8.DecodeRuneInString(s[j:])
					return j, j + n
				}
			}
			for i := int64(0); ; i++ {
				j, k := next(s)
				if i == idx {
					if j < 0 {
						return row.String(s)
					}
					return row.String(s[:j])
				}
				if j < 0 {
					return null
				}
				s = s[k:]
			}
		}))
	})
	r.det("REGEXP_EXTRACT", regexpExtract)
	r.det("REGEXP_REPLACE", func(b *call) (Compiled, error) {
		if err := strArgs(b, 3, 3); err != nil {
			return Compiled{}, err
		}
		re, err := b.regexpArg(1)
		if err != nil {
			return Compiled{}, err
		}
		return b.result(tString, mapN(b.args, func(vals []row.Value) row.Value {
			rx, ok := re(vals[1].AsString())
			if !ok {
				return null
			}
			// Flink quotes the replacement (Matcher.quoteReplacement):
			// '$1' and '\' are literal text, not group references.
			return row.String(rx.ReplaceAllLiteralString(vals[0].AsString(), vals[2].AsString()))
		}))
	})
	r.det("REGEXP", func(b *call) (Compiled, error) {
		if err := strArgs(b, 2, 2); err != nil {
			return Compiled{}, err
		}
		re, err := b.regexpArg(1)
		if err != nil {
			return Compiled{}, err
		}
		// Flink's regExp: an empty pattern matches nothing (FALSE).
		if p, isNull, ok := b.constString(1); ok && !isNull {
			if p == "" {
				return b.result(types.TBoolean, map1(b.args[0].Eval, func(row.Value) row.Value { return row.Bool(false) }))
			}
			rx, _ := re(p)
			must := requiredLiteral(p)
			return b.result(types.TBoolean, map1(b.args[0].Eval, func(a row.Value) row.Value {
				s := a.AsString()
				return row.Bool((must == "" || strings.Contains(s, must)) && rx.MatchString(s))
			}))
		}
		return b.result(types.TBoolean, mapN(b.args, func(vals []row.Value) row.Value {
			if vals[1].AsString() == "" {
				return row.Bool(false)
			}
			rx, ok := re(vals[1].AsString())
			if !ok {
				return null
			}
			return row.Bool(rx.MatchString(vals[0].AsString()))
		}))
	})
}

// javaHash is Java's String.hashCode over UTF-16 code units.
func javaHash(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			r1, r2 := utf16Surrogates(r)
			h = 31*h + int32(r1)
			h = 31*h + int32(r2)
			continue
		}
		h = 31*h + int32(r)
	}
	return h
}

func utf16Surrogates(r rune) (rune, rune) {
	r -= 0x10000
	return 0xd800 + (r>>10)&0x3ff, 0xdc00 + r&0x3ff
}

// substring is SQL's 1-based SUBSTRING in characters; a start of 0 is 1,
// a negative start counts from the end (as Flink's SUBSTR) and one before
// the first character gives ”; n < 0 means
// to the end.
func substring(s string, start, n int64) string {
	count := int64(utf8.RuneCountInString(s))
	if start < 0 {
		// As Flink's substringSQL: a start before the first character
		// gives the empty string; it is not clamped to the first.
		start = count + start + 1
		if start < 1 {
			return ""
		}
	}
	if start == 0 {
		start = 1
	}
	if start > count {
		return ""
	}
	end := count + 1
	if n >= 0 && n < end-start {
		end = start + n
	}
	if count == int64(len(s)) {
		return s[start-1 : end-1]
	}
	rs := []rune(s)
	return string(rs[start-1 : end-1])
}

// javaWhitespace is Java's Character.isWhitespace: space, line and
// paragraph separators other than the no-break spaces, and the ASCII
// controls \t \n \v \f \r and U+001C to U+001F.
func javaWhitespace(r rune) bool {
	switch r {
	case 0xA0, 0x2007, 0x202F:
		return false
	case '\t', '\n', '\v', '\f', '\r', 0x1C, 0x1D, 0x1E, 0x1F:
		return true
	}
	return unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp)
}

// reverseRunes reverses s by characters (code points), as Flink's REVERSE.
func reverseRunes(s string) string {
	rs := []rune(s)
	slices.Reverse(rs)
	return string(rs)
}

// indexRunes is the 1-based character position of needle in hay at or
// after from, 0 when absent.
func indexRunes(hay, needle string, from int64) int64 {
	if needle == "" {
		return 1 // as Flink's indexOf, whatever from
	}
	pos := int64(1)
	byteAt := 0
	for pos < from {
		if byteAt >= len(hay) {
			return 0
		}
		_, size := utf8.DecodeRuneInString(hay[byteAt:])
		byteAt += size
		pos++
	}
	i := strings.Index(hay[byteAt:], needle)
	if i < 0 {
		return 0
	}
	return pos + int64(utf8.RuneCountInString(hay[byteAt:byteAt+i]))
}

// maxStringResult caps the size in bytes of a string a function builds
// from a count (LPAD, RPAD, REPEAT): 64 MiB, so that one call cannot
// allocate gigabytes.
const maxStringResult = 1 << 26

// padString pads s on the left or right with pad (not empty) to n
// characters, or cuts it to its first n; false when the result would
// be longer than maxStringResult bytes.
func padString(s string, n int64, pad string, left bool) (string, bool) {
	have := int64(utf8.RuneCountInString(s))
	if n <= have {
		i := 0
		for k := int64(0); k < n; k++ {
			_, w := utf8.DecodeRuneInString(s[i:])
			i += w
		}
		return s[:i], true
	}
	k := n - have // characters of padding, each at least one byte
	if k > maxStringResult {
		return "", false
	}
	pr := []rune(pad)
	whole, part := k/int64(len(pr)), int(k%int64(len(pr)))
	size := int64(len(s)) + whole*int64(len(pad)) + int64(len(string(pr[:part])))
	if size > maxStringResult {
		return "", false
	}
	var sb strings.Builder
	sb.Grow(int(size))
	if !left {
		sb.WriteString(s)
	}
	for range whole {
		sb.WriteString(pad)
	}
	sb.WriteString(string(pr[:part]))
	if left {
		sb.WriteString(s)
	}
	return sb.String(), true
}

func trimDynamic(b *call, mode string) (Compiled, error) {
	return b.result(tString, mapN(b.args, func(vals []row.Value) row.Value {
		s, chars := vals[0].AsString(), vals[2].AsString()
		switch mode {
		case "LEADING":
			return row.String(strings.TrimLeft(s, chars))
		case "TRAILING":
			return row.String(strings.TrimRight(s, chars))
		}
		return row.String(strings.Trim(s, chars))
	}))
}

// regexpArg compiles argument i once when it is a constant; otherwise
// it compiles per distinct pattern, caching the last one.
func (b *call) regexpArg(i int) (func(string) (*regexp.Regexp, bool), error) {
	if p, isNull, ok := b.constString(i); ok && !isNull {
		re, err := compileJavaRegexp(p)
		if err != nil {
			return nil, errorf(b.node.Args[i].Start(), "%s: invalid regular expression %q: %v", b.name, p, err)
		}
		return func(string) (*regexp.Regexp, bool) { return re, true }, nil
	}
	var mu sync.Mutex
	var lastP string
	var last *regexp.Regexp
	return func(p string) (*regexp.Regexp, bool) {
		mu.Lock()
		defer mu.Unlock()
		if last != nil && p == lastP {
			return last, true
		}
		re, err := compileJavaRegexp(p)
		if err != nil {
			b.c.fail(b.pos(), "%s: invalid regular expression %q: %v", b.name, p, err)
			return nil, false
		}
		last, lastP = re, p
		return re, true
	}, nil
}

// compileJavaRegexp compiles a Java regular expression with Go's RE2:
// the common syntax is the same; possessive quantifiers, lookaround and
// backreferences are not supported and give an error.
func compileJavaRegexp(p string) (*regexp.Regexp, error) {
	return regexp.Compile(p)
}

// requiredLiteral returns a literal every match of p contains (the
// longest found at the top level of the pattern), "" when none is
// known. A string without it cannot match, which saves running the
// regular expression on most non-matching rows.
func requiredLiteral(p string) string {
	re, err := syntax.Parse(p, syntax.Perl)
	if err != nil {
		return ""
	}
	return mustContain(re.Simplify())
}

func mustContain(re *syntax.Regexp) string {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return ""
		}
		return string(re.Rune)
	case syntax.OpCapture, syntax.OpPlus:
		return mustContain(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return mustContain(re.Sub[0])
		}
	case syntax.OpConcat:
		best := ""
		for _, sub := range re.Sub {
			if l := mustContain(sub); len(l) > len(best) {
				best = l
			}
		}
		return best
	}
	return ""
}

// regexpExtract is REGEXP_EXTRACT(s, re[, group]): the group (default 1)
// of the first match; NULL when nothing matches or the group is absent.
func regexpExtract(b *call) (Compiled, error) {
	if err := b.argc(2, 3); err != nil {
		return Compiled{}, err
	}
	for i := range 2 {
		if err := b.wantString(i); err != nil {
			return Compiled{}, err
		}
	}
	if len(b.args) == 3 {
		if err := b.wantInteger(2); err != nil {
			return Compiled{}, err
		}
	}
	if p, isNull, ok := b.constString(1); ok && !isNull && (len(b.args) == 2 || b.args[2].Const) {
		re, err := compileJavaRegexp(p)
		if err != nil {
			return Compiled{}, errorf(b.node.Args[1].Start(), "REGEXP_EXTRACT: invalid regular expression %q: %v", p, err)
		}
		g := 1
		if len(b.args) == 3 {
			gv := b.args[2].Eval(nil)
			if gv.IsNull() {
				return constant(tString, null), nil
			}
			g = int(gv.AsInt())
		}
		if g < 0 || g > re.NumSubexp() {
			return Compiled{}, b.errorf("group %d does not exist: the pattern has %d group%s", g, re.NumSubexp(), plural(re.NumSubexp()))
		}
		fast := newFastRegexp(re)
		return b.result(tString, map1(b.args[0].Eval, func(a row.Value) row.Value {
			s := a.AsString()
			m := fast.find(s)
			if m == nil || m[2*g] < 0 {
				return null
			}
			return row.String(s[m[2*g]:m[2*g+1]])
		}))
	}
	re, err := b.regexpArg(1)
	if err != nil {
		return Compiled{}, err
	}
	return b.result(tString, mapN(b.args, func(vals []row.Value) row.Value {
		rx, ok := re(vals[1].AsString())
		if !ok {
			return null
		}
		g := 1
		if len(vals) == 3 {
			g = int(vals[2].AsInt())
		}
		if g < 0 || g > rx.NumSubexp() {
			return null
		}
		s := vals[0].AsString()
		m := rx.FindStringSubmatchIndex(s)
		if m == nil || m[2*g] < 0 {
			return null
		}
		return row.String(s[m[2*g]:m[2*g+1]])
	}))
}
