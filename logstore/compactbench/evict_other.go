//go:build !linux

package compactbench

import "errors"

// evictDir is only implemented on Linux.
func evictDir(string) error {
	return errors.New("dropping files from the page cache needs Linux; run with the topic warm")
}
