package runtime

import (
	"context"
	"sync"
)

// FirstError keeps the first error reported by any subtask of a job and
// cancels the job's context when it arrives, so that every other subtask
// stops instead of waiting forever on a queue.
type FirstError struct {
	mu     sync.Mutex
	err    error
	cancel context.CancelFunc
}

// NewFirstError returns a collector that calls cancel on the first error.
func NewFirstError(cancel context.CancelFunc) *FirstError {
	return &FirstError{cancel: cancel}
}

// Set records err if it is the first non-nil error and cancels the job.
func (f *FirstError) Set(err error) {
	if err == nil {
		return
	}
	f.mu.Lock()
	first := f.err == nil
	if first {
		f.err = err
	}
	f.mu.Unlock()
	if first {
		f.cancel()
	}
}

// Err returns the first error, or nil.
func (f *FirstError) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
