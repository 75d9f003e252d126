package connect

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/types"
)

// rowFormat is a table's value format ('format' = 'json' | 'csv').
type rowFormat struct {
	name         string // json or csv
	prefix       string // "" or "value." or "key."
	opts         Options
	cols         []Column
	ts           TimestampFormat
	failMissing  bool
	ignoreErrors bool
}

// newRowFormat reads the format named by opts[key] (required) and its
// options.
func newRowFormat(opts Options, key string, cols []Column) (*rowFormat, error) {
	name, ok := opts[key]
	if !ok {
		return nil, fmt.Errorf("option '%s' is required: 'json' or 'csv'", key)
	}
	f := &rowFormat{name: name, prefix: strings.TrimSuffix(key, "format"), opts: opts, cols: cols}
	p := f.prefix + name + "."
	var err error
	switch name {
	case "json":
		if f.ts, err = parseTimestampFormat(opts, p+"timestamp-format"); err != nil {
			return nil, err
		}
		if f.failMissing, err = optBool(opts, p+"fail-on-missing-field", false); err != nil {
			return nil, err
		}
		if _, err = optBool(opts, p+"encode.decimal-as-plain-number", true); err != nil {
			return nil, err
		}
	case "csv":
		if _, err := newCSVCodec(cols, opts, f.prefix); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown format '%s': use 'json' or 'csv'", name)
	}
	if f.ignoreErrors, err = optBool(opts, p+"ignore-parse-errors", false); err != nil {
		return nil, err
	}
	if f.failMissing && f.ignoreErrors {
		return nil, fmt.Errorf("'%sfail-on-missing-field' and '%signore-parse-errors' cannot both be 'true'", p, p)
	}
	return f, nil
}

// metadata keys a source can fill, with the type each has.
var metadataKeys = map[string]types.Kind{
	"timestamp": types.Timestamp,
	"offset":    types.BigInt,
	"partition": types.Int,
	"topic":     types.Varchar,
	"file.path": types.Varchar,
}

func checkMetadata(cols []Column, allowed ...string) error {
	for _, c := range cols {
		if c.Metadata == "" {
			continue
		}
		if !contains(allowed, c.Metadata) {
			return fmt.Errorf("column %s: unknown metadata key '%s'%s (allowed: %s)", c.Name, c.Metadata, didYouMean(c.Metadata, allowed), quoteList(allowed))
		}
	}
	return nil
}

// rowDecoder decodes message values of a format, then fills metadata
// columns from the message.
type rowDecoder struct {
	f    *rowFormat
	json *jsonDecoder
	csv  *csvCodec
}

func (f *rowFormat) newDecoder() *rowDecoder {
	d := &rowDecoder{f: f}
	if f.name == "json" {
		d.json = newJSONDecoder(f.cols, f.failMissing)
	} else {
		d.csv, _ = newCSVCodec(f.cols, f.opts, f.prefix) // checked in newRowFormat
	}
	return d
}

func (d *rowDecoder) decodeValue(b []byte) ([]row.Value, error) {
	if d.json != nil {
		return d.json.decode(b)
	}
	return d.csv.decode(b)
}

func (d *rowDecoder) decodeMsg(m *connector.Message) (exec.Change, bool, error) {
	if len(m.Value) == 0 || isBlankLine(m.Value) {
		return exec.Change{}, false, nil
	}
	vals, err := d.decodeValue(m.Value)
	if err != nil {
		return exec.Change{}, false, err
	}
	fillMetadata(d.f.cols, vals, m)
	return exec.Change{Op: exec.Insert, Vals: vals}, true, nil
}

func isBlankLine(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

func fillMetadata(cols []Column, vals []row.Value, m *connector.Message) {
	for i, c := range cols {
		switch c.Metadata {
		case "":
		case "timestamp":
			if m.Timestamp != 0 {
				vals[i] = row.Timestamp(m.Timestamp)
			}
		case "offset":
			if m.Offset >= 0 {
				vals[i] = row.Int(m.Offset)
			}
		case "topic", "file.path":
			topic := m.Origin
			if c.Metadata == "topic" {
				if j := strings.LastIndexByte(topic, '/'); j >= 0 {
					topic = topic[:j]
				}
			}
			vals[i] = row.String(topic)
		case "partition":
			if j := strings.LastIndexByte(m.Origin, '/'); j >= 0 {
				if p, err := strconv.ParseInt(m.Origin[j+1:], 10, 32); err == nil {
					vals[i] = row.Int(p)
				}
			}
		}
	}
}

// rowEncoder writes rows in a format.
type rowEncoder struct {
	f   *rowFormat
	jo  JSONOptions
	csv *csvCodec
}

func (f *rowFormat) newEncoder(withOp bool) *rowEncoder {
	e := &rowEncoder{f: f, jo: JSONOptions{Timestamps: f.ts, Op: withOp}}
	if f.name == "csv" {
		e.csv, _ = newCSVCodec(f.cols, f.opts, f.prefix)
	}
	return e
}

func (e *rowEncoder) appendRow(dst []byte, c exec.Change) []byte {
	if e.csv != nil {
		if e.jo.Op {
			dst = append(dst, c.Op.String()...)
			dst = append(dst, e.csv.delim)
		}
		return e.csv.appendRow(dst, c.Vals)
	}
	return appendJSONOp(dst, e.f.cols, c.Vals, e.jo, c.Op)
}

// lineEncoder encodes each row as a line value (append-only sinks).
type lineEncoder struct{ enc *rowEncoder }

func (l lineEncoder) encodeMsg(buf []byte, c exec.Change) ([]byte, int, bool, bool, bool) {
	return l.enc.appendRow(buf, c), 0, false, true, true
}
