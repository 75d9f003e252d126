// Package avro reads and writes Sluice rows in Apache Avro's binary
// encoding, field by field, without building a map or a Go struct per
// record.
//
// Schemas are parsed with github.com/hamba/avro/v2 (maintained, complete:
// named types, aliases, logical types, defaults), each with a cache of its
// own so that two versions of one record never share a name table. The
// binary reading and writing are this package's: a Program is compiled
// once per pair of a writer schema and a reader schema and a set of row
// fields, applying Avro's schema resolution rules at compile time (fields
// matched by name or alias, fields the writer lacks filled from the
// reader's defaults, the writer's extra fields skipped, int → long →
// float → double and string ↔ bytes promotions, enum symbols mapped,
// union branches chosen). Decoding then walks the writer's bytes once and
// stores each wanted field straight into its row position; fields no one
// wants are skipped without being decoded, kept as raw JSON members in
// Row.Rest when asked, or kept in Row.Rest as Avro binary in the reader's
// encoding (Options.RawRest: copied when the writer's type is the
// reader's) for an encoder from NewRestEncoder to copy back unchanged and
// RestJSON to turn into JSON members.
//
// Values map to row kinds as follows: boolean → bool; int, long → int;
// float, double → float; string, bytes, fixed, enum → string (bytes
// verbatim); timestamp-millis, timestamp-micros, timestamp-nanos,
// local-timestamp-millis, -micros and -nanos and date → timestamp
// (milliseconds, UTC, rounded down; dates at midnight); time-millis,
// time-micros → int as written; decimal → float, or an exact decimal
// string with DecimalAsString; uuid → string (on a fixed of 16 bytes, the
// canonical 8-4-4-4-12 hexadecimal text, which is also what the encoder
// takes, besides 16 raw bytes); records, arrays and maps → json (union
// values unwrapped); a nullable union → its branch or null. A logical
// type on a type the spec does not allow it on is ignored.
//
// An Encoder writes rows in the binary encoding of a writer schema: each
// schema field takes the row field of its name, converted where that loses
// nothing (an int into a double, a timestamp into a timestamp-micros or
// timestamp-nanos long,
// a json value into a nested record or array). Derive makes a writer
// schema for a row schema whose fields have no Avro schema yet.
//
// AppendHeader and SplitHeader frame payloads in the Confluent wire
// format: a zero magic byte and a 4-byte big-endian schema id.
package avro
