package expr

import (
	"errors"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/sql/types"
)

// pow10 holds 10^0 .. 10^18, the scales an int64 can carry.
var pow10 = func() [19]int64 {
	var p [19]int64
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

var errOverflow = errors.New("DECIMAL overflow: the value does not fit 18 digits")

type decimalLit struct {
	v   int64
	typ types.Type
}

// parseDecimal parses "123.4500" into its unscaled value and
// DECIMAL(p, s) with s the digits after the point and p the digits of
// the integer part (at least 1) plus s.
func parseDecimal(text string) (decimalLit, error) {
	s := strings.TrimSpace(text)
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	if intPart == "" && frac == "" {
		return decimalLit{}, errors.New("no digits")
	}
	for _, part := range []string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return decimalLit{}, errors.New("not a decimal number")
			}
		}
	}
	trimmed := strings.TrimLeft(intPart, "0")
	intDigits := max(len(trimmed), 1)
	scale := len(frac)
	if trimmed == "" {
		trimmed = "0"
	}
	if len(trimmed)+scale > 18 {
		return decimalLit{}, errOverflow
	}
	v, err := strconv.ParseInt(trimmed+frac, 10, 64)
	if err != nil {
		return decimalLit{}, errOverflow
	}
	if neg {
		v = -v
	}
	return decimalLit{v: v, typ: types.DecimalOf(intDigits+scale, scale)}, nil
}

// rescale changes the scale of an unscaled value, rounding HALF_UP
// (away from zero at .5) when digits are dropped.
func rescale(v int64, from, to int) (int64, bool) {
	switch {
	case to == from:
		return v, true
	case to > from:
		d := to - from
		if d > 18 {
			return 0, v == 0
		}
		return mulCheck(v, pow10[d])
	default:
		d := from - to
		if d > 18 {
			return 0, true
		}
		p := pow10[d]
		q, r := v/p, v%p
		if r >= (p+1)/2 {
			q++
		} else if -r >= (p+1)/2 {
			q--
		}
		return q, true
	}
}

func mulCheck(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	hi, lo := bits.Mul64(uint64(absU(a)), uint64(absU(b)))
	neg := (a < 0) != (b < 0)
	if hi != 0 || lo > math.MaxInt64 && !(neg && lo == 1<<63) {
		return 0, false
	}
	if neg {
		return -int64(lo), true
	}
	return int64(lo), true
}

func absU(a int64) uint64 {
	if a < 0 {
		return uint64(-a)
	}
	return uint64(a)
}

func addCheck(a, b int64) (int64, bool) {
	s := a + b
	if (a >= 0) == (b >= 0) && (s >= 0) != (a >= 0) {
		return 0, false
	}
	return s, true
}

// divRound returns a/b rounded HALF_UP, for b != 0.
func divRound(a, b int64) int64 {
	q, r := a/b, a%b
	if r == 0 {
		return q
	}
	// compare 2|r| with |b| without overflow
	ar, ab := absU(r), absU(b)
	if ar >= ab-ar {
		if (a < 0) != (b < 0) {
			q--
		} else {
			q++
		}
	}
	return q
}

// formatDecimal writes an unscaled value with its scale: 1234, 2 → "12.34".
func formatDecimal(v int64, scale int) string {
	if scale == 0 {
		return strconv.FormatInt(v, 10)
	}
	neg := v < 0
	digits := strconv.FormatUint(absU(v), 10)
	for len(digits) <= scale {
		digits = "0" + digits
	}
	s := digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	if neg {
		return "-" + s
	}
	return s
}

// decimalToFloat converts an unscaled value.
func decimalToFloat(v int64, scale int) float64 {
	if scale <= 18 {
		return float64(v) / float64(pow10[scale])
	}
	return float64(v) / math.Pow10(scale)
}

// floatToDecimal converts f to an unscaled value at scale, HALF_UP.
func floatToDecimal(f float64, scale int) (int64, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	// exact through big.Rat rounding to avoid 0.1*10 artefacts: use the
	// shortest decimal text of f, then parse.
	s := strconv.FormatFloat(f, 'f', -1, 64)
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, false
	}
	return ratToDecimal(r, scale)
}

// ratToDecimal rounds r HALF_UP to scale digits.
func ratToDecimal(r *big.Rat, scale int) (int64, bool) {
	m := new(big.Rat).Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)))
	num, den := m.Num(), m.Denom()
	q, rem := new(big.Int).QuoRem(num, den, new(big.Int))
	rem2 := new(big.Int).Mul(new(big.Int).Abs(rem), big.NewInt(2))
	if rem2.Cmp(den) >= 0 {
		if num.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	if !q.IsInt64() {
		return 0, false
	}
	return q.Int64(), true
}

// decimalDigits returns the precision of an integer type seen as DECIMAL.
func integerPrecision(k types.Kind) int {
	switch k {
	case types.TinyInt:
		return 3
	case types.SmallInt:
		return 5
	case types.Int:
		return 10
	}
	return 19
}

// asDecimal returns t's DECIMAL view: integers as DECIMAL(n, 0).
func asDecimal(t types.Type) types.Type {
	if t.Kind == types.Decimal {
		return t
	}
	return types.DecimalOf(integerPrecision(t.Kind), 0)
}

func capPrecision(p, s int) types.Type {
	if p > 38 {
		p = 38
	}
	if s > p {
		s = p
	}
	return types.DecimalOf(p, s)
}
