package pgcdc

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// PostgreSQL type OIDs the JSON mapping distinguishes (pg_type.dat).
const (
	oidBool        = 16
	oidBytea       = 17
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidOID         = 26
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidDate        = 1082
	oidTimestamp   = 1114
	oidTimestampTZ = 1184
	oidNumeric     = 1700
	oidJSONB       = 3802
)

// appendValue appends the JSON form of a column value in PostgreSQL's text
// output format (what pgoutput sends and what a text-format query
// returns, with DateStyle ISO and TimeZone UTC) for a column of type oid.
//
// The mapping (documented in docs/connectors.md): bool → true/false;
// smallint, integer, bigint, oid → numbers; real and double precision →
// numbers ("NaN", "Infinity", "-Infinity" as strings); numeric → a number
// with every digit PostgreSQL printed (NaN and infinities as strings);
// json, jsonb → the JSON value itself; bytea → a base64 string;
// timestamp with time zone → an RFC 3339 string in UTC
// ("2026-12-06T13:05:59.123456Z"); timestamp → "2026-12-06T13:05:59.123456"
// (no zone); date → "2026-12-06"; everything else (text, varchar, uuid,
// time, interval, arrays, enums, ...) → its text form as a string.
func appendValue(dst []byte, oid uint32, text []byte) []byte {
	switch oid {
	case oidBool:
		if len(text) == 1 && text[0] == 't' {
			return append(dst, "true"...)
		}
		if len(text) == 1 && text[0] == 'f' {
			return append(dst, "false"...)
		}
	case oidInt2, oidInt4, oidInt8, oidOID:
		if isInteger(text) {
			return append(dst, text...)
		}
	case oidFloat4, oidFloat8, oidNumeric:
		if isJSONNumber(text) {
			return append(dst, text...)
		}
	case oidJSON, oidJSONB:
		if json.Valid(text) {
			return append(dst, text...)
		}
	case oidBytea:
		if len(text) >= 2 && text[0] == '\\' && text[1] == 'x' {
			raw := make([]byte, hex.DecodedLen(len(text)-2))
			if _, err := hex.Decode(raw, text[2:]); err == nil {
				dst = append(dst, '"')
				dst = base64.StdEncoding.AppendEncode(dst, raw)
				return append(dst, '"')
			}
		}
	case oidTimestampTZ:
		if t, ok := isoTimestamp(text, true); ok {
			return appendString(dst, t)
		}
	case oidTimestamp:
		if t, ok := isoTimestamp(text, false); ok {
			return appendString(dst, t)
		}
	}
	return appendString(dst, text)
}

// isoTimestamp turns PostgreSQL's ISO output ("2026-12-06 13:05:59.12+00")
// into RFC 3339 ("2026-12-06T13:05:59.12Z"); withZone says the value ends
// with a UTC offset, which must be +00 (the connections run in UTC).
func isoTimestamp(text []byte, withZone bool) ([]byte, bool) {
	if len(text) < 19 || text[10] != ' ' || text[4] != '-' || string(text[len(text)-3:]) == " BC" {
		return nil, false // BC dates, infinity, years past 9999: as they are
	}
	out := make([]byte, 0, len(text)+1)
	out = append(out, text[:10]...)
	out = append(out, 'T')
	rest := text[11:]
	if withZone {
		if len(rest) < 3 || string(rest[len(rest)-3:]) != "+00" {
			return nil, false
		}
		out = append(out, rest[:len(rest)-3]...)
		return append(out, 'Z'), true
	}
	return append(out, rest...), true
}

func isInteger(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 || (b[0] == '0' && len(b) > 1) {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isJSONNumber reports whether b is a number as JSON writes them
// (PostgreSQL prints "NaN", "Infinity", ".5"-free decimals and exponents
// like "1e+20", which JSON accepts).
func isJSONNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return false
	}
	if b[i] == '0' {
		i++
	} else if b[i] >= '1' && b[i] <= '9' {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	} else {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	return i == len(b)
}

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(dst, s []byte) []byte {
	const hexd = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c >= 0x20:
				dst = append(dst, c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, "\\ufffd"...)
		} else if r == '\u2028' || r == '\u2029' {
			dst = append(dst, '\\', 'u', '2', '0', '2', hexd[r&0xf])
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

func appendQuoted(dst []byte, s string) []byte { return appendString(dst, []byte(s)) }

func appendUint(dst []byte, v uint64) []byte { return strconv.AppendUint(dst, v, 10) }
