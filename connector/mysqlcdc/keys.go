package mysqlcdc

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// strCompare compares two strings under a column's collation (the
// server's rules); used only while a resumed snapshot's key ranges are
// being caught up.
type strCompare func(c *column, a, b string) (int, error)

// compareKey orders two primary keys (JSON values in key order) as the
// server orders the primary key.
func compareKey(t *table, a, b []json.RawMessage, cmpStr strCompare) (int, error) {
	for i, ci := range t.pk {
		if i >= len(a) || i >= len(b) {
			return 0, fmt.Errorf("table %s: key of %d columns, want %d", t.id(), min(len(a), len(b)), len(t.pk))
		}
		r, err := compareValue(&t.cols[ci], a[i], b[i], cmpStr)
		if err != nil {
			return 0, fmt.Errorf("table %s column %s: %w", t.id(), t.cols[ci].name, err)
		}
		if r != 0 {
			return r, nil
		}
	}
	return 0, nil
}

func compareValue(c *column, a, b json.RawMessage, cmpStr strCompare) (int, error) {
	an, bn := string(a) == "null", string(b) == "null"
	if an || bn { // keys are NOT NULL; order NULL first anyway
		switch {
		case an && bn:
			return 0, nil
		case an:
			return -1, nil
		}
		return 1, nil
	}
	switch c.kind {
	case kInt, kUint, kYear, kBit, kDecimal, kFloat, kDouble:
		x, y := new(big.Rat), new(big.Rat)
		if _, ok := x.SetString(unquote(a)); !ok {
			return 0, fmt.Errorf("%s is not a number", a)
		}
		if _, ok := y.SetString(unquote(b)); !ok {
			return 0, fmt.Errorf("%s is not a number", b)
		}
		return x.Cmp(y), nil
	case kEnum, kSet:
		x, err := labelNumber(c, a)
		if err != nil {
			return 0, err
		}
		y, err := labelNumber(c, b)
		if err != nil {
			return 0, err
		}
		switch {
		case x < y:
			return -1, nil
		case x > y:
			return 1, nil
		}
		return 0, nil
	case kBytes:
		x, err := decodeBytes(a)
		if err != nil {
			return 0, err
		}
		y, err := decodeBytes(b)
		if err != nil {
			return 0, err
		}
		return bytes.Compare(x, y), nil
	case kString:
		x, y := jsonString(a), jsonString(b)
		if strings.HasSuffix(c.collation, "_bin") || c.collation == "binary" || c.collation == "" {
			if noPad(c.collation) {
				return strings.Compare(x, y), nil
			}
			return strings.Compare(strings.TrimRight(x, " "), strings.TrimRight(y, " ")), nil
		}
		return cmpStr(c, x, y)
	}
	// Dates and datetimes print with fixed widths: text order is time
	// order. TIME does not (negative, and up to 838 hours).
	x, y := jsonString(a), jsonString(b)
	if dx, ok := timeMicros(x); ok {
		if dy, ok := timeMicros(y); ok {
			return cmpInt(dx, dy), nil
		}
	}
	return strings.Compare(x, y), nil
}

func cmpInt(x, y int64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// timeMicros parses a TIME value as the server prints it,
// [-]H+:MM:SS[.ffffff], into microseconds; false for anything else (a
// date or datetime).
func timeMicros(s string) (int64, bool) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	h, rest, ok := strings.Cut(s, ":")
	if !ok || h == "" || strings.ContainsAny(h, " -") {
		return 0, false
	}
	hh, err := strconv.ParseInt(h, 10, 32)
	if err != nil || len(rest) < 5 || rest[2] != ':' {
		return 0, false
	}
	mm, err1 := strconv.ParseInt(rest[:2], 10, 32)
	sec, frac, _ := strings.Cut(rest[3:], ".")
	ss, err2 := strconv.ParseInt(sec, 10, 32)
	if err1 != nil || err2 != nil || len(frac) > 6 {
		return 0, false
	}
	var us int64
	if frac != "" {
		f, err := strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
		if err != nil {
			return 0, false
		}
		us = f
	}
	v := ((hh*60+mm)*60+ss)*1_000_000 + us
	if neg {
		v = -v
	}
	return v, true
}

// noPad reports a binary collation under which trailing spaces count:
// MariaDB's _nopad_ collations and MySQL 8's _0900_ ones (the others pad
// the shorter string with spaces).
func noPad(collation string) bool {
	return strings.Contains(collation, "_nopad_") || strings.Contains(collation, "_0900_")
}

func unquote(t json.RawMessage) string {
	if len(t) >= 2 && t[0] == '"' {
		return jsonString(t)
	}
	return string(t)
}

func jsonString(t json.RawMessage) string {
	var s string
	if err := json.Unmarshal(t, &s); err != nil {
		return string(t)
	}
	return s
}

func decodeBytes(t json.RawMessage) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(jsonString(t))
	if err != nil {
		return nil, fmt.Errorf("%s is not base64: %w", t, err)
	}
	return b, nil
}

// labelNumber is the number MySQL stores and orders an ENUM or SET by.
func labelNumber(c *column, t json.RawMessage) (uint64, error) {
	s := jsonString(t)
	if c.kind == kEnum {
		if s == "" {
			return 0, nil
		}
		for i, l := range c.labels {
			if l == s {
				return uint64(i + 1), nil
			}
		}
		return 0, fmt.Errorf("%q is not a label of the ENUM", s)
	}
	var n uint64
	if s == "" {
		return 0, nil
	}
	for _, part := range strings.Split(s, ",") {
		found := false
		for i, l := range c.labels {
			if l == part {
				n |= 1 << i
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("%q is not a label of the SET", part)
		}
	}
	return n, nil
}

// sqlLiteral writes a key value as a literal the server compares the
// way it orders the column.
func sqlLiteral(dst []byte, c *column, t json.RawMessage) ([]byte, error) {
	if string(t) == "null" {
		return append(dst, "NULL"...), nil
	}
	switch c.kind {
	case kInt, kUint, kYear, kBit, kFloat, kDouble, kDecimal:
		s := unquote(t)
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			return dst, fmt.Errorf("key value %s is not a number", t)
		}
		return append(dst, s...), nil
	case kEnum, kSet:
		n, err := labelNumber(c, t)
		if err != nil {
			return dst, err
		}
		return strconv.AppendUint(dst, n, 10), nil
	case kBytes:
		b, err := decodeBytes(t)
		if err != nil {
			return dst, err
		}
		dst = append(dst, "X'"...)
		dst = hex.AppendEncode(dst, b)
		return append(dst, '\''), nil
	}
	return appendQuoted(dst, jsonString(t)), nil
}

// appendQuoted writes s as a quoted string literal, escaped for the
// server's default SQL mode (backslash escapes on) and its other modes.
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'':
			dst = append(dst, '\'', '\'')
		case '\\':
			dst = append(dst, '\\', '\\')
		case 0:
			dst = append(dst, '\\', '0')
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '\'')
}

// quoteIdent quotes an identifier with backticks.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// safeName checks a charset or collation name before it is written
// into a query.
func safeName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}
