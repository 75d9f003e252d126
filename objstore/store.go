package objstore

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotExist is matched (errors.Is) by the error of reading an object
// that does not exist.
var ErrNotExist = errors.New("object does not exist")

// Info describes one stored object.
type Info struct {
	// Key is the object's name within the store (without the store's
	// prefix).
	Key string
	// Size in bytes.
	Size int64
	// Modified is when the object was last put, as the store reports it.
	Modified time.Time
}

// Store is a flat namespace of immutable objects. Keys are slash-separated
// paths without a leading slash. Implementations are safe for concurrent
// use.
type Store interface {
	// Put stores size bytes read from r under key, replacing any object of
	// that name atomically. size is -1 when unknown.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get returns a reader of the object's bytes from offset off, at most
	// n of them (n < 0: to the end). The caller closes it.
	Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)
	// Stat returns the object's Info.
	Stat(ctx context.Context, key string) (Info, error)
	// List returns the objects whose key starts with prefix, in key order.
	List(ctx context.Context, prefix string) ([]Info, error)
	// Delete removes the object; an absent object is not an error.
	Delete(ctx context.Context, key string) error
	// String names the store's location for messages (never credentials).
	String() string
}

// ReadAll returns the whole object stored under key.
func ReadAll(ctx context.Context, s Store, key string) ([]byte, error) {
	rc, err := s.Get(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}
