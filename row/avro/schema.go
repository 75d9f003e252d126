package avro

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	havro "github.com/hamba/avro/v2"

	"github.com/sluicehq/sluice/internal/avrolimit"
	"github.com/sluicehq/sluice/row"
)

// Schema is a parsed Avro schema whose top level is a record. It is
// immutable and safe for concurrent use.
type Schema struct {
	rec  *havro.RecordSchema
	text string
}

// ErrSchema is wrapped by errors about a schema itself (not valid Avro, or
// not a record).
var ErrSchema = errors.New("avro schema")

// Parse parses the JSON text of an Avro schema, which must be a record.
// Named types are resolved within the text only: two schemas that define
// the same name (two versions of one record) do not interfere.
//
// A schema over the limits of internal/avrolimit is refused before it is
// parsed: hamba/avro's check of field defaults takes time exponential in
// the size of a crafted schema, and schemas come from container files
// and registries.
func Parse(text string) (*Schema, error) {
	if err := avrolimit.Check(text, nil); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSchema, err)
	}
	s, err := parseText(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSchema, err)
	}
	s = deref(s)
	rec, ok := s.(*havro.RecordSchema)
	if !ok {
		return nil, fmt.Errorf("%w: the top level is %s, not a record", ErrSchema, s.Type())
	}
	return &Schema{rec: rec, text: text}, nil
}

// parseText parses a schema text with hamba/avro in a cache of its own.
// The library panics on some invalid schemas (a union of no types with a
// default); schemas come from files and clients, so that is an error.
func parseText(text string) (s havro.Schema, err error) {
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("invalid schema (the parser failed: %v)", p)
		}
	}()
	return havro.ParseWithCache(text, "", &havro.SchemaCache{})
}

// MustParse is Parse that panics, for fixed schemas in code and tests.
func MustParse(text string) *Schema {
	s, err := Parse(text)
	if err != nil {
		panic(err)
	}
	return s
}

// Text returns the schema's JSON text as given to Parse.
func (s *Schema) Text() string { return s.text }

// Name returns the record's full name (namespace.name).
func (s *Schema) Name() string { return s.rec.FullName() }

// Fingerprint returns the SHA-256 fingerprint of the schema's parsing
// canonical form: equal for schemas that read and write alike.
func (s *Schema) Fingerprint() [32]byte { return s.rec.Fingerprint() }

// Field is one top-level field of a schema with the row kind its values
// decode to (KindNull: values of several kinds, a union of them).
type Field struct {
	Name string
	Kind row.Kind
	// Nullable says the field may be null (a union with null).
	Nullable bool
}

// Fields returns the record's top-level fields in order.
func (s *Schema) Fields() []Field {
	out := make([]Field, 0, len(s.rec.Fields()))
	for _, f := range s.rec.Fields() {
		k, null := kindOf(f.Type(), false)
		out = append(out, Field{Name: f.Name(), Kind: k, Nullable: null})
	}
	return out
}

// Field returns the top-level field named name (or with that alias).
func (s *Schema) Field(name string) (Field, bool) {
	for _, f := range s.rec.Fields() {
		if f.Name() == name || contains(f.Aliases(), name) {
			k, null := kindOf(f.Type(), false)
			return Field{Name: f.Name(), Kind: k, Nullable: null}, true
		}
	}
	return Field{}, false
}

// kindOf returns the row kind of values of t, with decimalString deciding
// decimals, and whether t admits null.
func kindOf(t havro.Schema, decimalString bool) (row.Kind, bool) {
	t = deref(t)
	switch t.Type() {
	case havro.Null:
		return row.KindNull, true
	case havro.Boolean:
		return row.KindBool, false
	case havro.Int, havro.Long:
		if l := logicalOf(t); l == havro.Date || isTimestamp(l) {
			return row.KindTimestamp, false
		}
		return row.KindInt, false
	case havro.Float, havro.Double:
		return row.KindFloat, false
	case havro.Bytes, havro.Fixed:
		if logicalOf(t) == havro.Decimal && !decimalString {
			return row.KindFloat, false
		}
		return row.KindString, false
	case havro.String, havro.Enum:
		return row.KindString, false
	case havro.Record, havro.Array, havro.Map:
		return row.KindJSON, false
	case havro.Union:
		kind, null, first := row.KindNull, false, true
		for _, b := range t.(*havro.UnionSchema).Types() {
			k, n := kindOf(b, decimalString)
			if n && k == row.KindNull {
				null = true
				continue
			}
			if first {
				kind, first = k, false
			} else if k != kind {
				kind = row.KindNull
			}
		}
		return kind, null
	}
	return row.KindNull, true
}

func deref(s havro.Schema) havro.Schema {
	if r, ok := s.(*havro.RefSchema); ok {
		return r.Schema()
	}
	return s
}

// Logical types of Avro 1.12 that hamba/avro does not parse (it keeps
// their logicalType as a property).
const (
	timestampNanos      havro.LogicalType = "timestamp-nanos"
	localTimestampNanos havro.LogicalType = "local-timestamp-nanos"
)

// logicalOf returns the logical type of s, or "" when s has none or one
// its underlying type cannot hold (which the spec says to ignore): also
// the ones hamba/avro leaves as properties, timestamp-nanos and
// local-timestamp-nanos on a long and uuid on a fixed of 16 bytes.
func logicalOf(s havro.Schema) havro.LogicalType {
	l, ok := s.(havro.LogicalTypeSchema)
	if !ok {
		return ""
	}
	if l.Logical() != nil {
		return l.Logical().Type()
	}
	p, ok := s.(havro.PropertySchema)
	if !ok {
		return ""
	}
	name, _ := p.Prop("logicalType").(string)
	switch lt := havro.LogicalType(name); {
	case (lt == timestampNanos || lt == localTimestampNanos) && s.Type() == havro.Long:
		return lt
	case lt == havro.UUID && s.Type() == havro.Fixed && s.(*havro.FixedSchema).Size() == 16:
		return lt
	}
	return ""
}

// isTimestamp reports whether l is one of the logical types that hold an
// instant or a local date-time (read as row timestamps).
func isTimestamp(l havro.LogicalType) bool {
	switch l {
	case havro.TimestampMillis, havro.TimestampMicros, timestampNanos,
		havro.LocalTimestampMillis, havro.LocalTimestampMicros, localTimestampNanos:
		return true
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Derive returns a writer schema for rows of rs: a record named name
// (namespace.Name allowed) whose fields are rs's in order, each a union
// of null and the type of its kind, defaulting to null. A field of
// undeclared kind (KindNull) is a union of null, boolean, long, double
// and string; a json field is a string holding the JSON text; a timestamp
// a long with logical type timestamp-millis.
func Derive(rs *row.Schema, name string) (*Schema, error) {
	type jfield struct {
		Name    string `json:"name"`
		Type    any    `json:"type"`
		Default any    `json:"default"`
	}
	type jrecord struct {
		Type      string   `json:"type"`
		Name      string   `json:"name"`
		Namespace string   `json:"namespace,omitempty"`
		Fields    []jfield `json:"fields"`
	}
	rec := jrecord{Type: "record", Name: name, Fields: []jfield{}}
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		rec.Namespace, rec.Name = name[:i], name[i+1:]
	}
	for _, f := range rs.Fields() {
		var t any
		switch f.Kind {
		case row.KindBool:
			t = []any{"null", "boolean"}
		case row.KindInt:
			t = []any{"null", "long"}
		case row.KindFloat:
			t = []any{"null", "double"}
		case row.KindString, row.KindJSON:
			t = []any{"null", "string"}
		case row.KindTimestamp:
			t = []any{"null", map[string]string{"type": "long", "logicalType": "timestamp-millis"}}
		default:
			t = []any{"null", "boolean", "long", "double", "string"}
		}
		rec.Fields = append(rec.Fields, jfield{Name: f.Name, Type: t, Default: nil})
	}
	text, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSchema, err)
	}
	return Parse(string(text))
}

// Confluent wire format.

// MagicByte starts every payload of the Confluent wire format.
const MagicByte = 0

// HeaderLen is the length of the Confluent wire-format header.
const HeaderLen = 5

// Errors of SplitHeader.
var (
	ErrShort = errors.New("shorter than the 5-byte schema registry header")
	ErrMagic = errors.New("wrong magic byte")
)

// AppendHeader appends the Confluent header for schema id to dst.
func AppendHeader(dst []byte, id uint32) []byte {
	return binary.BigEndian.AppendUint32(append(dst, MagicByte), id)
}

// SplitHeader returns the schema id and the payload of b.
func SplitHeader(b []byte) (uint32, []byte, error) {
	if len(b) < HeaderLen {
		return 0, nil, fmt.Errorf("avro: %w (%d bytes)", ErrShort, len(b))
	}
	if b[0] != MagicByte {
		return 0, nil, fmt.Errorf("avro: %w %#x (want 0: not the schema registry wire format)", ErrMagic, b[0])
	}
	return binary.BigEndian.Uint32(b[1:5]), b[HeaderLen:], nil
}
