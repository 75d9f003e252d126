package expr

import (
	"fmt"
	"strconv"
	"strings"
)

// A dateFormat is a Java SimpleDateFormat pattern compiled once into a
// list of appenders over the wall-clock fields of a timestamp; formatting
// a row does arithmetic and appends bytes, no time.Time and no parsing.
//
// Supported letters, as SimpleDateFormat formats them in a US English
// locale: G (era, AD or BC), y (year of the era; yy its last two digits),
// M and L (month; MMM Jan, MMMM January), d (day of month), D (day of
// year), F (day of week in month), E (EEE Mon, EEEE Monday), u (day of
// week, 1 = Monday), a (AM/PM), H (0-23), k (1-24), K (0-11), h (1-12),
// m, s, S (milliseconds), z (UTC; zzzz Coordinated Universal Time), Z
// (+0000) and X (Z; X to XXX). A run of n letters of a number is at least
// n digits wide. The zone letters print UTC: wall-clock fields are
// formatted as UTC, the session time zone. Text in single quotes is
// literal (” is a quote, inside quotes or out); other non-letters are
// literal. Other letters (Y, w, W, whose weeks depend on a locale) are
// refused, as Java refuses unknown ones. Dates before 1582-10-15 are
// proleptic Gregorian (Java switches to the Julian calendar there).
type dateFormat struct {
	parts    []datePart
	size     int
	needDate bool // some part reads the date, not only the time of day
}

type datePart struct {
	letter byte // 0 for literal text
	count  int
	text   string
}

// utcLongName is zzzz of the UTC zone.
const utcLongName = "Coordinated Universal Time"

var monthNames = [...]string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}
var dayNames = [...]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// compileDateFormat compiles a pattern.
func compileDateFormat(p string) (*dateFormat, error) {
	f := &dateFormat{}
	lit := func(s string) {
		if n := len(f.parts); n > 0 && f.parts[n-1].letter == 0 {
			f.parts[n-1].text += s
			return
		}
		f.parts = append(f.parts, datePart{text: s})
	}
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == '\'':
			if i+1 < len(p) && p[i+1] == '\'' {
				lit("'")
				i += 2
				continue
			}
			j := i + 1
			text := ""
			for {
				if j >= len(p) {
					return nil, fmt.Errorf("unterminated quote in date format %q", p)
				}
				if p[j] == '\'' {
					if j+1 < len(p) && p[j+1] == '\'' {
						text += "'"
						j += 2
						continue
					}
					break
				}
				text += string(p[j])
				j++
			}
			lit(text)
			i = j + 1
		case isLetter(c):
			j := i
			for j < len(p) && p[j] == c {
				j++
			}
			switch c {
			case 'G', 'y', 'M', 'L', 'd', 'D', 'F', 'H', 'k', 'K', 'h', 'm', 's', 'S', 'a', 'E', 'u', 'z', 'Z', 'X':
			default:
				return nil, fmt.Errorf("unsupported letter %q in date format %q (supported: G y M L d D F E u a H k K h m s S z Z X; quote literal text with '...')", c, p)
			}
			if c == 'X' && j-i > 3 {
				return nil, fmt.Errorf("%s in date format %q: an ISO 8601 zone is X, XX or XXX", p[i:j], p)
			}
			if j-i > 32 {
				return nil, fmt.Errorf("pattern letter run too long in date format %q", p)
			}
			f.parts = append(f.parts, datePart{letter: c, count: j - i})
			i = j
		default:
			j := i
			for j < len(p) && p[j] != '\'' && !isLetter(p[j]) {
				j++
			}
			lit(p[i:j])
			i = j
		}
	}
	for _, pt := range f.parts {
		f.size += max(pt.count, len(pt.text), 2)
		if pt.letter == 'z' {
			f.size += len(utcLongName)
		}
		switch pt.letter {
		case 'G', 'y', 'M', 'L', 'd', 'D', 'F', 'E', 'u':
			f.needDate = true
		}
	}
	return f, nil
}

// appendNum writes v zero-padded to width digits.
func appendNum(b []byte, v int64, width int) []byte {
	if v >= 0 && v < 100 && width <= 2 {
		if v >= 10 || width == 2 {
			return append(b, byte('0'+v/10), byte('0'+v%10))
		}
		return append(b, byte('0'+v))
	}
	return appendPad(b, v, width)
}

// format appends the formatting of wall-clock milliseconds ms.
func (f *dateFormat) format(b []byte, ms int64) []byte {
	var fl fields
	if f.needDate {
		fl = splitMillis(ms)
	} else {
		rem := int(floorMod(ms, msPerDay))
		fl = fields{hour: rem / msPerHour, minute: rem / msPerMinute % 60, second: rem / msPerSecond % 60, milli: rem % 1000}
	}
	for i := range f.parts {
		pt := &f.parts[i]
		switch pt.letter {
		case 0:
			b = append(b, pt.text...)
		case 'G':
			if fl.year <= 0 {
				b = append(b, "BC"...)
			} else {
				b = append(b, "AD"...)
			}
		case 'y':
			y := fl.year // of the era: 0 is 1 BC
			if y <= 0 {
				y = 1 - y
			}
			if pt.count == 2 {
				b = appendNum(b, y%100, 2)
			} else {
				b = appendNum(b, y, pt.count)
			}
		case 'M', 'L':
			switch {
			case pt.count >= 4:
				b = append(b, monthNames[fl.month-1]...)
			case pt.count == 3:
				b = append(b, monthNames[fl.month-1][:3]...)
			default:
				b = appendNum(b, int64(fl.month), pt.count)
			}
		case 'd':
			b = appendNum(b, int64(fl.day), pt.count)
		case 'F':
			b = appendNum(b, int64((fl.day-1)/7+1), pt.count)
		case 'z':
			if pt.count >= 4 {
				b = append(b, utcLongName...)
			} else {
				b = append(b, "UTC"...)
			}
		case 'Z':
			b = append(b, "+0000"...)
		case 'X':
			b = append(b, 'Z')
		case 'D':
			b = appendNum(b, int64(dayOfYear(fl.year, fl.month, fl.day)), pt.count)
		case 'H':
			b = appendNum(b, int64(fl.hour), pt.count)
		case 'k':
			h := fl.hour
			if h == 0 {
				h = 24
			}
			b = appendNum(b, int64(h), pt.count)
		case 'K':
			b = appendNum(b, int64(fl.hour%12), pt.count)
		case 'h':
			h := fl.hour % 12
			if h == 0 {
				h = 12
			}
			b = appendNum(b, int64(h), pt.count)
		case 'm':
			b = appendNum(b, int64(fl.minute), pt.count)
		case 's':
			b = appendNum(b, int64(fl.second), pt.count)
		case 'S':
			b = appendNum(b, int64(fl.milli), pt.count)
		case 'a':
			if fl.hour < 12 {
				b = append(b, "AM"...)
			} else {
				b = append(b, "PM"...)
			}
		case 'E':
			name := dayNames[weekday(fl.days)-1]
			if pt.count < 4 {
				name = name[:3]
			}
			b = append(b, name...)
		case 'u':
			b = appendNum(b, int64((weekday(fl.days)+5)%7+1), pt.count)
		}
	}
	return b
}

// Format formats wall-clock milliseconds into a new string.
func (f *dateFormat) Format(ms int64) string {
	var buf [64]byte
	return string(f.format(buf[:0], ms))
}

// parse reads s with the pattern into wall-clock milliseconds. Numeric
// fields followed directly by another numeric field take exactly their
// letter count of digits (yyyyMMdd); others take as many digits as
// there are. Missing fields default to 1970-01-01 00:00:00.000.
func (f *dateFormat) parse(s string) (int64, bool) {
	year, month, day := int64(1970), 1, 1
	hour, minute, sec, milli := 0, 0, 0, 0
	pm, hasAmPm, h12, bc := false, false, false, false
	offset := int64(0) // the zone's, in milliseconds east of UTC
	n := 0
	for i, pt := range f.parts {
		if pt.letter == 0 {
			if len(s)-n < len(pt.text) || s[n:n+len(pt.text)] != pt.text {
				return 0, false
			}
			n += len(pt.text)
			continue
		}
		switch pt.letter {
		case 'G':
			switch {
			case strings.HasPrefix(s[n:], "AD"):
			case strings.HasPrefix(s[n:], "BC"):
				bc = true
			default:
				return 0, false
			}
			n += 2
			continue
		case 'z', 'Z', 'X':
			off, w, ok := parseZone(s[n:])
			if !ok {
				return 0, false
			}
			offset, n = off, n+w
			continue
		case 'a':
			if len(s)-n < 2 {
				return 0, false
			}
			switch s[n : n+2] {
			case "AM", "am":
			case "PM", "pm":
				pm = true
			default:
				return 0, false
			}
			hasAmPm = true
			n += 2
			continue
		case 'E':
			found := false
			for _, d := range dayNames {
				for _, cand := range []string{d, d[:3]} {
					if len(s)-n >= len(cand) && s[n:n+len(cand)] == cand {
						n += len(cand)
						found = true
						break
					}
				}
				if found {
					break
				}
			}
			if !found {
				return 0, false
			}
			continue
		case 'M', 'L':
			if pt.count >= 3 {
				found := false
				for mi, name := range monthNames {
					for _, cand := range []string{name, name[:3]} {
						if len(s)-n >= len(cand) && s[n:n+len(cand)] == cand {
							n += len(cand)
							month = mi + 1
							found = true
							break
						}
					}
					if found {
						break
					}
				}
				if !found {
					return 0, false
				}
				continue
			}
		}
		fixed := i+1 < len(f.parts) && f.parts[i+1].isNumber()
		st := n
		neg := false
		if pt.letter == 'y' && n < len(s) && s[n] == '-' {
			neg = true
			n++
			st = n
		}
		for n < len(s) && s[n] >= '0' && s[n] <= '9' && (!fixed || n-st < pt.count) && n-st < 10 {
			n++
		}
		if n == st {
			return 0, false
		}
		v, _ := strconv.ParseInt(s[st:n], 10, 64)
		switch pt.letter {
		case 'y':
			if pt.count == 2 && n-st == 2 {
				v += 2000
			}
			if neg {
				v = -v
			}
			year = v
		case 'M', 'L':
			month = int(v)
		case 'd':
			day = int(v)
		case 'D':
			// day of year: from January 1st
			month, day = 1, int(v)
		case 'H', 'k':
			hour = int(v)
			if pt.letter == 'k' && hour == 24 {
				hour = 0
			}
		case 'K', 'h':
			hour, h12 = int(v), true
			if pt.letter == 'h' && hour == 12 {
				hour = 0
			}
		case 'm':
			minute = int(v)
		case 's':
			sec = int(v)
		case 'S':
			for d := n - st; d > 3; d-- {
				v /= 10
			}
			if n-st < 3 && pt.count >= 3 {
				for d := n - st; d < 3; d++ {
					v *= 10
				}
			}
			milli = int(v)
		case 'u', 'F':
		}
	}
	if n != len(s) {
		return 0, false
	}
	if hasAmPm && pm && (h12 || hour < 12) {
		hour += 12
	}
	if month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return 0, false
	}
	if day > daysInMonth(year, month) && !(month == 1 && day <= 366) {
		return 0, false
	}
	if bc {
		year = 1 - year
	}
	days := daysFromCivil(year, month, 1) + int64(day-1)
	return days*msPerDay + int64(hour)*msPerHour + int64(minute)*msPerMinute + int64(sec)*msPerSecond + int64(milli) - offset, true
}

// isNumber reports whether the part is a number (not literal text nor a
// name).
func (pt datePart) isNumber() bool {
	switch pt.letter {
	case 0, 'G', 'a', 'E', 'z', 'Z', 'X':
		return false
	case 'M', 'L':
		return pt.count < 3
	}
	return true
}

// parseZone reads a zone at the start of s as z, Z and X write one, or
// as an offset: UTC, GMT, Coordinated Universal Time, Z, or ±hh, ±hhmm,
// ±hh:mm (also after UTC or GMT). It returns the offset in milliseconds
// east of UTC and the bytes read.
func parseZone(s string) (int64, int, bool) {
	for _, name := range []string{utcLongName, "UTC", "GMT"} {
		if strings.HasPrefix(s, name) {
			if off, w, ok := parseOffset(s[len(name):]); ok {
				return off, len(name) + w, true
			}
			return 0, len(name), true
		}
	}
	if strings.HasPrefix(s, "Z") {
		return 0, 1, true
	}
	return parseOffset(s)
}

func parseOffset(s string) (int64, int, bool) {
	if len(s) < 3 || s[0] != '+' && s[0] != '-' {
		return 0, 0, false
	}
	digits := func(t string) (int64, bool) {
		if len(t) != 2 || t[0] < '0' || t[0] > '9' || t[1] < '0' || t[1] > '9' {
			return 0, false
		}
		return int64(t[0]-'0')*10 + int64(t[1]-'0'), true
	}
	h, ok := digits(s[1:3])
	if !ok || h > 23 {
		return 0, 0, false
	}
	w := 3
	var m int64
	switch {
	case len(s) >= 6 && s[3] == ':':
		if m, ok = digits(s[4:6]); ok {
			w = 6
		}
	case len(s) >= 5:
		if m, ok = digits(s[3:5]); ok {
			w = 5
		}
	}
	if m > 59 {
		return 0, 0, false
	}
	off := (h*60 + m) * msPerMinute
	if s[0] == '-' {
		off = -off
	}
	return off, w, true
}
