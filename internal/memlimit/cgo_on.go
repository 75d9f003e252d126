//go:build cgo

package memlimit

// cgoCache reports whether Pebble allocates its block cache in C memory
// and memtables (outside the Go runtime's limit): it does when built
// with cgo.
const cgoCache = true
