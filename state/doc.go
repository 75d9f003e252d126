// Package state is Sluice's keyed state: the per-key values, maps and lists
// that stateful operators keep between records, organised in key groups so
// that it can be redistributed when a job is restored with a different
// parallelism.
//
// # Key groups
//
// Every key hashes (Hasher) to one of MaxParallelism key groups (default
// 128): keyGroup = hash(key) % maxParallelism. A parallel subtask owns a
// contiguous range of key groups (RangeFor), and the exchange in front of a
// keyed operator routes each record to the subtask that owns its key group
// (SubtaskFor). The maximum parallelism is fixed for the life of a job's
// state; parallelism can change between runs, and the state of one key
// group always moves as a whole.
//
// # Backends and handles
//
// A Backend holds the tables of one operator subtask for the key groups it
// owns. Tables are created through a TableDescriptor, which lets a backend
// decide how to store them while the typed access stays generic: the
// in-memory backend (NewMemory) keeps one Go map per key group. A disk
// backend (package state/pebble) stores tables in a KVStore with codecs:
// value state one store key per key, map and list state one store key per
// entry (see kvcoll.go), so that large maps and lists are never re-encoded
// whole.
//
// Operators reach state through handles bound to a Keyed context: the
// runtime sets the current key before it calls user code, and Value, Map
// and List read and write the entry of that key. Handles are owned by one
// subtask goroutine and are not safe for concurrent use; no locks are taken
// on the data path.
package state
