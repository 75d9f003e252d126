// Package avrolimit bounds the work of parsing an Avro schema with
// hamba/avro, for schemas that come from outside (a registry's clients,
// the header of an Avro container file, a registry a pipeline reads).
//
// hamba/avro checks each field default against its type, and a default
// of a record type is checked with the defaults of that record's own
// fields, recursively, each time it is met: a schema of a few kilobytes
// whose records have two fields of the previous record's type with
// defaults makes that check take time exponential in the number of
// records (2.3 s for 2.6 KB on the 2-core development machine, doubling
// with each record). Check counts that work itself, on the schema's JSON,
// stopping at MaxDefaultWork steps, and refuses a schema over it or over
// the other limits before the library sees it.
package avrolimit

import (
	"encoding/json"
	"fmt"
	"strings"
)

// The limits.
const (
	// MaxBytes bounds a schema's text.
	MaxBytes = 1 << 20
	// MaxDepth bounds the nesting of JSON arrays and objects in a schema
	// and the chain of nested record defaults checked.
	MaxDepth = 256
	// MaxNamedTypes bounds the records, enums and fixed types a schema
	// defines (with those of the texts it depends on).
	MaxNamedTypes = 10_000
	// MaxDefaultWork bounds the values checked to check a schema's field
	// defaults (each record, field, array item, map value and scalar of a
	// default, the nested records' own defaults included).
	MaxDefaultWork = 200_000
)

// Check refuses an Avro schema (with the texts of its
// dependencies, whose named types it may use) over the limits above. A
// text that is not JSON passes, for the parser to report.
func Check(text string, deps []string) error {
	if len(text) > MaxBytes {
		return fmt.Errorf("the schema has %d bytes, more than the limit of %d", len(text), MaxBytes)
	}
	w := avroWalk{named: map[string]namedRecord{}}
	for i, t := range append(deps, text) {
		own := i == len(deps)
		if err := jsonDepth(t, MaxDepth); err != nil {
			if own {
				return err
			}
			continue
		}
		var v any
		if jsonUnmarshalNumber(t, &v) != nil {
			continue
		}
		before := len(w.defaults)
		w.collect(v, "")
		if !own {
			// A dependency's defaults were checked when it was parsed.
			w.defaults = w.defaults[:before]
		}
	}
	if w.types > MaxNamedTypes {
		return fmt.Errorf("the schema defines %d named types, more than the limit of %d", w.types, MaxNamedTypes)
	}
	w.budget = MaxDefaultWork
	for _, f := range w.defaults {
		w.value(f.typ, f.ns, f.def, 0)
		if w.budget < 0 {
			return fmt.Errorf("checking the schema's field defaults takes more than %d steps (records whose defaults contain records, nested %d deep or more)", MaxDefaultWork, w.deepest)
		}
		if w.tooDeep {
			return fmt.Errorf("the schema's field defaults nest records more than %d deep", MaxDepth)
		}
	}
	return nil
}

// jsonDepth reports an error when text nests arrays and objects deeper
// than max (a text that is not JSON passes).
func jsonDepth(text string, max int) error {
	d := json.NewDecoder(strings.NewReader(text))
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			return nil
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			if depth > max {
				return fmt.Errorf("the schema nests JSON objects and arrays more than %d deep", max)
			}
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}

// avroWalk finds the named types and the field defaults of Avro schemas
// in their JSON form, then counts the work of checking the defaults as
// hamba/avro does it.
type avroWalk struct {
	named    map[string]namedRecord // by full name
	types    int
	defaults []fieldDefault
	budget   int
	deepest  int
	tooDeep  bool
}

// namedRecord is a record's definition and the namespace of the names
// inside it.
type namedRecord struct {
	def map[string]any
	ns  string
}

type fieldDefault struct {
	typ any
	ns  string
	def any
}

var avroPrimitives = map[string]bool{
	"null": true, "boolean": true, "int": true, "long": true,
	"float": true, "double": true, "bytes": true, "string": true,
}

// nameOf returns the full name of a named type's definition and its
// namespace for the names inside it.
func nameOf(def map[string]any, ns string) (full, inner string) {
	name, _ := def["name"].(string)
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name, name[:i]
	}
	if n, ok := def["namespace"].(string); ok {
		ns = n
	}
	if ns == "" {
		return name, ""
	}
	return ns + "." + name, ns
}

// collect records the named types and field defaults of the schema t,
// read in namespace ns.
func (w *avroWalk) collect(t any, ns string) {
	switch t := t.(type) {
	case []any:
		for _, b := range t {
			w.collect(b, ns)
		}
	case map[string]any:
		typ := t["type"]
		switch typ {
		case "record", "error":
			w.types++
			full, inner := nameOf(t, ns)
			w.named[full] = namedRecord{def: t, ns: inner}
			fields, _ := t["fields"].([]any)
			for _, f := range fields {
				fm, ok := f.(map[string]any)
				if !ok {
					continue
				}
				if def, ok := fm["default"]; ok {
					w.defaults = append(w.defaults, fieldDefault{typ: fm["type"], ns: inner, def: def})
				}
				w.collect(fm["type"], inner)
			}
		case "enum", "fixed":
			w.types++
		case "array":
			w.collect(t["items"], ns)
		case "map":
			w.collect(t["values"], ns)
		default:
			if _, ok := typ.(string); !ok {
				w.collect(typ, ns)
			}
		}
	}
}

// resolve returns the record a name stands for in namespace ns, if any.
func (w *avroWalk) resolve(name, ns string) (namedRecord, bool) {
	if !strings.Contains(name, ".") && ns != "" {
		if r, ok := w.named[ns+"."+name]; ok {
			return r, true
		}
	}
	r, ok := w.named[name]
	return r, ok
}

// value counts the steps of checking the default v against type t, as
// hamba/avro takes them: a record's fields missing from v are checked
// with their own defaults, a union's value against its first branch.
func (w *avroWalk) value(t any, ns string, v any, depth int) {
	w.budget--
	if w.budget < 0 || w.tooDeep {
		return
	}
	if depth > w.deepest {
		w.deepest = depth
	}
	if depth > MaxDepth {
		w.tooDeep = true
		return
	}
	switch t := t.(type) {
	case string:
		if avroPrimitives[t] {
			return
		}
		if r, ok := w.resolve(t, ns); ok {
			w.record(r.def, r.ns, v, depth)
		}
	case []any:
		if len(t) > 0 {
			w.value(t[0], ns, v, depth)
		}
	case map[string]any:
		switch typ := t["type"]; typ {
		case "record", "error":
			_, inner := nameOf(t, ns)
			w.record(t, inner, v, depth)
		case "array":
			items, _ := v.([]any)
			for _, e := range items {
				w.value(t["items"], ns, e, depth+1)
			}
		case "map":
			m, _ := v.(map[string]any)
			for _, e := range m {
				w.value(t["values"], ns, e, depth+1)
			}
		default:
			if _, ok := typ.(string); !ok {
				w.value(typ, ns, v, depth)
			}
		}
	}
}

func (w *avroWalk) record(r map[string]any, ns string, v any, depth int) {
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	fields, _ := r["fields"].([]any)
	for _, f := range fields {
		fm, ok := f.(map[string]any)
		if !ok {
			continue
		}
		name, _ := fm["name"].(string)
		fv, ok := m[name]
		if !ok {
			fv = fm["default"]
		}
		w.value(fm["type"], ns, fv, depth+1)
	}
}

// jsonUnmarshalNumber decodes text into v keeping numbers as json.Number.
func jsonUnmarshalNumber(text string, v *any) error {
	d := json.NewDecoder(strings.NewReader(text))
	d.UseNumber()
	return d.Decode(v)
}

// DefaultWork returns the steps of checking text's field defaults as
// hamba/avro takes them, counting past MaxDefaultWork (for tests: it
// takes as long as the library would).
func DefaultWork(text string) int {
	w := avroWalk{named: map[string]namedRecord{}}
	var v any
	if jsonUnmarshalNumber(text, &v) != nil {
		return 0
	}
	w.collect(v, "")
	w.budget = 1 << 40
	for _, f := range w.defaults {
		w.value(f.typ, f.ns, f.def, 0)
	}
	return 1<<40 - w.budget
}

// NestedDefaults is an Avro schema of n+1 records where record i has k
// fields of record i-1's type, each with the default {}: checking the
// defaults as hamba/avro does takes about k^n steps. With inline the
// first field's type is defined in place (nesting the JSON n deep), else
// the records are the branches of a top-level union, named in order (the
// JSON stays shallow). For tests.
func NestedDefaults(n, k int, inline bool) string {
	t0 := `{"type":"record","name":"T0","fields":[{"name":"x","type":"int","default":0}]}`
	if !inline {
		defs := []string{t0}
		for i := 1; i <= n; i++ {
			var fs []string
			for j := 0; j < k; j++ {
				fs = append(fs, fmt.Sprintf(`{"name":"f%d","type":"T%d","default":{}}`, j, i-1))
			}
			defs = append(defs, fmt.Sprintf(`{"type":"record","name":"T%d","fields":[%s]}`, i, strings.Join(fs, ",")))
		}
		return "[" + strings.Join(defs, ",") + "]"
	}
	s := t0
	for i := 1; i <= n; i++ {
		fs := []string{fmt.Sprintf(`{"name":"f0","type":%s,"default":{}}`, s)}
		for j := 1; j < k; j++ {
			fs = append(fs, fmt.Sprintf(`{"name":"f%d","type":"T%d","default":{}}`, j, i-1))
		}
		s = fmt.Sprintf(`{"type":"record","name":"T%d","fields":[%s]}`, i, strings.Join(fs, ","))
	}
	return s
}
