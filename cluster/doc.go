// Package cluster runs one pipeline over many processes, in the Kafka
// Streams model: the distributed engine is a Kafka cluster (Apache Kafka,
// Redpanda, or `sluice serve`), and this package owns only what an
// instance does with it.
//
// A pipeline is cut into sub-topologies at every key change. A task is one
// partition of a sub-topology's input topic; instances join one consumer
// group (the application id) and receive tasks through the consumer-group
// protocol with the cooperative-sticky assignor, so a rebalance moves only
// the tasks that must move. Between sub-topologies records travel through
// internal repartition topics (<application>-<step>-repartition), keyed by
// the new key, with the upstream tasks' watermarks as control records
// (watermark.go). A stateful task keeps its state in memory, backed by a
// compacted changelog topic (<application>-<step>-changelog) that the next
// owner restores (Table, restore.go).
//
// Under exactly-once each instance has one transactional producer (EOS v2,
// KIP-447): at every commit interval the task outputs, repartition
// records, changelog writes and source offsets commit in one transaction,
// with the group generation in TxnOffsetCommit, so a zombie instance is
// fenced and nothing it writes becomes visible. An aborted transaction
// rolls every task's state back to the last commit and rewinds the
// consumer to the committed offsets.
//
// The processing itself (decoding, steps, windows) is supplied by the
// caller as Task implementations; the pipeline package plans YAML
// pipelines onto it.
package cluster
