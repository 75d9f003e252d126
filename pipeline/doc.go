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
// Delivery is at-least-once today: the stream runtime has no checkpoints
// yet. The sinks are already two-phase shaped (OnBarrier pre-commits,
// CommitCheckpoint publishes), and the pipeline's sink adapters pass both
// through, so exactly-once needs the runtime's checkpoint coordinator, not
// a change of the spec.
package pipeline
