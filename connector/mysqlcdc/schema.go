package mysqlcdc

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// kind is how a column's values are rendered in JSON; see the type
// mapping in docs/connectors.md.
type kind uint8

const (
	kInt      kind = iota // signed integers: JSON number
	kUint                 // unsigned integers: JSON number
	kDecimal              // DECIMAL: JSON string, exact digits
	kFloat                // FLOAT: JSON number, single precision digits
	kDouble               // DOUBLE: JSON number
	kString               // character types: JSON string
	kBytes                // binary types: base64 JSON string
	kTemporal             // DATE, TIME, DATETIME, TIMESTAMP: JSON string as MySQL prints it (TIMESTAMP in UTC)
	kYear                 // YEAR: JSON number
	kBit                  // BIT(n): JSON number
	kEnum                 // ENUM: its label
	kSet                  // SET: its labels joined by commas
	kJSON                 // MySQL's JSON type: JSON string of the document
)

type column struct {
	name   string
	kind   kind
	bits   uint8    // integer width, for unsigned values the binlog gives signed
	labels []string // ENUM and SET labels
	// pad is the length of a BINARY(n) column: the binlog leaves out its
	// trailing zero bytes, which the column's value (and a SELECT) has.
	pad       int
	charset   string // character columns: for comparing keys
	collation string
}

// table is the schema of a captured table.
type table struct {
	db, name string
	cols     []column
	pk       []int // positions of the primary-key columns, in key order
}

func (t *table) id() string { return t.db + "." + t.name }

func (t *table) names() []string {
	out := make([]string, len(t.cols))
	for i, c := range t.cols {
		out[i] = c.name
	}
	return out
}

// loadTable reads a table's schema from information_schema.
func loadTable(c *client.Conn, db, name string) (*table, error) {
	r, err := c.Execute(`SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IFNULL(CHARACTER_SET_NAME, ''), IFNULL(COLLATION_NAME, '')
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, db, name)
	if err != nil {
		return nil, fmt.Errorf("table %s.%s: read columns: %w", db, name, err)
	}
	t := &table{db: db, name: name}
	for i := range r.RowNumber() {
		str := func(j int) string { s, _ := r.GetString(i, j); return s }
		col, err := columnOf(str(0), strings.ToLower(str(1)), strings.ToLower(str(2)))
		if err != nil {
			return nil, fatal(fmt.Errorf("mysql_cdc: table %s.%s: %w", db, name, err))
		}
		col.charset, col.collation = str(3), str(4)
		t.cols = append(t.cols, col)
	}
	if len(t.cols) == 0 {
		return nil, fatal(fmt.Errorf("mysql_cdc: table %s.%s does not exist (or the user cannot see it): check tables: and the user's privileges", db, name))
	}
	r, err = c.Execute(`SELECT COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`, db, name)
	if err != nil {
		return nil, fmt.Errorf("table %s.%s: read primary key: %w", db, name, err)
	}
	for i := range r.RowNumber() {
		s, _ := r.GetString(i, 0)
		j := t.index(s)
		if j < 0 {
			return nil, fmt.Errorf("table %s.%s: primary-key column %s not among the columns", db, name, s)
		}
		t.pk = append(t.pk, j)
	}
	if len(t.pk) == 0 {
		return nil, fatal(fmt.Errorf("mysql_cdc: table %s.%s has no primary key: change data capture keys its messages and chunks its snapshot by it (add a PRIMARY KEY)", db, name))
	}
	return t, nil
}

func (t *table) index(name string) int {
	for i, c := range t.cols {
		if strings.EqualFold(c.name, name) {
			return i
		}
	}
	return -1
}

// columnOf maps information_schema's DATA_TYPE and COLUMN_TYPE to a kind.
func columnOf(name, dataType, colType string) (column, error) {
	c := column{name: name}
	unsigned := strings.Contains(colType, "unsigned")
	setInt := func(bits uint8) {
		c.bits, c.kind = bits, kInt
		if unsigned {
			c.kind = kUint
		}
	}
	switch dataType {
	case "tinyint":
		setInt(8)
	case "smallint":
		setInt(16)
	case "mediumint":
		setInt(24)
	case "int", "integer":
		setInt(32)
	case "bigint":
		setInt(64)
	case "decimal", "numeric":
		c.kind = kDecimal
	case "float":
		c.kind = kFloat
	case "double", "real":
		c.kind = kDouble
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
		c.kind = kString
	case "binary":
		c.kind = kBytes
		if open, end := strings.IndexByte(colType, '('), strings.IndexByte(colType, ')'); open > 0 && end > open {
			c.pad, _ = strconv.Atoi(colType[open+1 : end])
		}
	case "varbinary", "tinyblob", "blob", "mediumblob", "longblob",
		"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection":
		c.kind = kBytes
	case "date", "time", "datetime", "timestamp":
		c.kind = kTemporal
	case "year":
		c.kind = kYear
	case "bit":
		c.kind = kBit
	case "enum", "set":
		c.kind = kEnum
		if dataType == "set" {
			c.kind = kSet
		}
		labels, err := parseLabels(colType)
		if err != nil {
			return c, fmt.Errorf("column %s: %w", name, err)
		}
		c.labels = labels
	case "json":
		c.kind = kJSON
	default:
		return c, fmt.Errorf("column %s has type %s, which mysql_cdc does not capture (see the type mapping in docs/connectors.md)", name, dataType)
	}
	return c, nil
}

// parseLabels parses "enum('a','b”c')" or "set(...)".
func parseLabels(colType string) ([]string, error) {
	open, end := strings.IndexByte(colType, '('), strings.LastIndexByte(colType, ')')
	if open < 0 || end < open {
		return nil, fmt.Errorf("cannot read labels of %q", colType)
	}
	s := colType[open+1 : end]
	var out []string
	for len(s) > 0 {
		if s[0] != '\'' {
			return nil, fmt.Errorf("cannot read labels of %q", colType)
		}
		var b strings.Builder
		i := 1
		for ; i < len(s); i++ {
			if s[i] == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					b.WriteByte('\'')
					i++
					continue
				}
				break
			}
			b.WriteByte(s[i])
		}
		out = append(out, b.String())
		s = strings.TrimPrefix(s[min(i+1, len(s)):], ",")
	}
	return out, nil
}

// tableFromMap builds a table's schema from a table-map event that
// carries full metadata (binlog_row_metadata=FULL): used for events
// logged before a schema change that is already live on the server.
func tableFromMap(e *replication.TableMapEvent) (*table, error) {
	names := e.ColumnNameString()
	if len(names) != int(e.ColumnCount) {
		return nil, fmt.Errorf("table %s.%s: the binlog's column count (%d) differs from the table's current schema and the binlog carries no column names: set binlog_row_metadata=FULL on the server", e.Schema, e.Table, e.ColumnCount)
	}
	t := &table{db: string(e.Schema), name: string(e.Table)}
	unsigned, enums, sets, collations := e.UnsignedMap(), e.EnumStrValueMap(), e.SetStrValueMap(), e.CollationMap()
	for i, n := range names {
		c := column{name: n}
		switch realType(e, i) {
		case mysql.MYSQL_TYPE_TINY:
			c.kind, c.bits = kInt, 8
		case mysql.MYSQL_TYPE_SHORT:
			c.kind, c.bits = kInt, 16
		case mysql.MYSQL_TYPE_INT24:
			c.kind, c.bits = kInt, 24
		case mysql.MYSQL_TYPE_LONG:
			c.kind, c.bits = kInt, 32
		case mysql.MYSQL_TYPE_LONGLONG:
			c.kind, c.bits = kInt, 64
		case mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_DECIMAL:
			c.kind = kDecimal
		case mysql.MYSQL_TYPE_FLOAT:
			c.kind = kFloat
		case mysql.MYSQL_TYPE_DOUBLE:
			c.kind = kDouble
		case mysql.MYSQL_TYPE_ENUM:
			c.kind, c.labels = kEnum, enums[i]
		case mysql.MYSQL_TYPE_SET:
			c.kind, c.labels = kSet, sets[i]
		case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE, mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_TIME2,
			mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2:
			c.kind = kTemporal
		case mysql.MYSQL_TYPE_YEAR:
			c.kind = kYear
		case mysql.MYSQL_TYPE_BIT:
			c.kind = kBit
		case mysql.MYSQL_TYPE_JSON:
			c.kind = kJSON
		case mysql.MYSQL_TYPE_GEOMETRY:
			c.kind = kBytes
		default:
			// CHAR, VARCHAR, TEXT and their binary twins BINARY,
			// VARBINARY, BLOB share types; the binary ones have the
			// binary collation.
			c.kind = kBytes
			if coll, ok := collations[i]; e.IsCharacterColumn(i) && (!ok || coll != binaryCollation) {
				c.kind = kString
			} else if e.ColumnType[i] == mysql.MYSQL_TYPE_STRING && i < len(e.ColumnMeta) {
				c.pad = stringLength(e.ColumnMeta[i]) // BINARY(n)
			}
		}
		if c.kind == kInt && unsigned[i] {
			c.kind = kUint
		}
		t.cols = append(t.cols, c)
	}
	for _, p := range e.PrimaryKey {
		if int(p) < len(t.cols) {
			t.pk = append(t.pk, int(p))
		}
	}
	if len(t.pk) == 0 {
		return nil, fmt.Errorf("table %s.%s: the binlog's table map has no primary key", t.db, t.name)
	}
	return t, nil
}

// binaryCollation is the id of the binary collation (of BINARY,
// VARBINARY and BLOB columns).
const binaryCollation = 63

// realType is a column's type as the table map gives it, with the real
// type of ENUM and SET (logged as STRING).
func realType(e *replication.TableMapEvent, i int) byte {
	tp := e.ColumnType[i]
	if tp == mysql.MYSQL_TYPE_STRING && i < len(e.ColumnMeta) {
		if rt := byte(e.ColumnMeta[i] >> 8); rt == mysql.MYSQL_TYPE_ENUM || rt == mysql.MYSQL_TYPE_SET {
			return rt
		}
	}
	return tp
}

// stringLength is the byte length of a CHAR or BINARY column from its
// table-map metadata: the real type in the high byte, the length's low
// byte in the low one and its two high bits folded into the real type's
// bits 4 and 5 (inverted).
func stringLength(meta uint16) int {
	b0, b1 := byte(meta>>8), byte(meta)
	if b0&0x30 != 0x30 {
		return int(uint16(b1) | uint16((b0&0x30)^0x30)<<4)
	}
	return int(b1)
}

// appendValue appends the JSON rendering of a column value as the binlog
// (replication package) or a text-protocol result (client package) gives
// it. Both render a value the same way: a snapshot row and a change event
// of the same row state are identical.
func appendValue(dst []byte, c *column, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case int8:
		return appendInt(dst, c, int64(x)), nil
	case int16:
		return appendInt(dst, c, int64(x)), nil
	case int32:
		return appendInt(dst, c, int64(x)), nil
	case int64:
		return appendInt(dst, c, x), nil
	case int:
		return appendInt(dst, c, int64(x)), nil
	case uint64:
		if c.kind == kInt {
			return strconv.AppendInt(dst, int64(x), 10), nil
		}
		return strconv.AppendUint(dst, x, 10), nil
	case float32:
		return appendFloat(dst, float64(x), 32)
	case float64:
		if c.kind == kFloat {
			return appendFloat(dst, x, 32)
		}
		return appendFloat(dst, x, 64)
	case string:
		return appendText(dst, c, x)
	case []byte:
		return appendText(dst, c, string(x))
	}
	return dst, fmt.Errorf("column %s: unexpected value of type %T", c.name, v)
}

func appendInt(dst []byte, c *column, x int64) []byte {
	switch c.kind {
	case kUint, kBit:
		u := uint64(x)
		if c.bits > 0 && c.bits < 64 {
			u &= 1<<c.bits - 1
		}
		return strconv.AppendUint(dst, u, 10)
	case kEnum:
		if x >= 1 && int(x) <= len(c.labels) {
			return appendString(dst, c.labels[x-1])
		}
		return appendString(dst, "")
	case kSet:
		var b strings.Builder
		for i, l := range c.labels {
			if x&(1<<i) != 0 {
				if b.Len() > 0 {
					b.WriteByte(',')
				}
				b.WriteString(l)
			}
		}
		return appendString(dst, b.String())
	}
	return strconv.AppendInt(dst, x, 10)
}

func appendFloat(dst []byte, f float64, bits int) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...), nil
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits), nil
}

// appendText renders a value the client or the binlog gives as text or
// bytes.
func appendText(dst []byte, c *column, s string) ([]byte, error) {
	switch c.kind {
	case kBytes:
		b := []byte(s)
		if len(b) < c.pad {
			b = append(b, make([]byte, c.pad-len(b))...) // BINARY(n) as the binlog gives it
		}
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, b)
		return append(dst, '"'), nil
	case kInt, kUint, kYear:
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			return dst, fmt.Errorf("column %s: %q is not a number", c.name, s)
		}
		return append(dst, s...), nil
	case kFloat, kDouble:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return dst, fmt.Errorf("column %s: %q is not a number", c.name, s)
		}
		if c.kind == kFloat {
			return appendFloat(dst, f, 32)
		}
		return appendFloat(dst, f, 64)
	case kBit:
		// The text protocol sends BIT(n) as big-endian bytes.
		var u uint64
		for i := 0; i < len(s); i++ {
			u = u<<8 | uint64(s[i])
		}
		return strconv.AppendUint(dst, u, 10), nil
	}
	return appendString(dst, s), nil
}

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\':
				dst = append(dst, '\\', b)
			case b == '\n':
				dst = append(dst, '\\', 'n')
			case b == '\r':
				dst = append(dst, '\\', 'r')
			case b == '\t':
				dst = append(dst, '\\', 't')
			case b < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			default:
				dst = append(dst, b)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
