// Package stdout is a sink that writes each message's value as one line
// to standard output (or any io.Writer), for demos and debugging. Lines of
// parallel subtasks never interleave within a line: each subtask writes
// whole batches under a lock.
package stdout
