// Package runtime holds the type-erased core of Sluice's stream runtime:
// the control events that travel in-band with data (watermarks, idleness,
// checkpoint barriers, end of input), the per-input watermark combiner,
// the barrier aligner, per-subtask metrics counters and the job-level error
// collector.
//
// The typed parts of the runtime (batches of records of a user type, bounded
// queues, exchanges, operators) live in package stream, because Go generics
// require them to be instantiated with the user's record types. Everything
// in this package is independent of record types so that it can be shared
// by every operator and tested on its own as a plain state machine.
package runtime
