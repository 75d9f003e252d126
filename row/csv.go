package row

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrCSV is wrapped by every CSV decoding error.
var ErrCSV = errors.New("csv")

// CSVDecoder decodes single CSV lines into rows of a schema by column
// name. Quoted cells ("a,b", "say ""hi""") are supported within a line; a
// cell spanning lines is not (sources split input at newlines). Cells of
// undeclared fields are typed by their text: empty is null, true/false a
// bool, a decimal integer (without a leading zero) an int, a number a
// float, anything else a string. A CSVDecoder is not safe for concurrent
// use.
type CSVDecoder struct {
	schema *Schema
	keep   bool
	comma  byte
	// col[i] is the schema position of column i, or -1.
	col   []int
	names []string
	arena Arena
	cells [][]byte
	buf   []byte
	rest  []byte
}

// NewCSVDecoder returns a decoder of rows of s from lines separated by
// comma (0 means ','). Columns are named by SetHeader; unnamed columns are
// not decoded. keepRest keeps the cells of columns that are not fields of
// s in Row.Rest as JSON members.
func NewCSVDecoder(s *Schema, comma byte, keepRest bool) *CSVDecoder {
	if comma == 0 {
		comma = ','
	}
	return &CSVDecoder{schema: s, comma: comma, keep: keepRest}
}

// SetHeader names the columns from a header line.
func (d *CSVDecoder) SetHeader(line []byte) error {
	cells, _, err := splitCSV(line, d.comma, nil, nil)
	if err != nil {
		return fmt.Errorf("header: %w", err)
	}
	names := make([]string, len(cells))
	for i, c := range cells {
		names[i] = string(c)
	}
	return d.SetColumns(names)
}

// SetColumns names the columns.
func (d *CSVDecoder) SetColumns(names []string) error {
	d.col = make([]int, len(names))
	d.names = append(d.names[:0], names...)
	seen := make(map[string]bool, len(names))
	for i, n := range names {
		if seen[n] {
			return fmt.Errorf("%w: column %q appears twice in the header", ErrCSV, n)
		}
		seen[n] = true
		d.col[i] = -1
		if j, ok := d.schema.index[n]; ok {
			d.col[i] = j
		}
	}
	return nil
}

// HasHeader reports whether columns have been named.
func (d *CSVDecoder) HasHeader() bool { return d.col != nil }

// Decode decodes one line (without its newline).
func (d *CSVDecoder) Decode(line []byte) (Row, error) {
	if d.col == nil {
		return Row{}, fmt.Errorf("%w: no header", ErrCSV)
	}
	var err error
	d.cells, d.buf, err = splitCSV(line, d.comma, d.cells[:0], d.buf[:0])
	if err != nil {
		return Row{}, err
	}
	if len(d.cells) != len(d.col) {
		return Row{}, fmt.Errorf("%w: %d cells, the header has %d columns", ErrCSV, len(d.cells), len(d.col))
	}
	r := Row{Vals: d.arena.Values(d.schema.Len())}
	rest := d.rest[:0]
	for i, c := range d.cells {
		j := d.col[i]
		if j < 0 {
			if d.keep {
				if len(rest) > 0 {
					rest = append(rest, ',')
				}
				rest = AppendQuoted(rest, d.names[i])
				rest = append(rest, ':')
				rest = inferCell(c, &d.arena).AppendJSON(rest)
			}
			continue
		}
		v := inferCell(c, &d.arena)
		if k := d.schema.fields[j].Kind; k != KindNull && v.kind != k {
			if k == KindString && len(c) > 0 {
				v = String(d.arena.String(c))
			} else if v, err = Coerce(v, k); err != nil {
				return Row{}, fmt.Errorf("%w: column %q: %w", ErrCSV, d.names[i], err)
			}
		}
		r.Vals[j] = v
	}
	if len(rest) > 0 {
		r.Rest = d.arena.Bytes(rest)
	}
	d.rest = rest[:0]
	return r, nil
}

// inferCell types a cell by its text.
func inferCell(c []byte, a *Arena) Value {
	if len(c) == 0 {
		return Null()
	}
	switch string(c) {
	case "true":
		return Bool(true)
	case "false":
		return Bool(false)
	}
	if looksNumeric(c) {
		if c[0] != '0' || len(c) == 1 || c[1] == '.' {
			if i, err := strconv.ParseInt(string(c), 10, 64); err == nil {
				return Int(i)
			}
		}
		if c[0] != '0' || len(c) == 1 || c[1] == '.' || c[1] == 'e' || c[1] == 'E' {
			if f, err := strconv.ParseFloat(string(c), 64); err == nil && !isNonFinite(f) {
				return Float(f)
			}
		}
	} else if c[0] == '-' && len(c) > 1 && looksNumeric(c[1:]) && (c[1] != '0' || len(c) == 2 || c[2] == '.') {
		if i, err := strconv.ParseInt(string(c), 10, 64); err == nil {
			return Int(i)
		}
		if f, err := strconv.ParseFloat(string(c), 64); err == nil && !isNonFinite(f) {
			return Float(f)
		}
	}
	return String(a.String(c))
}

func isNonFinite(f float64) bool { return f-f != 0 }

// looksNumeric reports whether c is made of digits, '.', 'e', 'E', '+'
// and '-' and starts with a digit.
func looksNumeric(c []byte) bool {
	if len(c) == 0 || c[0] < '0' || c[0] > '9' {
		return false
	}
	for _, b := range c {
		if !(b >= '0' && b <= '9' || b == '.' || b == 'e' || b == 'E' || b == '+' || b == '-') {
			return false
		}
	}
	return true
}

func parseFloat(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err == nil && isNonFinite(f) {
		return 0, strconv.ErrSyntax
	}
	return f, err
}

func parseInt(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }

// splitCSV splits line into cells. Quoted cells are unquoted into buf;
// returned cells point into line or buf.
func splitCSV(line []byte, comma byte, cells [][]byte, buf []byte) ([][]byte, []byte, error) {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	// Cells point into buf, which must not move once pointed into:
	// reserve enough room up front.
	if cap(buf) < len(line) {
		buf = make([]byte, 0, len(line)+64)
	}
	i := 0
	for {
		if i < len(line) && line[i] == '"' {
			start := len(buf)
			i++
			for {
				if i >= len(line) {
					return cells, buf, fmt.Errorf("%w: unterminated quoted cell", ErrCSV)
				}
				c := line[i]
				if c == '"' {
					if i+1 < len(line) && line[i+1] == '"' {
						buf = append(buf, '"')
						i += 2
						continue
					}
					i++
					break
				}
				buf = append(buf, c)
				i++
			}
			cells = append(cells, buf[start:len(buf):len(buf)])
			if i == len(line) {
				return cells, buf, nil
			}
			if line[i] != comma {
				return cells, buf, fmt.Errorf("%w: unexpected %q after a quoted cell", ErrCSV, line[i])
			}
			i++
			continue
		}
		j := i
		for j < len(line) && line[j] != comma {
			j++
		}
		cells = append(cells, line[i:j:j])
		if j == len(line) {
			return cells, buf, nil
		}
		i = j + 1
	}
}
