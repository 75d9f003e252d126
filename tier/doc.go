// Package tier is the remote tier of the log: it keeps the closed segments
// of topics with remote.storage.enable in S3-compatible object storage
// (package objstore) and serves them back to the log's read path.
//
// It implements logstore.RemoteTier, which `sluice serve --remote-storage`
// wires into the log with Log.SetRemoteTier; the log never imports this
// package.
//
// # Upload
//
// A background uploader (upload.go) copies each sealed segment of a
// remote-enabled partition, oldest first, with its offset and time indexes
// and its producer-state snapshot, to objects under
// <topic>-<remote id>/<partition>/, retrying with exponential backoff while
// the store fails. Only once every object of the segment is stored does it
// write a new version of the partition's manifest (manifest.go) naming the
// segment and the CRC-32C of each object; the manifest is always the last
// object written. The log deletes a local segment only when local retention
// asks for it and Uploaded reports it recorded in the manifest, so nothing
// is deleted locally that is not safely remote, whenever the process dies.
//
// # Retention
//
// Total retention (retention.ms, retention.bytes) deletes remote segments:
// first a manifest without them, then their objects. Objects that no
// manifest names (an upload or deletion interrupted by a crash) are removed
// when the partition's manifest is first loaded, unless a manifest version
// there cannot be read: a damaged version is kept (and reported), the
// newest good one serves, the next one goes above it, and nothing is
// removed as an orphan while it is there, since it may name segments no
// good version names. Each version records the one it was made from
// (based_on); a damaged version that a good one was made from is
// superseded (all it names is in the good one or was removed on purpose)
// and recovers without an operator: it no longer holds orphans back and
// goes like any old version.
//
// # Reads
//
// Read, OffsetForTime and AbortedTransactions serve offsets below the local
// log start from the remote segments through a bounded on-disk cache of
// chunks (cache.go): ranged GETs of ChunkBytes, each checked against the
// chunk CRC-32C recorded at upload, kept in least-recently-used order up to
// CacheBytes (the most recent also in memory, in reference-counted buffers
// that are reused), with the next chunks (and the next segments' indexes)
// fetched ahead for sequential readers, at most maxBackgroundFetches at
// once. A read that fails on the store is logstore.ErrRemoteUnavailable,
// which the Kafka layer answers with a retriable error.
package tier
