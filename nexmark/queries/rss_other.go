//go:build !linux

package queries

// maxRSSBytes is not measured on this platform (ru_maxrss units differ).
func maxRSSBytes() int64 { return 0 }
