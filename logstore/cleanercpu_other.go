//go:build !linux

package logstore

import "time"

// threadCPU returns 0: the CPU time of a thread is measured on Linux only
// (CleanerStats.CPU stays 0 elsewhere).
func threadCPU() time.Duration { return 0 }
