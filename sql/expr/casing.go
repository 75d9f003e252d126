package expr

import (
	"strings"
	"sync"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
)

// Case mapping as Java's String.toUpperCase and toLowerCase, which
// Flink's UPPER and LOWER call: full Unicode case mapping (SpecialCasing),
// so one character may become several ('ß' → "SS", 'ﬁ' → "FI",
// 'İ' → "i̇"), and a capital sigma at the end of a word lowers to 'ς'.
// Go's strings.ToUpper and ToLower map one rune to one rune and miss
// these. The mapping is the locale-independent one (Flink runs with a
// non-Turkish default locale in practice); Turkish and Lithuanian
// rules are not applied.
//
// A Caser keeps state between calls and must not be shared, hence the
// pools; ASCII strings, the common case, take strings' fast path, which
// agrees with Java on them.
var (
	upperCasers = sync.Pool{New: func() any { c := cases.Upper(language.Und); return &c }}
	lowerCasers = sync.Pool{New: func() any { c := cases.Lower(language.Und); return &c }}
)

// javaUpper is Java's String.toUpperCase() in a non-Turkish locale.
func javaUpper(s string) string {
	if isASCII(s) {
		return strings.ToUpper(s)
	}
	return withCaser(&upperCasers, s)
}

// javaLower is Java's String.toLowerCase() in a non-Turkish locale.
func javaLower(s string) string {
	if isASCII(s) {
		return strings.ToLower(s)
	}
	return withCaser(&lowerCasers, s)
}

func withCaser(pool *sync.Pool, s string) string {
	c := pool.Get().(*cases.Caser)
	out := c.String(s)
	pool.Put(c)
	return out
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// initcap is Flink's INITCAP, which is Calcite's SqlFunctions.initcap:
// a word is a run of ASCII letters and digits; its first letter is
// upper-cased and the rest lower-cased. Every other character,
// including a non-ASCII letter, separates words and is left as it is,
// so INITCAP('éCOLE') is 'éCole'.
func initcap(s string) string {
	b := []byte(s)
	start := true
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9':
			start = false
		case c >= 'A' && c <= 'Z':
			if !start {
				b[i] = c + 'a' - 'A'
			}
			start = false
		case c >= 'a' && c <= 'z':
			if start {
				b[i] = c - ('a' - 'A')
			}
			start = false
		default:
			start = true
		}
	}
	return string(b)
}
