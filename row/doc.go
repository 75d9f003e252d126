// Package row is the record type of Sluice's YAML pipeline path: a Row is a
// slice of typed Values whose positions are fixed by a Schema when the
// pipeline is planned, so no operator looks a field up by name per record.
//
// A Value is null, a bool, a 64-bit integer, a 64-bit float, a string, a
// timestamp (milliseconds since the Unix epoch) or a piece of raw JSON (an
// object or array from the input, kept verbatim).
//
// Decoders turn outside bytes into rows: JSONDecoder extracts only the
// fields of its schema from a JSON object (with github.com/valyala/fastjson)
// and, when asked, keeps every other member of the object as raw JSON in
// Row.Rest so that a `set:` step can pass unreferenced fields through
// without ever decoding them; CSVDecoder maps columns to fields. Strings
// and kept bytes of the rows a decoder returns live in an append-only arena
// owned by the rows, so a decoder allocates a few large blocks rather than
// one small object per field.
//
// JSONEncoder writes a row back as one JSON object: the schema's fields in
// order, then the members kept in Rest.
//
// ProtoDecoder and ProtoEncoder do the same for protobuf messages of a
// descriptor (protoreflect): the decoder walks the wire bytes against a
// plan compiled once from the descriptor, filling the schema's positions
// and keeping the other fields as wire bytes (or JSON) in Rest; the
// encoder writes the fields back by name and copies wire-format Rest of
// the same message verbatim. The mapping of protobuf types to kinds is
// described in protobuf.go and docs/pipeline-spec.md.
package row
