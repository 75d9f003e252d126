package pipeline

import (
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/row"
)

// keyTemplate is a message key (a routing key, a subject) made of text
// and output fields: "orders.{region}.{kind}". "{{" and "}}" stand for
// literal braces; a null field renders as "".
type keyTemplate struct {
	src    string
	parts  []string // len(fields)+1 literal parts around the fields
	fields []string
}

// keyTemplater is the optional capability of a byte sink's config whose
// message key is rendered from a template over the output fields, rather
// than taken from one field (messageKey).
type keyTemplater interface {
	keyTemplate() *keyTemplate
}

func parseKeyTemplate(s string) (*keyTemplate, error) {
	t := &keyTemplate{src: s}
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{':
			lit.WriteByte('{')
			i++
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte('}')
			i++
		case c == '{':
			end := strings.IndexByte(s[i+1:], '}')
			if end < 0 {
				return nil, fmt.Errorf("template %q: { at %d is not closed (write {{ for a literal brace)", s, i)
			}
			name := strings.TrimSpace(s[i+1 : i+1+end])
			if name == "" || strings.ContainsAny(name, "{") {
				return nil, fmt.Errorf("template %q: want {field} at %d", s, i)
			}
			t.parts = append(t.parts, lit.String())
			lit.Reset()
			t.fields = append(t.fields, name)
			i += end + 1
		case c == '}':
			return nil, fmt.Errorf("template %q: } at %d without { (write }} for a literal brace)", s, i)
		default:
			lit.WriteByte(c)
		}
	}
	t.parts = append(t.parts, lit.String())
	return t, nil
}

// static reports whether the template names no field; its text is then
// parts[0].
func (t *keyTemplate) static() bool { return len(t.fields) == 0 }

// compile binds the template to the output schema.
func (t *keyTemplate) compile(s *row.Schema) (func(row.Row) []byte, error) {
	idx := make([]int, len(t.fields))
	for i, f := range t.fields {
		j, ok := s.Index(f)
		if !ok {
			return nil, fmt.Errorf("template %q: unknown field %q; output fields: %s", t.src, f, s)
		}
		idx[i] = j
	}
	parts := t.parts
	return func(r row.Row) []byte {
		b := make([]byte, 0, 32)
		b = append(b, parts[0]...)
		for i, j := range idx {
			if v := r.Get(j); !v.IsNull() {
				b = append(b, v.String()...)
			}
			b = append(b, parts[i+1]...)
		}
		return b
	}, nil
}

// sinkKeyFunc returns the function that renders a byte sink's message key
// from a row, when its config has a template that names fields.
func sinkKeyFunc(c sinkConfig, s *row.Schema) (func(row.Row) []byte, error) {
	kt, ok := c.(keyTemplater)
	if !ok {
		return nil, nil
	}
	t := kt.keyTemplate()
	if t == nil || t.static() {
		return nil, nil
	}
	return t.compile(s)
}
