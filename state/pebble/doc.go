// Package pebble is the disk-backed state backend, on
// github.com/cockroachdb/pebble, for keyed state larger than memory. It
// implements state.Backend: the typed tables of package state (Value, Map,
// List) store their entries through codecs (package state/codec) under keys
// laid out as key group | table | key, so that a key group of every table
// is one contiguous key range. Map and list state store one Pebble key per
// entry (key group | table | key | user key, or | sequence number), so an
// update writes one entry, iteration is a prefix scan and Clear a range
// delete. Levels have bloom filters; Options.MemoryLimit sizes the block
// cache and memtables.
//
// The write-ahead log is off: durability comes from checkpoints, not from
// the database. Writes go through one write batch per record batch
// (Flush), and value tables keep their hot values in Go memory until a
// snapshot (state/kvvalue.go). A checkpoint (Backend.Snapshot, then
// Snapshot.Upload) writes those back, flushes the memtable, takes a Pebble checkpoint (hard links, instant) in
// the backend's working directory, and hands its files to the checkpoint
// storage: immutable sstables go to the storage's shared area and are
// stored once, then only named again by later checkpoints, so each
// checkpoint costs the sstables written since the previous one
// (incremental), plus the small Pebble manifest. Snapshot is the only part
// that runs on the processing goroutine; Upload can run on another.
//
// A flush that fails (a full disk) is retried by Pebble for ever; the
// backend logs it and, once the errors have lasted
// Options.BackgroundErrorTimeout without a successful flush, fails the
// waiting snapshot and every state access after with ErrBackgroundFailed,
// so that the job restarts from its last checkpoint (bgerr.go).
//
// Restore rebuilds a backend from the snapshots of a checkpoint. When one
// snapshot covers exactly the key groups the new subtask owns, its files
// are linked in and opened as they are; after a change of parallelism the
// key groups the subtask owns are copied out of every snapshot that holds
// some of them.
package pebble
