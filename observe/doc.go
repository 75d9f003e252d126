// Package observe turns the live state of a Sluice process into figures an
// operator can read: per-topic and per-partition offsets, sizes and append
// rates of the embedded log, consumer-group lag, and for every registered
// stream job its dataflow graph with per-vertex throughput, busy, idle and
// backpressured time per second, watermark and watermark lag.
//
// An Observer is the one place that knows about all of them. Commands
// register their running jobs with Register; the web package serves the
// Observer's snapshots as JSON, server-sent events and a dashboard;
// Collector exposes the same figures as Prometheus metrics; StatusLine
// prints a job's progress on a terminal.
//
// Rates need two points in time, so an Observer samples: Run calls Sample
// once per interval (a second by default) and keeps a short history (ten
// minutes by default) for the dashboard's plots. Prometheus counters and
// gauges that need no rate are read at scrape time straight from the log
// and the jobs; the per-second figures come from the latest sample.
//
// What the engine does not report yet is reported as absent, never
// invented: the stream runtime has no checkpoint coordinator, so a job's
// checkpoint history is marked unavailable unless the job implements
// CheckpointReporter; the log has no fsync observer hook, so there is no
// fsync latency histogram (only the fsync count).
package observe
