// Package stream is Sluice's typed dataflow API and its parallel runtime:
// build a graph of sources, operators and sinks over your own Go types,
// then run it in parallel with bounded memory, backpressure and event-time
// semantics.
//
//	env := stream.New(stream.WithParallelism(4))
//	clicks := stream.FromSource(env, "clicks", src, stream.BoundedOutOfOrderness(ts, 5*time.Second))
//	perUser := stream.KeyBy(clicks, func(c Click) string { return c.User })
//	counts := stream.Aggregate(stream.Window(perUser, window.Tumbling(time.Minute)), stream.Count[Click]())
//	stream.To(counts, sink)
//	err := env.Execute(ctx)
//
// Go has no generic methods, so operators are top-level generic functions
// (Map, Filter, FlatMap, KeyBy, Union, Connect, Window, Aggregate, Reduce,
// ProcessWindow, KeyedProcess, IntervalJoin, WindowJoin, AsyncMap, To).
// AsyncMap calls outside services with bounded concurrency without
// blocking its task; the records in flight are part of checkpoints.
//
// User functions passed to operators are called by every parallel subtask
// of the operator, concurrently: they must not share mutable variables
// without synchronisation. State goes in keyed state (KeyedProcess), which
// each subtask owns for its keys, or in per-subtask instances made by the
// constructor functions that KeyedProcess and KeyedCoProcess take.
//
// # Runtime
//
// Execute plans the graph into parallel subtasks. Consecutive operators
// connected one-to-one with the same parallelism are chained into one
// goroutine and call each other directly, batch by batch. Elsewhere an
// exchange (forward, rebalance, hash by key group, broadcast) moves batches
// of records through bounded queues: every channel from an upstream to a
// downstream subtask owns a fixed number of batch buffers (credits), and a
// sender with no free buffer blocks. That is the whole backpressure
// mechanism; it reaches the sources, which stop reading.
//
// Watermarks, idleness markers, checkpoint barriers and end-of-input travel
// in the same queues as the records, in order. An operator's watermark is
// the minimum over its input channels (idle channels excepted); it forwards
// a watermark only after emitting everything that watermark triggers. A
// bounded source ends with a final watermark at +infinity that fires every
// remaining window and timer, so one pipeline serves live streams and
// backfills.
//
// # Time
//
// Times are int64 milliseconds since the Unix epoch. A source's
// WatermarkStrategy assigns event time; each split generates its own
// watermarks (bounded out-of-orderness, optional idle timeout). Without a
// strategy records carry the time they were read.
//
// # Errors
//
// A panic in user code or an error from a source or sink stops the job;
// Execute returns an *OperatorError naming the operator, the subtask and
// the record or split position. ErrUserPanic marks panics.
//
// # Checkpoints
//
// WithCheckpointing takes asynchronous barrier snapshots at an interval:
// sources record their split positions, window operators their open
// windows, sinks that implement checkpoint.TwoPhaseCommitter pre-commit and
// commit when the checkpoint completes (exactly-once output), and then
// source splits that implement PositionCommitter receive the position the
// checkpoint recorded (Kafka group offsets, HTTP answers). A job started
// again with the same directory restores the latest complete checkpoint;
// WithRestartPolicy restarts a failed run from it, and
// Job.StopWithSavepoint stops with a final checkpoint. The directory may
// be an s3://BUCKET/PREFIX URL: checkpoints then go to an S3-compatible
// object store (WithCheckpointObjectStore, WithCheckpointLocalDir), from
// which a job on another machine restores. See docs/checkpoints.md.
//
// # Metrics
//
// Job.Metrics returns per-subtask counters (records in and out, late
// records dropped, busy, idle and backpressured time, current watermark)
// while the job runs.
//
// See docs/stream.md for the design in full.
package stream
