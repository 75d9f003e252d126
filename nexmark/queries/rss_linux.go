//go:build linux

package queries

import "syscall"

// maxRSSBytes returns the process's peak resident set size (getrusage
// ru_maxrss, which Linux reports in KiB).
func maxRSSBytes() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return int64(ru.Maxrss) << 10
}
