package pipeline

import (
	"strings"
	"sync"
)

// This file reads the schema blocks of sources and sinks (`format:
// protobuf` with a .proto file or a schema registry, `format: json` with
// a JSON Schema) and the top-level `registry:` block.

// Framings of binary records.
const (
	// FramingConfluent is the Confluent wire format: a zero magic byte,
	// the 4-byte big-endian schema id, for Protobuf the message indexes
	// (zigzag varints), then the payload.
	FramingConfluent = "confluent"
	// FramingNone is the bare payload.
	FramingNone = "none"
)

// Subject name strategies of sinks that register their schema.
const (
	SubjectTopicName       = "topic_name"        // <topic>-value
	SubjectRecordName      = "record_name"       // <package.Message>
	SubjectTopicRecordName = "topic_record_name" // <topic>-<package.Message>
)

// FormatSchemaSpec is the schema block of a source or a sink.
type FormatSchemaSpec struct {
	Pos Pos
	// File is a .proto file (format protobuf) and Message the full name
	// of the record's message in it (optional when the file has one).
	// A relative path is taken from the working directory, as every path
	// of a spec.
	File    string
	Message string
	// ImportPaths are directories searched for the file's imports
	// besides its own directory (google/protobuf/*.proto are built in).
	ImportPaths []string
	// JSONSchema is a JSON Schema file that json records must satisfy.
	JSONSchema string
	// Framing is FramingConfluent or FramingNone; the default is
	// confluent with a registry, none without.
	Framing string
	// Registry overrides the spec's top-level registry.
	Registry *RegistrySpec
	// Subject is the registry subject a sink registers under; empty:
	// from SubjectStrategy.
	Subject         string
	SubjectStrategy string
	// Register: a sink registers its schema (true, the default) or only
	// looks it up (false: it must have been registered before).
	Register bool
}

// RegistrySpec is a Confluent-compatible schema registry.
type RegistrySpec struct {
	Pos      Pos
	URL      string
	Username string
	Password Secret
	// PasswordEnv names an environment variable with the password.
	PasswordEnv string
	Token       Secret
	TokenEnv    string

	once  sync.Once
	cl    *schemaRegistry
	clErr error
}

func parseRegistry(e *errs, o *obj) *RegistrySpec {
	if o == nil {
		return nil
	}
	r := &RegistrySpec{Pos: Pos{File: e.file, Line: o.node.Line, Column: o.node.Column, Field: o.path}}
	r.URL = o.reqStr("url", "the registry's base URL, like http://127.0.0.1:8081")
	if r.URL != "" && !strings.HasPrefix(r.URL, "http://") && !strings.HasPrefix(r.URL, "https://") {
		e.at(o.get("url"), o.sub("url"), "must be an http:// or https:// URL, not %q", r.URL)
	}
	if a := o.object("auth", "username and password (or password_env), or token (or token_env)"); a != nil {
		r.Username = a.str("username", "")
		r.Password = Secret(a.str("password", ""))
		r.PasswordEnv = a.str("password_env", "")
		r.Token = Secret(a.str("token", ""))
		r.TokenEnv = a.str("token_env", "")
		basic := r.Username != "" || r.Password != "" || r.PasswordEnv != ""
		bearer := r.Token != "" || r.TokenEnv != ""
		switch {
		case basic && bearer:
			e.at(a.node, a.path, "give either username and password or a token, not both")
		case basic && (r.Username == "" || (r.Password == "") == (r.PasswordEnv == "")):
			e.at(a.node, a.path, "basic authentication needs username and exactly one of password and password_env")
		case bearer && (r.Token != "") == (r.TokenEnv != ""):
			e.at(a.node, a.path, "give exactly one of token and token_env")
		}
		a.done("username", "password", "password_env", "token", "token_env")
	}
	o.done("url", "auth")
	return r
}

// parseFormatSchema reads the schema block of a source or sink block o.
func parseFormatSchema(e *errs, o *obj, sink bool) *FormatSchemaSpec {
	so := o.object("schema", "file and message (protobuf), json_schema (json), registry, framing")
	if so == nil {
		return nil
	}
	s := &FormatSchemaSpec{Pos: Pos{File: e.file, Line: so.node.Line, Column: so.node.Column, Field: so.path}}
	s.File = specPath(e.file, so.str("file", ""))
	s.Message = so.str("message", "")
	for _, p := range so.strList("import_paths") {
		s.ImportPaths = append(s.ImportPaths, specPath(e.file, p))
	}
	s.JSONSchema = specPath(e.file, so.str("json_schema", ""))
	s.Framing = so.enum("framing", "", FramingConfluent, FramingNone)
	s.Registry = parseRegistry(e, so.object("registry", "url and auth"))
	allowed := []string{"file", "message", "import_paths", "json_schema", "framing", "registry"}
	if sink {
		s.Subject = so.str("subject", "")
		s.SubjectStrategy = so.enum("subject_strategy", SubjectTopicName, SubjectTopicName, SubjectRecordName, SubjectTopicRecordName)
		s.Register = so.boolean("register", true)
		allowed = append(allowed, "subject", "subject_strategy", "register")
	}
	so.done(allowed...)
	return s
}

// specPath is a file named in a spec: like every path of a spec, a
// relative one is taken from the working directory.
func specPath(_, p string) string { return p }

// checkFormats checks the format and schema settings of every source and
// sink once the whole spec is read, and fills in the defaults that
// depend on the top-level registry.
func checkFormats(e *errs, s *Spec) {
	checkSource(e, s, &s.Source)
	for i := range s.Steps {
		if j := s.Steps[i].Join; j != nil {
			checkSource(e, s, &j.Input)
		}
	}
	for i := range s.Sinks {
		checkSink(e, s, &s.Sinks[i])
	}
	if d := s.Errors.DeadLetter; d != nil && (d.Format != "json" || d.Schema != nil) {
		e.list = append(e.list, d.Pos.errorf("dead letters are JSON lines: leave out format and schema"))
	}
}

func effectiveFraming(sc *FormatSchemaSpec) {
	if sc.Framing == "" {
		sc.Framing = FramingNone
		if sc.Registry != nil {
			sc.Framing = FramingConfluent
		}
	}
}

func checkSource(e *errs, s *Spec, src *SourceSpec) {
	sc := src.Schema
	switch src.Format {
	case "protobuf":
		if sc == nil {
			if s.Registry == nil {
				e.list = append(e.list, src.Pos.errorf("format protobuf needs schema: {file: order.proto, message: shop.Order}, or a registry: block (top level or in schema:) to take each record's schema from"))
				return
			}
			sc = &FormatSchemaSpec{Pos: src.Pos}
			src.Schema = sc
		}
		if sc.Registry == nil {
			sc.Registry = s.Registry
		}
		if sc.File == "" && sc.Registry == nil {
			e.list = append(e.list, sc.Pos.errorf("needs file: (a .proto file) or a registry to take each record's schema from"))
		}
		if sc.JSONSchema != "" {
			e.list = append(e.list, sc.Pos.errorf("json_schema is for format json, not protobuf"))
		}
		effectiveFraming(sc)
		if sc.File == "" && sc.Framing == FramingNone {
			e.list = append(e.list, sc.Pos.errorf("framing none needs file: without the Confluent header a record does not say its schema"))
		}
		if src.Types != nil {
			e.list = append(e.list, src.Pos.errorf("types: is not used with format protobuf: the fields' types come from the schema"))
		}
		switch src.cfg.(type) {
		case *kafkaSourceConfig, *logSourceConfig, nil:
		default:
			e.list = append(e.list, src.Pos.errorf("format protobuf needs a source of binary records (kafka or log), not %s", src.Connector))
		}
	case "json":
		if sc == nil {
			return
		}
		if sc.JSONSchema == "" || sc.File != "" || sc.Message != "" || sc.Registry != nil || sc.Framing != "" || len(sc.ImportPaths) > 0 {
			e.list = append(e.list, sc.Pos.errorf("with format json the schema block takes only json_schema: a JSON Schema file the records must satisfy"))
		}
	default:
		if sc != nil {
			e.list = append(e.list, sc.Pos.errorf("schema: is for format protobuf or json, not %s", src.Format))
		}
	}
}

func checkSink(e *errs, s *Spec, sk *SinkSpec) {
	sc := sk.Schema
	if sk.Format != "protobuf" {
		if sc != nil {
			e.list = append(e.list, sc.Pos.errorf("schema: is for format protobuf"))
		}
		return
	}
	if sc == nil || sc.File == "" {
		e.list = append(e.list, sk.Pos.errorf("format protobuf needs schema: {file: order.proto, message: shop.Order}: the message the records are written as"))
		return
	}
	if sc.JSONSchema != "" {
		e.list = append(e.list, sc.Pos.errorf("json_schema is for json sources"))
	}
	if sc.Registry == nil {
		sc.Registry = s.Registry
	}
	effectiveFraming(sc)
	if sc.Framing == FramingConfluent && sc.Registry == nil {
		e.list = append(e.list, sc.Pos.errorf("framing confluent needs a registry (top level or in schema:) to get the schema id from"))
	}
	switch sk.cfg.(type) {
	case *kafkaSinkConfig, *logSinkConfig, nil:
	default:
		e.list = append(e.list, sk.Pos.errorf("format protobuf needs a sink of binary records (kafka or log), not %s", sk.Connector))
	}
	if sc.Framing == FramingConfluent && sc.Subject == "" && sc.SubjectStrategy != SubjectRecordName && sinkTopic(sk) == "" {
		e.list = append(e.list, sc.Pos.errorf("subject_strategy %s needs a topic: set subject:", sc.SubjectStrategy))
	}
}

// sinkTopic is the topic a kafka or log sink writes to.
func sinkTopic(sk *SinkSpec) string {
	switch c := sk.cfg.(type) {
	case *kafkaSinkConfig:
		return c.cfg.Topic
	case *logSinkConfig:
		return c.cfg.Topic
	}
	return ""
}
