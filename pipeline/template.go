package pipeline

import (
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/row"
)

// A destination template names where each record goes from its fields:
// "alerts/{device}" for an MQTT topic, "orders.{region}" for a NATS
// subject. {name} is replaced by the field's value as text (a null value
// by nothing); everything else is literal. Byte sinks whose config
// implements keyTemplater get the rendered destination as each message's
// key (see encodingSink).

// keyTemplater is a sink config whose messages' keys come from a
// template over the output fields.
type keyTemplater interface {
	// keyTemplate returns the template ("" for none) and where it is in
	// the spec.
	keyTemplate() (string, Pos)
	// checkKey says whether a rendered destination is valid.
	checkKey(dst []byte) error
}

// tmplPart is a literal (field < 0) or a field reference.
type tmplPart struct {
	lit   string
	field int
}

// keyTemplate is a parsed destination template bound to a schema.
type keyTemplate struct {
	parts []tmplPart
	// check refuses a rendered destination the system would not take
	// (the record then fails: dead letter or error, per the spec's
	// errors section); nil accepts all.
	check func(dst []byte) error
}

// parseTemplate splits t into literals and field names, checking braces.
func parseTemplate(t string) (lits []string, fields []string, err error) {
	for {
		i := strings.IndexAny(t, "{}")
		if i < 0 {
			lits = append(lits, t)
			return lits, fields, nil
		}
		if t[i] == '}' {
			return nil, nil, fmt.Errorf("unmatched '}' in %q", t)
		}
		j := strings.IndexByte(t[i:], '}')
		if j < 0 {
			return nil, nil, fmt.Errorf("unclosed '{' in %q", t)
		}
		name := strings.TrimSpace(t[i+1 : i+j])
		if name == "" || strings.ContainsAny(name, "{") {
			return nil, nil, fmt.Errorf("empty or nested field name in %q", t)
		}
		lits = append(lits, t[:i])
		fields = append(fields, name)
		t = t[i+j+1:]
	}
}

// compileTemplate binds template t to schema s.
func compileTemplate(t string, s *row.Schema) (*keyTemplate, error) {
	lits, fields, err := parseTemplate(t)
	if err != nil {
		return nil, err
	}
	kt := &keyTemplate{}
	for i, l := range lits {
		if l != "" {
			kt.parts = append(kt.parts, tmplPart{lit: l, field: -1})
		}
		if i < len(fields) {
			idx, ok := s.Index(fields[i])
			if !ok {
				return nil, fmt.Errorf("unknown field %q in %q; output fields: %s", fields[i], t, s)
			}
			kt.parts = append(kt.parts, tmplPart{field: idx})
		}
	}
	return kt, nil
}

// render appends r's destination to dst.
func (kt *keyTemplate) render(dst []byte, r row.Row) []byte {
	for _, p := range kt.parts {
		if p.field < 0 {
			dst = append(dst, p.lit...)
			continue
		}
		v := r.Get(p.field)
		if v.IsNull() {
			continue
		}
		dst = append(dst, v.String()...)
	}
	return dst
}

// resolveTemplateFields resolves the fields a sink's destination
// template names (so that the rows carry them), reporting unknown ones
// at the template.
func resolveTemplateFields(e *errs, c sinkConfig, cur *fieldSet) {
	kt, ok := c.(keyTemplater)
	if !ok {
		return
	}
	t, pos := kt.keyTemplate()
	if t == "" {
		return
	}
	if _, fields, err := parseTemplate(t); err == nil {
		resolveKeys(e, pos, "template", fields, cur)
	}
}
