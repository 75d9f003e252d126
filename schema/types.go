package schema

import (
	"strconv"
	"strings"
)

// Type is a schema's language: AVRO (the default when a request names
// none), PROTOBUF or JSON (JSON Schema).
type Type string

// The schema types the registry accepts.
const (
	Avro     Type = "AVRO"
	Protobuf Type = "PROTOBUF"
	JSON     Type = "JSON"
)

// Types lists the supported schema types (GET /schemas/types).
var Types = []Type{JSON, Protobuf, Avro}

// parseType maps a request's schemaType ("" is AVRO) to a Type.
func parseType(s string) (Type, error) {
	switch t := Type(strings.ToUpper(s)); t {
	case "":
		return Avro, nil
	case Avro, Protobuf, JSON:
		return t, nil
	}
	return "", errorf(CodeInvalidSchema, "Invalid schema type %q: valid types are AVRO, PROTOBUF and JSON", s)
}

// Reference names another registered schema that a schema uses: Name is
// how the schema refers to it (an Avro full name, a Protobuf import path, a
// JSON Schema $ref URL), Subject and Version where it is registered.
type Reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// Schema is a schema as clients send it: its text, its type and the
// registered schemas it refers to.
type Schema struct {
	Type       Type
	Text       string
	References []Reference
}

// SubjectSchema is a schema registered under a subject at a version with
// its global id.
type SubjectSchema struct {
	Subject string
	Version int
	ID      int
	Deleted bool
	Schema
}

// Level is a compatibility level: which earlier versions of a subject a
// new schema is checked against, and in which direction.
type Level string

// The compatibility levels of Confluent's Schema Registry. BACKWARD: a
// consumer using the new schema can read data written with the latest one;
// FORWARD: a consumer using the latest schema can read data written with
// the new one; FULL: both. The _TRANSITIVE forms check against every
// version, not only the latest; NONE checks nothing.
const (
	None               Level = "NONE"
	Backward           Level = "BACKWARD"
	BackwardTransitive Level = "BACKWARD_TRANSITIVE"
	Forward            Level = "FORWARD"
	ForwardTransitive  Level = "FORWARD_TRANSITIVE"
	Full               Level = "FULL"
	FullTransitive     Level = "FULL_TRANSITIVE"
)

// DefaultLevel is the global compatibility level of a new registry.
const DefaultLevel = Backward

// ParseLevel parses a compatibility level, ignoring case.
func ParseLevel(s string) (Level, error) {
	switch l := Level(strings.ToUpper(s)); l {
	case None, Backward, BackwardTransitive, Forward, ForwardTransitive, Full, FullTransitive:
		return l, nil
	}
	return "", errorf(CodeInvalidCompatibilityLevel, "Invalid compatibility level %q. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive", s)
}

func (l Level) backward() bool {
	return l == Backward || l == BackwardTransitive || l == Full || l == FullTransitive
}

func (l Level) forward() bool {
	return l == Forward || l == ForwardTransitive || l == Full || l == FullTransitive
}

func (l Level) transitive() bool {
	return l == BackwardTransitive || l == ForwardTransitive || l == FullTransitive
}

// Mode says which writes a subject (or the whole registry) accepts:
// READWRITE (the default) everything; READONLY and READONLY_OVERRIDE no
// registration or deletion; IMPORT registrations that carry their id and
// version, with no compatibility check (to copy another registry).
type Mode string

// The modes.
const (
	ReadWrite        Mode = "READWRITE"
	ReadOnly         Mode = "READONLY"
	ReadOnlyOverride Mode = "READONLY_OVERRIDE"
	Import           Mode = "IMPORT"
)

// ParseMode parses a mode, ignoring case.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToUpper(s)); m {
	case ReadWrite, ReadOnly, ReadOnlyOverride, Import:
		return m, nil
	}
	return "", errorf(CodeInvalidMode, "Invalid mode %q. Valid values are READWRITE, READONLY, READONLY_OVERRIDE and IMPORT", s)
}

func (m Mode) readOnly() bool { return m == ReadOnly || m == ReadOnlyOverride }

// Config is a subject's (or the global) configuration.
type Config struct {
	Compatibility Level `json:"compatibilityLevel"`
	Normalize     bool  `json:"normalize,omitempty"`
}

// validSubject checks a subject name as Confluent does: not empty, no
// control characters.
func validSubject(s string) error {
	if s == "" {
		return errorf(CodeInvalidSubject, "Subject name is empty")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return errorf(CodeInvalidSubject, "Subject name %q contains a control character", s)
		}
	}
	return nil
}

// version selectors of the REST API: "latest" or -1, else 1..2^31-1.
const latestVersion = -1

// parseVersion parses a version path segment.
func parseVersion(s string) (int, error) {
	if s == "latest" {
		return latestVersion, nil
	}
	v, err := strconv.ParseInt(s, 10, 32)
	if err == nil && (v == -1 || v >= 1) {
		return int(v), nil
	}
	return 0, errorf(CodeInvalidVersion, "The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", s)
}
