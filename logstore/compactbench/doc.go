// Package compactbench measures the log cleaner of compacted topics, as a
// user sees it, in two parts:
//
//   - the pass: a compacted topic is filled with keyed records over a fixed
//     set of keys (so most are superseded), its active segment rolled, and
//     one forced cleaner pass (or passes until the log is clean) timed; the
//     result is the bytes read and written per second and the records
//     removed, next to the disk's sequential write bandwidth with fdatasync
//     measured the same run (logbench.MeasureDisk);
//   - produce under compaction: a separate franz-go client produces keyed
//     records through the Kafka protocol (kbench) into a compacted topic
//     for a fixed time with the cleaner idle, then as long again into the
//     same topic while a goroutine forces cleaner passes one after the
//     other, and the run reports both throughputs and their ratio.
//
// `sluice bench compaction` prints its results; docs/benchmarks.md records
// figures taken with it.
package compactbench
