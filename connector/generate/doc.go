// Package generate is a source of synthetic JSON records for demos,
// tests and benchmarks: click streams, orders or a plain sequence, at a
// given rate, bounded or not.
//
// Record i (counting over all splits) is a pure function of the seed, the
// preset and i, so a bounded run's output is reproducible. Its event time
// ("ts", epoch milliseconds) is Start + i*Interval: with a rate set and
// Start left zero, event times follow the wall clock from the job's start.
package generate
