// Package clusterbench measures cluster mode as a user runs it: separate
// processes for the broker (`sluice serve`, unless an existing broker is
// given) and for every instance (`sluice run --cluster BROKERS
// --instance-id ID spec.yaml`), with a franz-go producer writing the input
// beforehand and a read_committed franz-go consumer deciding when the
// output is complete.
//
// It measures three things in one run against one broker:
//
//   - Throughput of a keyed tumbling window (count and sum per user, the
//     key crossing a repartition topic, state in a changelog) with 1, 2,
//     3... instances: wall time from starting the processes until the
//     committed output holds every expected window, and the instances'
//     CPU time (getrusage of the exited children), so a figure per
//     CPU-second is available where the wall clock is shared.
//   - The same pipeline embedded (no cluster section; a bounded kafka
//     source with checkpoints) in one `sluice run` process: its CPU time
//     per record is the baseline that cluster mode's overhead is the
//     ratio to.
//   - Failover of a dedup step holding one state entry per key: two
//     instances, one SIGKILLed, then restarted with the same instance id
//     (static membership gives its tasks back; they restore from the
//     changelog) or not restarted (the survivor takes its tasks after the
//     session timeout); the failover time is from the SIGKILL until probe
//     records written to every partition after it are in the committed
//     output.
//
// It serves `sluice bench cluster`.
package clusterbench
