package row

import (
	"errors"
	"fmt"
	"strings"
)

// Field is one named, typed position of a Schema. A field of KindNull has
// no declared type: it may hold values of any kind (its kind is then only
// known from the records, as the postgres and parquet sinks do).
type Field struct {
	Name string
	Kind Kind
}

// Schema is the ordered list of fields of the rows at one point of a
// pipeline. It is immutable once made and safe for concurrent use.
type Schema struct {
	fields []Field
	index  map[string]int
}

// ErrDuplicateField is returned by NewSchema when two fields share a name.
var ErrDuplicateField = errors.New("duplicate field")

// NewSchema returns a schema of fields, which must have distinct,
// non-empty names.
func NewSchema(fields ...Field) (*Schema, error) {
	s := &Schema{fields: append([]Field(nil), fields...), index: make(map[string]int, len(fields))}
	for i, f := range fields {
		if f.Name == "" {
			return nil, fmt.Errorf("schema: field %d has no name", i)
		}
		if _, dup := s.index[f.Name]; dup {
			return nil, fmt.Errorf("schema: %w %q", ErrDuplicateField, f.Name)
		}
		s.index[f.Name] = i
	}
	return s, nil
}

// MustSchema is NewSchema that panics on error, for fixed schemas in code
// and tests.
func MustSchema(fields ...Field) *Schema {
	s, err := NewSchema(fields...)
	if err != nil {
		panic(err)
	}
	return s
}

// Untyped returns a schema of the named fields, all of KindNull.
func Untyped(names ...string) (*Schema, error) {
	fs := make([]Field, len(names))
	for i, n := range names {
		fs[i] = Field{Name: n}
	}
	return NewSchema(fs...)
}

// Len returns the number of fields.
func (s *Schema) Len() int { return len(s.fields) }

// Field returns field i.
func (s *Schema) Field(i int) Field { return s.fields[i] }

// Fields returns a copy of the fields.
func (s *Schema) Fields() []Field { return append([]Field(nil), s.fields...) }

// Names returns the field names in order.
func (s *Schema) Names() []string {
	out := make([]string, len(s.fields))
	for i, f := range s.fields {
		out[i] = f.Name
	}
	return out
}

// Index returns the position of the field named name.
func (s *Schema) Index(name string) (int, bool) {
	i, ok := s.index[name]
	return i, ok
}

// String returns the schema as "name type, ...".
func (s *Schema) String() string {
	var b strings.Builder
	for i, f := range s.fields {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f.Name)
		if f.Kind != KindNull {
			b.WriteByte(' ')
			b.WriteString(f.Kind.String())
		}
	}
	return b.String()
}
