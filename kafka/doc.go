// Package kafka serves the Apache Kafka wire protocol over Sluice's embedded
// log (package logstore), so that Kafka clients (franz-go, librdkafka-based
// clients such as kcat and confluent-kafka, the Java client) produce to and
// consume from Sluice unchanged.
//
// # Shape
//
// Server owns the listener(s) and one goroutine per connection. A connection
// reads one request frame at a time (frame.go), decodes it with franz-go's
// kmsg, checks the version against the served table (apiversions.go) and
// calls the API's handler, one file per API (produce.go, fetch.go, ...).
// Requests of one connection are handled in order, one at a time, as Kafka
// brokers do; concurrency comes from connections (franz-go and librdkafka use
// separate connections for producing, fetching and group traffic) and from
// the partitions of one Produce request, which are appended in parallel so
// they share the log's group-commit fsyncs.
//
// # Storage and coordination
//
// Produce stores record batches exactly as received (magic 2, any codec)
// once their records are checked (record.CheckRecords: INVALID_RECORD
// otherwise) and a transactional batch's partition is verified to be in
// its producer's ongoing transaction, which the produce holds until the
// append so that no marker can slip in between (KIP-890 part 1);
// the log assigns the base offset, checks the CRC, enforces idempotent
// producer sequences and waits for durability under the topic's fsync
// policy. Fetch returns stored batches unchanged, honouring the last stable
// offset and listing aborted transactions for read_committed consumers.
//
// The group coordinator (group.go) is a deterministic state machine for the
// classic consumer-group protocol, driven by requests and by a periodic
// tick; committed offsets live in the log's durable offset store. The
// transaction coordinator (txncoord.go) keeps transactional id -> producer
// id, epoch, state and partitions, persisted in the internal topic
// __transaction_state, and writes commit/abort markers through the log.
//
// # Limits
//
// One broker (node 0) leads every partition; there is no replication.
// Compressed batches are inflated (for the record check of a produce,
// the cleaner and look-ups by time) up to record.MaxDecompressed, beyond
// which a produce answers MESSAGE_TOO_LARGE. See docs/kafka.md for the API
// and version table, the limits, and how to point kcat and
// confluent-kafka at the server.
package kafka
