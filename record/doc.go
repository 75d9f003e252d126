// Package record encodes and decodes Kafka record batches (message format v2,
// "magic 2"), the unit Sluice's log stores and the Kafka protocol carries.
//
// A batch is a 61-byte header followed by its records, possibly compressed as
// one block (gzip, snappy, lz4 or zstd). The header's CRC-32C (Castagnoli)
// covers everything from the attributes field to the end of the batch, so the
// base offset and the partition leader epoch can be assigned by the log
// without recomputing it: batches are stored exactly as a producer sent them,
// once CheckRecords has walked their records (as Kafka's log validator does)
// so that no consumer meets a record that does not parse.
//
// The package also holds Kafka's default partitioner (murmur2 of the key), so
// that Sluice and every Kafka client agree on which partition a key lives in.
package record
