// Package pipeline runs pipelines described in YAML (see
// docs/pipeline-spec.md): a source, steps (filter, map, set, window, dedup,
// join) and sinks, planned onto the stream package's runtime.
//
// Three stages, each usable alone:
//
//   - Parse reads a spec with gopkg.in/yaml.v3 nodes, so that every error
//     is a *SpecError naming the file, line, column and key path and
//     saying what is allowed there; unknown keys are errors. Connector
//     blocks are parsed by their connector's entry in this package's
//     connector tables.
//   - Compile plans a Spec: it resolves every field a step names to a
//     position in the rows at that step (row.Row; no per-record lookups by
//     name), compiles every expression once (expr-lang/expr; a closure
//     compiler runs the common subset directly on row values, the expr VM
//     the rest), and decides which input fields the decoders extract.
//     Until the first map or window the rows keep the input's shape and
//     the unreferenced input members travel verbatim in Row.Rest.
//   - Plan.Start opens the connectors and builds the dataflow: each source
//     split decodes its messages, takes their event time and runs the
//     stateless steps before the first keyed step in its own goroutine;
//     windows, dedup and joins are keyed operators (KeyBy on the encoded
//     key, then Window+Aggregate, KeyedProcess, IntervalJoin); every sink
//     gets the final rows (byte sinks through a JSON encoder).
//
// Bad records (undecodable, without event time, failing an expression,
// rejected by a sink) are counted and, under errors.tolerance all, written
// to the dead-letter sink; under none the first one fails the job with an
// error wrapping ErrTolerance.
//
// With a checkpoint: key the job runs with the stream runtime's
// checkpoints; under exactly_once the sink adapters expose the wrapped
// writer's checkpoint.TwoPhaseCommitter (file, parquet, kafka and log
// sinks have one) so that output becomes visible only when its checkpoint
// completes. Start's RestoreFrom option (`sluice run --from-checkpoint`)
// restores an explicit checkpoint instead of the latest. The state of
// the keyed steps (window keys and accumulators, dedup keys, join rows)
// has a versioned binary encoding for the checkpoints (codec.go).
package pipeline
