package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestJSONSchemaDefaultDraft pins the dialect of a schema that names no
// "$schema" (JSON Schema 2020-12 Core, section 8.1.1: without it the
// dialect is the implementation's choice): draft 2020-12, as
// docs/pipeline-spec.md says, where "format" is an annotation, not
// checked (2020-12 Validation, section 7.2); a schema that names draft-07
// has it checked.
func TestJSONSchemaDefaultDraft(t *testing.T) {
	dir := t.TempDir()
	const body = `"properties":{"email":{"type":"string","format":"email"}}`
	for _, tc := range []struct {
		name, text string
		refused    bool // a record whose email is not an address
	}{
		{"none", `{` + body + `}`, false},
		{"draft-07", `{"$schema":"http://json-schema.org/draft-07/schema#",` + body + `}`, true},
	} {
		file := filepath.Join(dir, tc.name+".json")
		if err := os.WriteFile(file, []byte(tc.text), 0o644); err != nil {
			t.Fatal(err)
		}
		sch, err := loadJSONSchema(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := validateJSON(sch, []byte(`{"email":"not an address"}`)); errors.Is(err, errSchemaInvalid) != tc.refused {
			t.Errorf("$schema %s: %v; want refused %v", tc.name, err, tc.refused)
		}
		if err := validateJSON(sch, []byte(`{"email":"x@example.com"}`)); err != nil {
			t.Errorf("$schema %s: a good address: %v", tc.name, err)
		}
	}
}
