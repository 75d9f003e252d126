package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// JSON Schemas are checked for validity by compiling them with
// github.com/santhosh-tekuri/jsonschema/v6 (drafts 4 to 2020-12, draft-07
// when the schema names none, as Confluent's registry assumes). A
// reference's name is the URL a $ref uses; relative names are resolved
// against the schema's $id when it has one. The compiler is given a loader
// that refuses every URL: a schema cannot make the registry read a file or
// reach the network.
//
// Compatibility (jsoncompat.go) works on the decoded document itself.

// jsonBase is where a schema without an absolute $id and its relative
// references live during compilation.
const jsonBase = "mem://registry/"

// jsonDoc is one decoded schema document and the URL it resolves from.
type jsonDoc struct {
	base string
	root any
}

type jsonSchemaDoc struct {
	main  *jsonDoc
	docs  map[string]*jsonDoc // by absolute URL without fragment
	canon string
}

type refuseLoader struct{}

func (refuseLoader) Load(u string) (any, error) {
	return nil, fmt.Errorf("%s is not a registered reference", u)
}

func decodeJSON(text string) (any, error) {
	d := json.NewDecoder(strings.NewReader(text))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("text after the JSON value")
	}
	return v, nil
}

// schemaID returns a schema document's absolute $id (or draft-4 id).
func schemaID(doc any) string {
	m, ok := doc.(map[string]any)
	if !ok {
		return ""
	}
	for _, k := range []string{"$id", "id"} {
		if s, ok := m[k].(string); ok {
			if u, err := url.Parse(s); err == nil && u.IsAbs() {
				u.Fragment = ""
				return u.String()
			}
		}
	}
	return ""
}

func resolveURL(base, ref string) string {
	b, err := url.Parse(base)
	if err != nil {
		return ref
	}
	r, err := url.Parse(ref)
	if err != nil {
		return ref
	}
	u := b.ResolveReference(r)
	u.Fragment = ""
	return u.String()
}

func parseJSONSchema(text string, deps []dependency) (*jsonSchemaDoc, error) {
	root, err := decodeJSON(text)
	if err != nil {
		return nil, err
	}
	switch root.(type) {
	case map[string]any, bool:
	default:
		return nil, errors.New("a JSON Schema is an object or a boolean")
	}
	s := &jsonSchemaDoc{docs: map[string]*jsonDoc{}}
	mainURL := schemaID(root)
	if mainURL == "" {
		mainURL = jsonBase + "schema.json"
	}
	s.main = &jsonDoc{base: mainURL, root: root}
	s.docs[mainURL] = s.main

	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	c.UseLoader(refuseLoader{})
	for _, d := range deps {
		if d.schema.Type != JSON {
			return nil, fmt.Errorf("reference %q is a %s schema, not JSON", d.name, d.schema.Type)
		}
		v, err := decodeJSON(d.schema.Text)
		if err != nil {
			return nil, fmt.Errorf("reference %q: %w", d.name, err)
		}
		for _, u := range []string{resolveURL(jsonBase, d.name), resolveURL(mainURL, d.name), schemaID(v)} {
			if u == "" || s.docs[u] != nil {
				continue
			}
			s.docs[u] = &jsonDoc{base: u, root: v}
			if err := c.AddResource(u, v); err != nil {
				return nil, fmt.Errorf("reference %q: %w", d.name, err)
			}
		}
	}
	if err := c.AddResource(mainURL, root); err != nil {
		return nil, err
	}
	if _, err := c.Compile(mainURL); err != nil {
		var sv *jsonschema.SchemaValidationError
		if errors.As(err, &sv) {
			return nil, fmt.Errorf("not a valid JSON Schema: %s", oneLine(sv.Err.Error()))
		}
		return nil, errors.New(oneLine(err.Error()))
	}
	// Identity: the document with its object keys sorted, white space
	// removed and numbers as written.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	s.canon = strings.TrimSpace(b.String())
	return s, nil
}

// oneLine joins a multi-line message into one line.
func oneLine(msg string) string {
	var parts []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

func (s *jsonSchemaDoc) canonical() string { return s.canon }

func (s *jsonSchemaDoc) canRead(writer parsed) []string {
	w, ok := writer.(*jsonSchemaDoc)
	if !ok {
		return []string{"the schemas are of different types"}
	}
	c := jsonCompat{o: w, u: s, seen: map[string]bool{}, done: checked[string]{}}
	c.compare(w.main.root, s.main.root, w.main, s.main, "#")
	return c.msgs
}
