package schema

import (
	"fmt"
)

// parsed is a schema compiled by its language's library: what the registry
// compares for identity and checks for compatibility.
type parsed interface {
	// canonical is the schema's identity: two registrations of the same
	// type, references and canonical form are the same schema and share an
	// id.
	canonical() string
	// canRead returns why a consumer using this schema cannot read data
	// written with writer, a schema of the same type; nothing when it can.
	canRead(writer parsed) []string
}

// dependency is a referenced schema under the name the referencing schema
// uses for it.
type dependency struct {
	name   string
	schema Schema
}

// parseSchema compiles s; deps are its references resolved transitively,
// each after its own dependencies.
func parseSchema(s Schema, deps []dependency) (parsed, error) {
	var (
		p   parsed
		err error
	)
	switch s.Type {
	case Avro, "":
		p, err = parseAvro(s.Text, deps)
	case Protobuf:
		p, err = parseProtobuf(s.Text, deps)
	case JSON:
		p, err = parseJSONSchema(s.Text, deps)
	default:
		err = fmt.Errorf("unknown schema type %q", s.Type)
	}
	if err != nil {
		return nil, errorf(CodeInvalidSchema, "Invalid schema: %v", err)
	}
	return p, nil
}
