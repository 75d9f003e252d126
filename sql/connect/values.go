package connect

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/types"
)

var pow10 = func() [19]int64 {
	var p [19]int64
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

var errDecimalOverflow = errors.New("does not fit a DECIMAL held in 64 bits (at most 18 digits)")

// parseDecimal parses a decimal number (optional sign, digits, optional
// fraction, optional exponent) into its unscaled value at scale, rounding
// half away from zero like Flink's HALF_UP.
func parseDecimal(s string, scale int) (int64, error) {
	if scale < 0 || scale > 18 {
		return 0, fmt.Errorf("DECIMAL scale %d is not supported (0 to 18)", scale)
	}
	orig := s
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	exp := 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e > 100 || e < -100 {
			return 0, fmt.Errorf("%q is not a decimal number", orig)
		}
		exp, s = e, s[:i]
	}
	intPart, frac := s, ""
	if i := strings.IndexByte(s, '.'); i >= 0 {
		intPart, frac = s[:i], s[i+1:]
	}
	if intPart == "" && frac == "" {
		return 0, fmt.Errorf("%q is not a decimal number", orig)
	}
	digits := intPart + frac
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", orig)
		}
	}
	// value = digits × 10^(exp - len(frac)); unscaled = value × 10^scale.
	shift := exp - len(frac) + scale
	digits = strings.TrimLeft(digits, "0")
	var u uint64
	roundUp := false
	keep := len(digits)
	if shift < 0 {
		keep = len(digits) + shift
		if keep < 0 {
			keep = 0
		}
		if keep < len(digits) && -shift <= len(digits) {
			roundUp = digits[keep] >= '5'
		}
	}
	limit := uint64(math.MaxInt64)
	if neg {
		limit++ // -2^63
	}
	for i := 0; i < keep; i++ {
		d := uint64(digits[i] - '0')
		if u > (limit-d)/10 {
			return 0, fmt.Errorf("%s %w", orig, errDecimalOverflow)
		}
		u = u*10 + d
	}
	for ; shift > 0; shift-- {
		if u > limit/10 {
			return 0, fmt.Errorf("%s %w", orig, errDecimalOverflow)
		}
		u *= 10
	}
	if roundUp {
		if u == limit {
			return 0, fmt.Errorf("%s %w", orig, errDecimalOverflow)
		}
		u++
	}
	if neg {
		return int64(-u), nil
	}
	return int64(u), nil
}

// appendDecimal appends the unscaled value v at scale with exactly scale
// fraction digits (none and no point at scale 0).
func appendDecimal(dst []byte, v int64, scale int) []byte {
	u := uint64(v)
	if v < 0 {
		dst = append(dst, '-')
		u = -u
	}
	if scale <= 0 {
		return strconv.AppendUint(dst, u, 10)
	}
	if scale > 18 {
		scale = 18
	}
	p := uint64(pow10[scale])
	dst = strconv.AppendUint(dst, u/p, 10)
	dst = append(dst, '.')
	f := u % p
	var buf [18]byte
	for i := scale - 1; i >= 0; i-- {
		buf[i] = byte('0' + f%10)
		f /= 10
	}
	return append(dst, buf[:scale]...)
}

// parseTimestamp reads an ISO-8601 or SQL timestamp: 2015-07-15T00:00:00,
// 2015-07-15 00:00:00.123, with an optional Z or ±hh:mm offset (a
// timestamp without one is UTC), or a date alone.
func parseTimestamp(s string) (int64, error) {
	s = strings.TrimSpace(s)
	layouts := []string{
		"2006-01-02T15:04:05.999999999Z07:00",
		"2006-01-02T15:04:05.999999999",
		"2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999",
		"2006-01-02T15:04Z07:00",
		"2006-01-02T15:04",
		"2006-01-02 15:04",
		"2006-01-02",
	}
	for _, l := range layouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, fmt.Errorf("%q is not a timestamp: write epoch milliseconds, '2015-07-15 00:00:00.000' or '2015-07-15T00:00:00.000Z'", s)
}

// appendTimestamp writes ms as SQL ("2015-07-15 00:00:00.123") or ISO-8601
// ("2015-07-15T00:00:00.123", with a Z when utc is set) text, the
// fraction written only when not zero, as Flink writes it.
func appendTimestamp(dst []byte, ms int64, iso, utc bool) []byte {
	t := time.UnixMilli(ms).UTC()
	layout := "2006-01-02 15:04:05"
	if iso {
		layout = "2006-01-02T15:04:05"
	}
	dst = t.AppendFormat(dst, layout)
	if f := ms % 1000; f != 0 {
		if f < 0 {
			f += 1000
		}
		dst = append(dst, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
	}
	if iso && utc {
		dst = append(dst, 'Z')
	}
	return dst
}

const msPerDay = 86_400_000

func parseDate(s string) (int64, error) {
	t, err := time.Parse("2006-01-02", strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a date: write '2015-07-15'", s)
	}
	return floorDiv(t.UnixMilli(), msPerDay), nil
}

func appendDate(dst []byte, days int64) []byte {
	return time.UnixMilli(days*msPerDay).UTC().AppendFormat(dst, "2006-01-02")
}

func parseTime(s string) (int64, error) {
	for _, l := range []string{"15:04:05.999999999", "15:04"} {
		if t, err := time.Parse(l, strings.TrimSpace(s)); err == nil {
			return int64(t.Hour())*3_600_000 + int64(t.Minute())*60_000 + int64(t.Second())*1000 + int64(t.Nanosecond()/1e6), nil
		}
	}
	return 0, fmt.Errorf("%q is not a time of day: write '12:34:56'", s)
}

func appendTime(dst []byte, ms int64) []byte {
	dst = time.UnixMilli(ms).UTC().AppendFormat(dst, "15:04:05")
	if f := ms % 1000; f > 0 {
		dst = append(dst, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
	}
	return dst
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// parseText converts the text of a value (a CSV cell, a JSON string in a
// non-string column, an option) to the storage of t.
func parseText(s string, t types.Type) (row.Value, error) {
	switch t.Kind {
	case types.Boolean:
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "1":
			return row.Bool(true), nil
		case "false", "0":
			return row.Bool(false), nil
		}
		return row.Value{}, fmt.Errorf("%q is not a BOOLEAN", s)
	case types.TinyInt, types.SmallInt, types.Int, types.BigInt, types.IntervalDayTime, types.IntervalYearMonth:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return row.Value{}, fmt.Errorf("%q is not an integer", s)
		}
		return checkRange(n, t)
	case types.Float, types.Double:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return row.Value{}, fmt.Errorf("%q is not a number", s)
		}
		return row.Float(f), nil
	case types.Decimal:
		n, err := parseDecimal(strings.TrimSpace(s), t.Scale)
		if err != nil {
			return row.Value{}, err
		}
		return row.Int(n), nil
	case types.Char, types.Varchar:
		return row.String(s), nil
	case types.Timestamp, types.TimestampLTZ:
		if n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
			return row.Timestamp(n), nil
		}
		ms, err := parseTimestamp(s)
		if err != nil {
			return row.Value{}, err
		}
		return row.Timestamp(ms), nil
	case types.Date:
		d, err := parseDate(s)
		if err != nil {
			return row.Value{}, err
		}
		return row.Int(d), nil
	case types.Time:
		ms, err := parseTime(s)
		if err != nil {
			return row.Value{}, err
		}
		return row.Int(ms), nil
	case types.Row, types.Array, types.Map:
		if !validJSON(s) {
			return row.Value{}, fmt.Errorf("%q is not JSON text for %s", s, t.Kind)
		}
		return row.JSON(s), nil
	}
	return row.Value{}, fmt.Errorf("type %s cannot be read", t)
}

// checkRange refuses integers outside the range of TINYINT, SMALLINT and
// INT.
func checkRange(n int64, t types.Type) (row.Value, error) {
	var lo, hi int64
	switch t.Kind {
	case types.TinyInt:
		lo, hi = math.MinInt8, math.MaxInt8
	case types.SmallInt:
		lo, hi = math.MinInt16, math.MaxInt16
	case types.Int:
		lo, hi = math.MinInt32, math.MaxInt32
	default:
		return row.Int(n), nil
	}
	if n < lo || n > hi {
		return row.Value{}, fmt.Errorf("%d is out of range for %s", n, t.Kind)
	}
	return row.Int(n), nil
}

// validUTF8 returns b with each byte that is not part of valid UTF-8
// replaced by U+FFFD, as nexmark.AppendJSONString writes it, so a string
// read and written back reads the same.
func validUTF8(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			out = append(out, "\uFFFD"...)
			i++
			continue
		}
		out = append(out, b[i:i+size]...)
		i += size
	}
	return out
}
