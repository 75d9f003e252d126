package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"
)

// Avro schemas are parsed with github.com/hamba/avro/v2 (the maintained Go
// implementation that the pipeline's Avro format uses too), always with a
// fresh SchemaCache: the library's default cache is process-wide, and a
// named type of one subject must not leak into another.

type avroSchema struct {
	s     avro.Schema
	canon string
}

// parseAvroText parses text into cache with hamba/avro, turning the
// library's panics on some invalid schemas (a union of no types with a
// default) into errors: the text is a client's.
func parseAvroText(text string, cache *avro.SchemaCache) (s avro.Schema, err error) {
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("invalid schema (the parser failed: %v)", p)
		}
	}()
	return avro.ParseWithCache(text, "", cache)
}

func parseAvro(text string, deps []dependency) (*avroSchema, error) {
	cache := &avro.SchemaCache{}
	for _, d := range deps {
		if d.schema.Type != Avro && d.schema.Type != "" {
			return nil, fmt.Errorf("reference %q is a %s schema, not AVRO", d.name, d.schema.Type)
		}
		if _, err := parseAvroText(d.schema.Text, cache); err != nil {
			return nil, fmt.Errorf("reference %q: %w", d.name, err)
		}
	}
	s, err := parseAvroText(text, cache)
	if err != nil {
		return nil, err
	}
	// Identity: the library's full rendering of the parsed schema (names
	// qualified, attributes in one order, docs, defaults, aliases and
	// custom properties kept), as Confluent compares Avro's own rendering:
	// {"type":"string"} and "string" are one schema.
	canon := compactJSON(text)
	if b, err := json.Marshal(s); err == nil {
		canon = string(b)
	}
	return &avroSchema{s: s, canon: canon}, nil
}

func (a *avroSchema) canonical() string { return a.canon }

func (a *avroSchema) canRead(writer parsed) []string {
	w, ok := writer.(*avroSchema)
	if !ok {
		return []string{"the schemas are of different types"}
	}
	c := avroCompat{seen: map[avroPair]bool{}, done: checked[avroPair]{}}
	c.check(a.s, w.s, "")
	return c.msgs
}

// compactJSON removes insignificant white space from a JSON text (a text
// that is not JSON is returned trimmed).
func compactJSON(text string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(text)); err != nil {
		return strings.TrimSpace(text)
	}
	return b.String()
}
