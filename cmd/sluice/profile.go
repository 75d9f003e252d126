package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"runtime/trace"
)

// startCPUProfile starts writing a CPU profile of the whole process to path
// (for go tool pprof); the returned function stops it and closes the file.
// An empty path profiles nothing.
func startCPUProfile(path string) (stop func() error, err error) {
	return startRecording(path, "cpu profile", pprof.StartCPUProfile, pprof.StopCPUProfile)
}

// startTrace starts writing an execution trace of the whole process to
// path (for go tool trace: goroutine scheduling latency, GC pauses,
// syscalls); the returned function stops it and closes the file. An empty
// path traces nothing.
func startTrace(path string) (stop func() error, err error) {
	return startRecording(path, "execution trace", trace.Start, trace.Stop)
}

// startRecording opens path and starts a recorder writing to it; the
// returned function stops the recorder and closes the file.
func startRecording(path, what string, start func(io.Writer) error, stopRec func()) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := start(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	return func() error {
		stopRec()
		if err := f.Close(); err != nil {
			return fmt.Errorf("%s %s: %w", what, path, err)
		}
		return nil
	}, nil
}
