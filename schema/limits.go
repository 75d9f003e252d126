package schema

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Limits on the schemas clients send, checked before a schema is handed
// to its language's parser. hamba/avro checks each field default against
// its type, and a default of a record type is checked with the defaults of
// that record's own fields, recursively, each time it is met: a schema of
// a few kilobytes whose records have two fields of the previous record's
// type with defaults makes that check take time exponential in the
// number of records (seconds for 2.6 KB). The registry counts that work
// itself, on the schema's JSON, and refuses a schema that would take more
// than maxAvroDefaultWork steps, as it refuses one over the other limits.
const (
	// maxSchemaBytes bounds a schema's text (the HTTP API's request
	// bodies are bounded by the same size).
	maxSchemaBytes = 1 << 20
	// maxSchemaDepth bounds the nesting of JSON arrays and objects in an
	// Avro schema and the chain of nested record defaults checked.
	maxSchemaDepth = 256
	// maxAvroNamedTypes bounds the records, enums and fixed types an Avro
	// schema defines.
	maxAvroNamedTypes = 10_000
	// maxAvroDefaultWork bounds the values checked to check an Avro
	// schema's field defaults (each record, field, array item, map value
	// and scalar of a default, the nested records' own defaults included).
	maxAvroDefaultWork = 200_000
)

// checkSizeLimit refuses a schema text over maxSchemaBytes.
func checkSizeLimit(text string) error {
	if len(text) > maxSchemaBytes {
		return fmt.Errorf("the schema has %d bytes, more than the limit of %d", len(text), maxSchemaBytes)
	}
	return nil
}

// checkAvroLimits refuses an Avro schema (with the texts of its
// dependencies, whose named types it may use) over the limits above. A
// text that is not JSON passes, for the parser to report.
func checkAvroLimits(text string, deps []string) error {
	if err := checkSizeLimit(text); err != nil {
		return err
	}
	w := avroWalk{named: map[string]namedRecord{}}
	for i, t := range append(deps, text) {
		own := i == len(deps)
		if err := jsonDepth(t, maxSchemaDepth); err != nil {
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
	if w.types > maxAvroNamedTypes {
		return fmt.Errorf("the schema defines %d named types, more than the limit of %d", w.types, maxAvroNamedTypes)
	}
	w.budget = maxAvroDefaultWork
	for _, f := range w.defaults {
		w.value(f.typ, f.ns, f.def, 0)
		if w.budget < 0 {
			return fmt.Errorf("checking the schema's field defaults takes more than %d steps (records whose defaults contain records, nested %d deep or more)", maxAvroDefaultWork, w.deepest)
		}
		if w.tooDeep {
			return fmt.Errorf("the schema's field defaults nest records more than %d deep", maxSchemaDepth)
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
	if depth > maxSchemaDepth {
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
