// Package schema is Sluice's schema registry: a Confluent-compatible
// Schema Registry that `sluice serve` serves on its HTTP listener, for
// Avro, Protobuf and JSON Schema.
//
// A Registry keeps subjects, their versions, global schema ids, configs
// (compatibility levels) and modes in memory, and durably in the compacted
// internal topic _schemas of the embedded log (through internal/kvtopic,
// as package auth keeps users and ACLs): every change is one batch of
// records fsynced before it is applied or answered, and Open replays the
// topic, so the registry survives restarts with its ids; ids are global
// and never given twice (store.go describes the records).
//
// Schemas are compiled by their languages' libraries (avro.go,
// protobuf.go, jsonschema.go), which also decide when two registrations
// are the same schema. Compatibility is checked as Confluent's registry
// checks it, per language: Avro's schema resolution rules
// (avrocompat.go), Confluent's Protobuf rules (protobufcompat.go) and the
// main rules of its JSON Schema checker (jsoncompat.go); compat.go applies
// the levels (BACKWARD, FORWARD, FULL, their _TRANSITIVE forms, NONE). The
// table of documented cases they must agree with is testdata/compat.
//
// Handler serves the REST API (http.go and api_*.go), with Confluent's
// paths, media type, error codes and JSON shapes, so that Confluent's
// clients and serializers, franz-go's pkg/sr and other tools work with it
// unchanged. See docs/schema-registry.md for what is covered.
package schema
