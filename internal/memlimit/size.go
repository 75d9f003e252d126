package memlimit

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// units are the suffixes ParseSize accepts, longest first within a
// family so that "MiB" is not read as "M" followed by "iB".
var units = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
	{"B", 1},
}

// ParseSize reads a byte size: a non-negative number, optionally with a
// fraction, followed by an optional unit. Binary units are KiB, MiB, GiB,
// TiB (and the short K, M, G, T, as GOMEMLIMIT reads them); decimal units
// are KB, MB, GB, TB; B or no unit means bytes. Units are case-insensitive
// and may be separated from the number by spaces ("1.5 GiB").
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("memory size is empty: give a size like 256MiB, 1GiB or 512MB")
	}
	mult := int64(1)
	num := t
	for _, u := range units {
		if len(t) > len(u.suffix) && strings.EqualFold(t[len(t)-len(u.suffix):], u.suffix) {
			mult = u.mult
			num = strings.TrimSpace(t[:len(t)-len(u.suffix)])
			break
		}
	}
	if num == "" || strings.ContainsAny(num, "+-eExX_") {
		return 0, fmt.Errorf("memory size %q: want a non-negative number and a unit, like 256MiB, 1GiB or 512MB", s)
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("memory size %q: want a number and a unit, like 256MiB, 1GiB or 512MB", s)
		}
		if n > math.MaxInt64/mult {
			return 0, fmt.Errorf("memory size %q is too large", s)
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || f < 0 {
		return 0, fmt.Errorf("memory size %q: want a number and a unit, like 256MiB, 1GiB or 512MB", s)
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("memory size %q is too large", s)
	}
	return int64(v), nil
}

// FormatSize writes n bytes in the largest binary unit that divides it
// exactly (256MiB), or in bytes.
func FormatSize(n int64) string {
	for _, u := range []struct {
		s string
		m int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.m == 0 {
			return strconv.FormatInt(n/u.m, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
