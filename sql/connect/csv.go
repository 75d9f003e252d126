package connect

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/connector/file"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/types"
)

// csvCodec reads and writes CSV lines by column position (no header
// line), RFC 4180 quoting.
type csvCodec struct {
	cols       []Column
	delim      byte
	nullLit    string
	hasNullLit bool
	ts         TimestampFormat

	cells [][]byte
	buf   []byte
	arena row.Arena
}

func newCSVCodec(cols []Column, opts Options, prefix string) (*csvCodec, error) {
	c := &csvCodec{cols: cols, delim: ',', ts: SQLTimestamp}
	if d, ok := opts[prefix+"csv.field-delimiter"]; ok {
		switch {
		case d == `\t`:
			c.delim = '\t'
		case len(d) == 1 && d[0] != '"' && d[0] != '\n' && d[0] != '\r':
			c.delim = d[0]
		default:
			return nil, fmt.Errorf("option '%scsv.field-delimiter' = '%s' must be one character other than a quote or a line break", prefix, d)
		}
	}
	c.nullLit, c.hasNullLit = opts[prefix+"csv.null-literal"]
	if _, ok := opts[prefix+"csv.timestamp-format"]; ok {
		ts, err := parseTimestampFormat(opts, prefix+"csv.timestamp-format")
		if err != nil {
			return nil, err
		}
		c.ts = ts
	}
	return c, nil
}

var errCSVQuote = errors.New("unterminated quoted field")

// split cuts line into cells, unquoting quoted ones. The cells are valid
// until the next call.
func (c *csvCodec) split(line []byte) ([][]byte, []bool, error) {
	c.cells = c.cells[:0]
	c.buf = c.buf[:0]
	var quotedFlags []bool
	i := 0
	for {
		if i < len(line) && line[i] == '"' {
			start := len(c.buf)
			i++
			closed := false
			for i < len(line) {
				if line[i] == '"' {
					if i+1 < len(line) && line[i+1] == '"' {
						c.buf = append(c.buf, '"')
						i += 2
						continue
					}
					i++
					closed = true
					break
				}
				c.buf = append(c.buf, line[i])
				i++
			}
			if !closed {
				return nil, nil, errCSVQuote
			}
			if i < len(line) && line[i] != c.delim {
				return nil, nil, fmt.Errorf("unexpected %q after a quoted field", line[i])
			}
			// Cells point into buf: record offsets, resolved below.
			c.cells = append(c.cells, c.buf[start:len(c.buf):len(c.buf)])
			quotedFlags = append(quotedFlags, true)
		} else {
			j := i
			for j < len(line) && line[j] != c.delim {
				j++
			}
			c.cells = append(c.cells, line[i:j:j])
			quotedFlags = append(quotedFlags, false)
			i = j
		}
		if i >= len(line) {
			break
		}
		i++ // the delimiter
	}
	return c.cells, quotedFlags, nil
}

// decode reads one line into a new value slice.
func (c *csvCodec) decode(line []byte) ([]row.Value, error) {
	// buf may grow while splitting and invalidate earlier quoted cells:
	// reserve enough up front.
	if cap(c.buf) < len(line) {
		c.buf = make([]byte, 0, len(line))
	}
	cells, quoted, err := c.split(line)
	if err != nil {
		return nil, err
	}
	phys := 0
	for _, col := range c.cols {
		if col.Metadata == "" {
			phys++
		}
	}
	if len(cells) != phys {
		return nil, fmt.Errorf("%d fields, want %d (%s)", len(cells), phys, colNames(c.cols))
	}
	vals := c.arena.Values(len(c.cols))
	k := 0
	for i, col := range c.cols {
		if col.Metadata != "" {
			continue
		}
		cell, q := cells[k], quoted[k]
		k++
		if !q && (c.hasNullLit && string(cell) == c.nullLit || len(cell) == 0) {
			continue
		}
		if col.Type.IsString() {
			vals[i] = row.String(c.arena.String(validUTF8(cell)))
			continue
		}
		v, err := parseText(string(cell), col.Type)
		if err != nil {
			return nil, fmt.Errorf("field %s (%s): %w", col.Name, col.Type, err)
		}
		vals[i] = v
	}
	return vals, nil
}

// appendRow writes vals as one CSV line without the line break.
func (c *csvCodec) appendRow(dst []byte, vals []row.Value) []byte {
	first := true
	for i, col := range c.cols {
		if col.Metadata != "" {
			continue
		}
		if !first {
			dst = append(dst, c.delim)
		}
		first = false
		var v row.Value
		if i < len(vals) {
			v = vals[i]
		}
		if v.IsNull() {
			if c.hasNullLit {
				dst = c.appendCell(dst, []byte(c.nullLit))
			}
			continue
		}
		c.buf = appendText(c.buf[:0], col.Type, v, c.ts)
		dst = c.appendCell(dst, c.buf)
	}
	return dst
}

func (c *csvCodec) appendCell(dst, cell []byte) []byte {
	needs := len(cell) == 0 // "" is the empty string, an empty cell NULL
	for _, b := range cell {
		if b == c.delim || b == '"' || b == '\n' || b == '\r' {
			needs = true
			break
		}
	}
	if !needs {
		return append(dst, cell...)
	}
	dst = append(dst, '"')
	for _, b := range cell {
		if b == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, b)
	}
	return append(dst, '"')
}

// appendText writes a non-null value as text: the form parseText reads.
func appendText(dst []byte, t types.Type, v row.Value, ts TimestampFormat) []byte {
	switch {
	case t.Kind == types.Decimal && v.Kind() == row.KindInt:
		return appendDecimal(dst, v.AsInt(), t.Scale)
	case t.IsTimestamp() && v.Kind() == row.KindTimestamp:
		switch ts {
		case EpochMillis:
			return strconv.AppendInt(dst, v.AsInt(), 10)
		case ISOTimestamp:
			return appendTimestamp(dst, v.AsInt(), true, t.Kind == types.TimestampLTZ)
		}
		return appendTimestamp(dst, v.AsInt(), false, false)
	case t.Kind == types.Date && v.Kind() == row.KindInt:
		return appendDate(dst, v.AsInt())
	case t.Kind == types.Time && v.Kind() == row.KindInt:
		return appendTime(dst, v.AsInt())
	}
	switch v.Kind() {
	case row.KindBool:
		return strconv.AppendBool(dst, v.AsBool())
	case row.KindInt, row.KindTimestamp:
		return strconv.AppendInt(dst, v.AsInt(), 10)
	case row.KindFloat:
		f := v.AsFloat()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return strconv.AppendFloat(dst, f, 'g', -1, 64)
		}
		return appendFloat(dst, f)
	}
	return append(dst, v.AsString()...)
}

// csvFraming reads the records of CSV files: lines, joined while a
// quoted field is open, so that fields holding line breaks (which the
// writer quotes) read back whole.
type csvFraming struct{}

func (csvFraming) Open(name string, r io.Reader) (file.RecordReader, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	return &csvRecords{r: br, name: name}, nil
}

type csvRecords struct {
	r    *bufio.Reader
	name string
}

// maxCSVRecord bounds one record, as the line source bounds a line.
const maxCSVRecord = 16 << 20

func (c *csvRecords) Next() ([]byte, []connector.Header, error) {
	var rec []byte
	open := false
	for {
		line, err := c.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			rec = append(rec, line...)
			open = quotesOpen(line, open)
			if len(rec) > maxCSVRecord {
				return nil, nil, fmt.Errorf("%s: a CSV record longer than %d bytes", c.name, maxCSVRecord)
			}
			continue
		}
		rec = append(rec, line...)
		open = quotesOpen(line, open)
		if err != nil {
			if errors.Is(err, io.EOF) && len(rec) > 0 {
				return trimEOL(rec), nil, nil
			}
			return nil, nil, err
		}
		if !open {
			return trimEOL(rec), nil, nil
		}
		if len(rec) > maxCSVRecord {
			return nil, nil, fmt.Errorf("%s: a CSV record longer than %d bytes (an unterminated quote?)", c.name, maxCSVRecord)
		}
	}
}

// quotesOpen returns whether a quoted field is open after b, given
// whether one was open before it (each '"' toggles; a doubled quote
// toggles twice).
func quotesOpen(b []byte, open bool) bool {
	for _, c := range b {
		if c == '"' {
			open = !open
		}
	}
	return open
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}
