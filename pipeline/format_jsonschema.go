package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// JSON Schema validation of json records (schema: {json_schema: FILE}).
// A record that fails it goes to the dead letters with the reasons, like
// any record that cannot be processed; it is not dropped silently.

// errSchemaInvalid wraps the reasons a record fails its JSON Schema.
var errSchemaInvalid = errors.New("record does not match the JSON Schema")

func loadJSONSchema(file string) (*jsonschema.Schema, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("json_schema: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("json_schema %s: not JSON: %w", file, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(file, doc); err != nil {
		return nil, fmt.Errorf("json_schema %s: %s", file, oneLine(err.Error()))
	}
	sch, err := c.Compile(file)
	if err != nil {
		return nil, fmt.Errorf("json_schema %s: %s", file, oneLine(err.Error()))
	}
	return sch, nil
}

// planJSONSchema compiles an input's JSON Schema, if it has one.
func planJSONSchema(e *errs, s SourceSpec, in *inputPlan) {
	if s.Format != "json" || s.Schema == nil || s.Schema.JSONSchema == "" {
		return
	}
	sch, err := loadJSONSchema(s.Schema.JSONSchema)
	if err != nil {
		e.list = append(e.list, s.Schema.Pos.errorf("%v", err))
		return
	}
	in.jsonSchema = sch
}

// validateJSON checks one record against sch. Invalid JSON is left to
// the decoder, which reports it the usual way.
func validateJSON(sch *jsonschema.Schema, data []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil
	}
	err = sch.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("%w: %v", errSchemaInvalid, err)
	}
	var reasons []string
	for _, u := range ve.BasicOutput().Errors {
		if u.Error == nil {
			continue
		}
		at := u.InstanceLocation
		if at == "" {
			at = "/"
		}
		reasons = append(reasons, fmt.Sprintf("at %s: %s", at, u.Error.String()))
		if len(reasons) == 5 {
			break
		}
	}
	if len(reasons) == 0 {
		reasons = append(reasons, oneLine(ve.Error()))
	}
	return fmt.Errorf("%w: %s", errSchemaInvalid, strings.Join(reasons, "; "))
}
