package expr

import (
	"fmt"
	"strconv"
)

// A dateFormat is a Java SimpleDateFormat pattern compiled once into a
// list of appenders over the wall-clock fields of a timestamp; formatting
// a row does arithmetic and appends bytes, no time.Time and no parsing.
//
// Supported letters: y (year; yy two digits), M (month; MMM Jan, MMMM
// January), d (day of month), D (day of year), H (0-23), k (1-24), K
// (0-11), h (1-12), m, s, S (milliseconds), a (AM/PM), E (EEE Mon, EEEE
// Monday), u (day of week, 1 = Monday). Text in single quotes is
// literal (” is a quote); other non-letters are literal. Other letters
// are refused, as Java refuses unknown ones.
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
			case 'y', 'M', 'd', 'D', 'H', 'k', 'K', 'h', 'm', 's', 'S', 'a', 'E', 'u':
			default:
				return nil, fmt.Errorf("unsupported letter %q in date format %q (supported: y M d D H k K h m s S a E u; quote literal text with '...')", c, p)
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
		switch pt.letter {
		case 'y', 'M', 'd', 'D', 'E', 'u':
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
		case 'y':
			if pt.count == 2 {
				b = appendNum(b, floorMod(fl.year, 100), 2)
			} else {
				b = appendNum(b, fl.year, pt.count)
			}
		case 'M':
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
	pm, hasAmPm, h12 := false, false, false
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
		case 'M':
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
		fixed := i+1 < len(f.parts) && f.parts[i+1].letter != 0 && f.parts[i+1].letter != 'a' && f.parts[i+1].letter != 'E'
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
		case 'M':
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
		case 'u':
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
	days := daysFromCivil(year, month, 1) + int64(day-1)
	return days*msPerDay + int64(hour)*msPerHour + int64(minute)*msPerMinute + int64(sec)*msPerSecond + int64(milli), true
}
