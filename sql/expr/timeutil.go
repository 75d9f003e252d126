package expr

import (
	"errors"
	"strconv"
)

const (
	msPerSecond = 1000
	msPerMinute = 60 * msPerSecond
	msPerHour   = 60 * msPerMinute
	msPerDay    = 24 * msPerHour
)

// floorDiv is division rounding toward negative infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (H. Hinnant's algorithm, pure arithmetic).
func civil(days int64) (y int64, m, d int) {
	z := days + 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		m = int(mp + 3)
	} else {
		m = int(mp - 9)
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

// daysFromCivil is civil's inverse.
func daysFromCivil(y int64, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yoe := y - era*400
	mm := int64(m)
	if mm > 2 {
		mm -= 3
	} else {
		mm += 9
	}
	doy := (153*mm+2)/5 + int64(d) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func isLeap(y int64) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func daysInMonth(y int64, m int) int {
	switch m {
	case 2:
		if isLeap(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// fields are the wall-clock fields of a millisecond timestamp read as UTC.
type fields struct {
	year                 int64
	month, day           int
	hour, minute, second int
	milli                int
	days                 int64 // since the epoch
}

func splitMillis(ms int64) fields {
	days := floorDiv(ms, msPerDay)
	rem := int(ms - days*msPerDay)
	y, m, d := civil(days)
	return fields{
		year: y, month: m, day: d,
		hour: rem / msPerHour, minute: rem / msPerMinute % 60, second: rem / msPerSecond % 60, milli: rem % 1000,
		days: days,
	}
}

// weekday returns 1 = Sunday ... 7 = Saturday (SQL's DAYOFWEEK).
func weekday(days int64) int { return int(floorMod(days+4, 7)) + 1 }

func dayOfYear(y int64, m, d int) int {
	return int(daysFromCivil(y, m, d)-daysFromCivil(y, 1, 1)) + 1
}

// isoWeek returns the ISO-8601 week number (SQL's WEEK, as Flink).
func isoWeek(days int64) int {
	// Thursday of this week decides the year.
	wd := int(floorMod(days+3, 7)) // 0 = Monday
	thu := days - int64(wd) + 3
	y, _, _ := civil(thu)
	jan1 := daysFromCivil(y, 1, 1)
	return int((thu-jan1)/7) + 1
}

var errTimestampSyntax = errors.New("expected 'yyyy-MM-dd HH:mm:ss[.SSS]'")

// parseTimestamp parses 'yyyy-MM-dd[ HH:mm[:ss[.fff]]]' (or T for the
// space) as UTC wall-clock into epoch milliseconds.
func parseTimestamp(s string) (int64, error) {
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	if len(s) < 8 {
		return 0, errTimestampSyntax
	}
	days, n, err := parseDatePrefix(s)
	if err != nil {
		return 0, err
	}
	if n == len(s) {
		return days * msPerDay, nil
	}
	if s[n] != ' ' && s[n] != 'T' {
		return 0, errTimestampSyntax
	}
	ms, err := parseTime(s[n+1:])
	if err != nil {
		return 0, err
	}
	return days*msPerDay + ms, nil
}

// parseDatePrefix reads yyyy-M-d at the start of s.
func parseDatePrefix(s string) (days int64, n int, err error) {
	num := func() (int64, bool) {
		st := n
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		if n == st || n-st > 9 {
			return 0, false
		}
		v, _ := strconv.ParseInt(s[st:n], 10, 64)
		return v, true
	}
	neg := false
	if n < len(s) && s[n] == '-' {
		neg = true
		n++
	}
	y, ok := num()
	if !ok || n >= len(s) || s[n] != '-' {
		return 0, 0, errTimestampSyntax
	}
	n++
	m, ok := num()
	if !ok || n >= len(s) || s[n] != '-' {
		return 0, 0, errTimestampSyntax
	}
	n++
	d, ok := num()
	if !ok {
		return 0, 0, errTimestampSyntax
	}
	if neg {
		y = -y
	}
	if m < 1 || m > 12 || d < 1 || d > int64(daysInMonth(y, int(m))) {
		return 0, 0, errors.New("month or day out of range")
	}
	return daysFromCivil(y, int(m), int(d)), n, nil
}

func parseDate(s string) (int64, error) {
	days, n, err := parseDatePrefix(s)
	if err != nil {
		return 0, err
	}
	if n != len(s) {
		return 0, errors.New("expected 'yyyy-MM-dd'")
	}
	return days, nil
}

// parseTime parses HH:mm[:ss[.fff...]] into milliseconds of the day.
func parseTime(s string) (int64, error) {
	bad := errors.New("expected 'HH:mm:ss[.SSS]'")
	var parts [3]int64
	n, i := 0, 0
	for i < 3 {
		st := n
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		if n == st || n-st > 2 {
			return 0, bad
		}
		parts[i], _ = strconv.ParseInt(s[st:n], 10, 64)
		i++
		if n < len(s) && s[n] == ':' && i < 3 {
			n++
			continue
		}
		break
	}
	if i < 2 {
		return 0, bad
	}
	var frac int64
	if n < len(s) && s[n] == '.' {
		n++
		st := n
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			if n-st < 3 {
				frac = frac*10 + int64(s[n]-'0')
			}
			n++
		}
		if n == st {
			return 0, bad
		}
		for d := n - st; d < 3; d++ {
			frac *= 10
		}
	}
	if n != len(s) {
		return 0, bad
	}
	if parts[0] > 23 || parts[1] > 59 || parts[2] > 59 {
		return 0, errors.New("hour, minute or second out of range")
	}
	return parts[0]*msPerHour + parts[1]*msPerMinute + parts[2]*msPerSecond + frac, nil
}

func appendPad(b []byte, v int64, width int) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	var tmp [20]byte
	i := len(tmp)
	for v > 0 || i == len(tmp) {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	for d := len(tmp) - i; d < width; d++ {
		b = append(b, '0')
	}
	return append(b, tmp[i:]...)
}

// appendDate writes yyyy-MM-dd.
func appendDate(b []byte, days int64) []byte {
	y, m, d := civil(days)
	b = appendPad(b, y, 4)
	b = append(b, '-', byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10))
	return b
}

// appendTime writes HH:mm:ss and, when frac > 0, .SSS cut to frac digits.
func appendTime(b []byte, ms int64, frac int) []byte {
	h, mi, s := ms/msPerHour, ms/msPerMinute%60, ms/msPerSecond%60
	b = append(b, byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':', byte('0'+s/10), byte('0'+s%10))
	if frac > 0 {
		f := ms % 1000
		digits := [3]byte{byte('0' + f/100), byte('0' + f/10%10), byte('0' + f%10)}
		b = append(b, '.')
		b = append(b, digits[:min(frac, 3)]...)
	}
	return b
}

// formatTimestamp writes 'yyyy-MM-dd HH:mm:ss[.SSS]' with frac fraction
// digits (at most 3).
func formatTimestamp(ms int64, frac int) string {
	days := floorDiv(ms, msPerDay)
	b := make([]byte, 0, 23)
	b = appendDate(b, days)
	b = append(b, ' ')
	b = appendTime(b, ms-days*msPerDay, frac)
	return string(b)
}

// The times that functions and interval arithmetic compute are kept
// within Flink's TIMESTAMP range, 0000-01-01 00:00:00.000 to 9999-12-31
// 23:59:59.999 (as epoch milliseconds, and as days for a DATE): a
// result outside it, which would otherwise wrap around int64, is NULL
// and reported as errTimeRange.
const (
	minMillis = -62167219200000
	maxMillis = 253402300799999
	minDays   = minMillis / msPerDay
	maxDays   = maxMillis / msPerDay
	// maxMonths bounds a month count that can stay in the range.
	maxMonths = 10000 * 12
)

const errTimeRange = "the result is outside the TIMESTAMP range 0000-01-01 00:00:00 to 9999-12-31 23:59:59.999"

// inRange reports whether ms is a time of the supported range.
func inRange(ms int64) bool { return ms >= minMillis && ms <= maxMillis }

// daysInRange reports whether a DATE (days) is in the supported range.
func daysInRange(days int64) bool { return days >= minDays && days <= maxDays }

// addSpan returns base + k*unit, false when base or the result is
// outside the supported range (without overflowing int64 on the way).
func addSpan(base, k, unit int64) (int64, bool) {
	const span = maxMillis - minMillis
	if !inRange(base) {
		return 0, false
	}
	if k == 0 || unit == 0 {
		return base, true
	}
	if k < -span || k > span || unit < -span || unit > span {
		return 0, false
	}
	ak, au := k, unit
	if ak < 0 {
		ak = -ak
	}
	if au < 0 {
		au = -au
	}
	if ak > span/au {
		return 0, false
	}
	r := base + k*unit
	return r, inRange(r)
}

// addMonthsChecked is addMonthsMillis (or addMonthsDays when date) kept
// within the supported range.
func addMonthsChecked(base, months int64, date bool) (int64, bool) {
	if months > maxMonths || months < -maxMonths {
		return 0, false
	}
	if date {
		if !daysInRange(base) {
			return 0, false
		}
		r := addMonthsDays(base, months)
		return r, daysInRange(r)
	}
	if !inRange(base) {
		return 0, false
	}
	r := addMonthsMillis(base, months)
	return r, inRange(r)
}
