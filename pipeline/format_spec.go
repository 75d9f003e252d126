package pipeline

import (
	"path/filepath"
)

// This file reads the keys of sources and sinks that belong to `format:
// protobuf` (`schema: {file, message, import_paths}`, `registry:` and
// `protobuf: {framing, subject, subject_strategy, register}`, as avro
// has `schema`, `registry` and `avro`) and `schema: {json_schema}` of
// `format: json`. The registry block and its client are avro.go's and
// registry.go's.

// FormatSchemaSpec is the schema of a protobuf source or sink, or the
// JSON Schema of a json source.
type FormatSchemaSpec struct {
	Pos Pos
	// File is a .proto file (format protobuf) and Message the full name
	// of the records' message in it (optional when the file has one).
	// A relative path is taken from the spec file's directory.
	File    string
	Message string
	// ImportPaths are directories searched for the file's imports
	// besides its own directory (google/protobuf/*.proto are built in).
	ImportPaths []string
	// JSONSchema is a JSON Schema file that json records must satisfy.
	JSONSchema string
	// Registry overrides the spec's top-level registry.
	Registry *RegistrySpec
	// Framing is FramingConfluent or FramingNone; empty: confluent when
	// a registry applies (the spec's or the host's), none otherwise.
	Framing string
	// Sinks: the subject to register under (empty: from
	// SubjectStrategy), and whether to register the schema (true) or
	// only look it up.
	Subject         string
	SubjectStrategy string
	Register        bool
	// Body is how an http source splits request bodies: pbBodyMessage
	// (default: each body one record) or pbBodyDelimited.
	Body string
}

// formatKeys are the keys of a source or sink block that belong to the
// protobuf format (besides avro's schema and registry).
var formatKeys = []string{"protobuf"}

// formatKeyAllowed reports whether key (one of avroKeys or formatKeys)
// belongs to format.
func formatKeyAllowed(format, key string) bool {
	switch format {
	case "avro":
		return key == "schema" || key == "registry" || key == "avro"
	case "protobuf":
		return key == "schema" || key == "registry" || key == "protobuf"
	case "json":
		return key == "schema"
	}
	return false
}

// formatsOfKey names the formats key belongs to, for messages.
func formatsOfKey(key string) string {
	switch key {
	case "schema":
		return "avro, protobuf or json"
	case "registry":
		return "avro or protobuf"
	}
	return key
}

// parseFormatSchema reads the protobuf keys of a source (sink false) or
// sink block, or the json_schema of a json source.
func parseFormatSchema(e *errs, o *obj, format string, sink bool) *FormatSchemaSpec {
	if o.has("protobuf") && format != "protobuf" {
		e.at(o.get("protobuf"), o.sub("protobuf"), "is only allowed with format: protobuf")
	}
	switch format {
	case "json":
		so := o.object("schema", "json_schema: a JSON Schema file the records must satisfy")
		if so == nil {
			return nil
		}
		s := &FormatSchemaSpec{Pos: Pos{File: e.file, Line: so.node.Line, Column: so.node.Column, Field: so.path}}
		s.JSONSchema = specPath(e.file, so.reqStr("json_schema", "a JSON Schema file the records must satisfy"))
		if sink {
			e.at(so.node, so.path, "a json sink takes no schema")
		}
		so.done("json_schema")
		return s
	case "protobuf":
	default:
		return nil
	}
	s := &FormatSchemaSpec{Pos: Pos{File: e.file, Line: o.node.Line, Column: o.node.Column, Field: o.path}, SubjectStrategy: SubjectTopicName, Register: true}
	if so := o.object("schema", "file and message: the records' protobuf message"); so != nil {
		s.Pos = Pos{File: e.file, Line: so.node.Line, Column: so.node.Column, Field: so.path}
		s.File = specPath(e.file, so.str("file", ""))
		s.Message = so.str("message", "")
		for _, p := range so.strList("import_paths") {
			s.ImportPaths = append(s.ImportPaths, specPath(e.file, p))
		}
		so.done("file", "message", "import_paths")
	}
	if ro := o.object("registry", "url and credentials"); ro != nil {
		s.Registry = parseRegistry(e, ro)
	}
	if po := o.object("protobuf", "framing, and for sinks subject, subject_strategy, register"); po != nil {
		s.Framing = po.enum("framing", "", FramingConfluent, FramingNone)
		allowed := []string{"framing"}
		if !sink {
			s.Body = po.enum("body", "", pbBodyMessage, pbBodyDelimited)
			allowed = append(allowed, "body")
		}
		if sink {
			s.Subject = po.str("subject", "")
			s.SubjectStrategy = po.enum("subject_strategy", SubjectTopicName, SubjectTopicName, SubjectRecordName, SubjectTopicRecordName)
			s.Register = po.boolean("register", true)
			allowed = append(allowed, "subject", "subject_strategy", "register")
		}
		po.done(allowed...)
	}
	switch {
	case sink && s.File == "":
		e.at(o.node, o.sub("schema"), "is required with format protobuf: {file: order.proto, message: shop.Order}, the message the records are written as")
	case s.File == "" && s.Framing == FramingNone:
		e.at(o.node, o.sub("schema"), "is required with framing: none (bare protobuf records do not say their message)")
	}
	return s
}

// specPath resolves a file named in a spec against the spec's directory,
// as avro schema files are.
func specPath(specFile, p string) string {
	if p == "" || filepath.IsAbs(p) || specFile == "" {
		return p
	}
	return filepath.Join(filepath.Dir(specFile), p)
}

// checkFormats checks what needs the whole spec: protobuf sources and
// sinks are on byte connectors that can hold binary records (kafka, log,
// file, and http sources), and their settings fit the connector.
func checkFormats(e *errs, s *Spec) {
	check := func(pos Pos, format, connector string, sc *FormatSchemaSpec, sink bool) {
		if format != "protobuf" || connector == "" {
			return
		}
		switch connector {
		case "kafka", "log":
		case "file":
		case "http":
			if sink {
				return // no http sink exists; the connector check reports it
			}
		default:
			e.list = append(e.list, pos.errorf("format protobuf is for kafka, log and file connectors and http sources: %s records are lines, which cannot hold binary protobuf", connector))
			return
		}
		if sc == nil {
			return
		}
		if sc.Body != "" && connector != "http" {
			e.list = append(e.list, sc.Pos.errorf("protobuf.body is for http sources: %s records are one message each", connector))
		}
		if connector != "file" && connector != "http" {
			return
		}
		// Files and request bodies are bare messages unless framing
		// confluent is asked for.
		if !sink && sc.File == "" && sc.Framing == "" {
			e.list = append(e.list, sc.Pos.errorf("format protobuf on a %s source needs schema: {file: order.proto, message: shop.Order} (its records are bare messages), or protobuf: {framing: confluent} and a registry for records in the Confluent wire format", connector))
		}
		if sink && sc.Framing == FramingConfluent && sc.Subject == "" && sc.SubjectStrategy == SubjectTopicName {
			e.list = append(e.list, sc.Pos.errorf("a %s sink has no topic to name its subject after: set protobuf: {subject: NAME} or subject_strategy: record_name", connector))
		}
	}
	check(s.Source.Pos, s.Source.Format, s.Source.Connector, s.Source.Schema, false)
	if s.Source.Format == "protobuf" && s.Source.Types != nil {
		e.list = append(e.list, s.Source.Pos.errorf("types: is not used with format protobuf: the fields' types come from the schema"))
	}
	for i := range s.Steps {
		if j := s.Steps[i].Join; j != nil {
			check(j.Input.Pos, j.Input.Format, j.Input.Connector, j.Input.Schema, false)
		}
	}
	for i := range s.Sinks {
		sk := &s.Sinks[i]
		check(sk.Pos, sk.Format, sk.Connector, sk.Schema, true)
	}
	if d := s.Errors.DeadLetter; d != nil && d.Format == "protobuf" {
		e.list = append(e.list, d.Pos.errorf("dead letters are JSON lines: format protobuf is not allowed here"))
	}
}
